#!/usr/bin/env bash
# Builds (or reuses) a pinned helm from its Go module, helm.sh/helm/v3, for the
# chart tests and deploy/render.sh. Same cache scheme as tests/cluster/build.sh:
# the binary lands in $EARTHWORM_HELM_BIN (default
# ~/.cache/earthworm/helm/<version>/bin) and is reused once built. Prints the
# bin directory.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# The Kubernetes version helm reports to charts (.Capabilities.KubeVersion) and
# checks deprecations against: the k8s.io/client-go minor that helm
# v3.22.0 is built with (v0.37 -> 1.37), as helm's own Makefile sets it.
HELM_KUBE_MINOR="${HELM_KUBE_MINOR:-37}"

cache="${EARTHWORM_CACHE:-$HOME/.cache/earthworm}"
bin="${EARTHWORM_HELM_BIN:-$cache/helm/$HELM_VERSION/bin}"
mkdir -p "$bin"

if [ -x "$bin/helm" ]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is not installed: install Go 1.26+ to build helm $HELM_VERSION" >&2; exit 3; }
export CGO_ENABLED=0
echo "building helm $HELM_VERSION" >&2
started=$SECONDS
# helm's go.mod has no replace directives, so `go install module@version`
# builds it with exactly the dependency versions it was released with.
v=helm.sh/helm/v3/internal/version
GOBIN="$bin" GOFLAGS="" go install -trimpath -ldflags "-s -w \
  -X $v.version=$HELM_VERSION -X $v.metadata= -X $v.gitTreeState=clean \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_KUBE_MINOR \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_KUBE_MINOR" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
[ -x "$bin/helm" ] || { echo "build.sh: helm was not built into $bin" >&2; exit 1; }
echo "built helm $HELM_VERSION in $((SECONDS - started)) s" >&2
echo "$bin"
