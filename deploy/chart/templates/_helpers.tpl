{{/*
The agent's image: repository and tag, the tag defaulting to appVersion.
*/}}
{{- define "earthworm.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
`earthworm agent`'s arguments as a YAML flow sequence. New agent flags get a
value here and in values.yaml (and values.schema.json), never a hand edit of
deploy/earthworm.yaml.
*/}}
{{- define "earthworm.args" -}}
{{- $args := list "agent" "--port" (toString .Values.port) }}
{{- range .Values.watchNamespaces }}
{{- $args = append $args "--namespace" }}
{{- $args = append $args . }}
{{- end }}
{{- if .Values.perHeartMetrics }}
{{- $args = append $args "--per-heart-metrics" }}
{{- end }}
{{- range .Values.alerts.webhooks }}
{{- $args = append $args "--alert-webhook" }}
{{- $args = append $args . }}
{{- end }}
{{- range .Values.alerts.jsonWebhooks }}
{{- $args = append $args "--alert-webhook-json" }}
{{- $args = append $args . }}
{{- end }}
{{- with .Values.alerts.externalUrl }}
{{- $args = append $args "--external-url" }}
{{- $args = append $args . }}
{{- end }}
{{- $args = concat $args .Values.extraArgs }}
{{- $quoted := list }}
{{- range $args }}
{{- $quoted = append $quoted (toJson (toString .)) }}
{{- end }}
{{- printf "[%s]" (join ", " $quoted) }}
{{- end }}
