#!/usr/bin/env bash
# A local Kubernetes control plane for Earthworm's tests and for development:
# etcd, kube-apiserver (RBAC + Node authorization, ServiceAccount tokens),
# kube-controller-manager (node lifecycle, service-account tokens) and kwok
# (simulated nodes whose Leases are renewed like kubelets renew theirs).
#
#   cluster.sh up                 start what is not running, wait for /readyz
#   cluster.sh down               stop everything this state dir started
#   cluster.sh status             print each component's state
#   cluster.sh stop-apiserver     stop only kube-apiserver
#   cluster.sh start-apiserver    start kube-apiserver again and wait for /readyz
#   cluster.sh compact            compact etcd at its current revision
#   cluster.sh env                print shell variables describing the cluster
#
# Settings (environment): EARTHWORM_CLUSTER_PORT (apiserver port, 16443),
# EARTHWORM_CLUSTER_DIR (state, /tmp/earthworm-cluster-<port>),
# EARTHWORM_NODE_GRACE (node-monitor-grace-period, 40s),
# EARTHWORM_NODE_LEASE_SECONDS (kwok node lease duration, 40),
# EARTHWORM_KWOK_LEASE_WORKERS (kwok's parallel Lease renewals, 256),
# EARTHWORM_AUDIT_ALL (1: the audit log records every request but kwok's).
# Ports used: PORT (apiserver), PORT+1 and PORT+2 (etcd), PORT+3 (controller manager);
# node.sh (a real kubelet, containerd and kube-scheduler) adds PORT+4 to PORT+6.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${EARTHWORM_CLUSTER_PORT:-16443}"
S="${EARTHWORM_CLUSTER_DIR:-/tmp/earthworm-cluster-$PORT}"
ETCD_PORT=$((PORT + 1))
ETCD_PEER_PORT=$((PORT + 2))
KCM_PORT=$((PORT + 3))
NODE_GRACE="${EARTHWORM_NODE_GRACE:-40s}"
NODE_LEASE_SECONDS="${EARTHWORM_NODE_LEASE_SECONDS:-40}"
KWOK_LEASE_WORKERS="${EARTHWORM_KWOK_LEASE_WORKERS:-256}"
AUDIT_ALL="${EARTHWORM_AUDIT_ALL:-0}"
SERVER="https://127.0.0.1:$PORT"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kwok)

log() { echo "cluster: $*" >&2; }
die() { echo "cluster: $*" >&2; exit 1; }

pidfile() { echo "$S/pids/$1.pid"; }

# alive NAME: the recorded process exists and was started for this state dir
# (its command line names $S), so a recycled pid is never mistaken for ours.
alive() {
  local f pid
  f="$(pidfile "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$S/"
}

# stop_one NAME [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10).
stop_one() {
  local name="$1" wait="${2:-10}" f pid i
  f="$(pidfile "$name")"
  if alive "$name"; then
    pid="$(cat "$f")"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 $((wait * 10))); do
      alive "$name" || break
      sleep 0.1
    done
    if alive "$name"; then
      log "$name (pid $pid) did not stop within $wait s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do alive "$name" || break; sleep 0.1; done
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

# start NAME BIN ARGS...: runs BIN in the background with its log in $S/logs.
start_one() {
  local name="$1"
  shift
  if alive "$name"; then return 0; fi
  nohup "$@" >>"$S/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
  log "started $name (pid $!)"
}

wait_for() {
  local what="$1" seconds="$2" i
  shift 2
  for i in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

b64() { base64 -w0 <"$1"; }

# kubeconfig FILE USER: a kubeconfig for the client certificate certs/USER.{crt,key}.
kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: earthworm
  cluster:
    server: $SERVER
    certificate-authority-data: $(b64 "$S/certs/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$S/certs/$2.crt")
    client-key-data: $(b64 "$S/certs/$2.key")
contexts:
- name: earthworm
  context:
    cluster: earthworm
    user: $2
current-context: earthworm
EOF
}

# client_cert NAME SUBJECT: a client certificate signed by the cluster CA.
client_cert() {
  local c="$S/certs"
  openssl genrsa -out "$c/$1.key" 2048 2>/dev/null
  openssl req -new -key "$c/$1.key" -subj "$2" -out "$c/$1.csr" 2>/dev/null
  openssl x509 -req -in "$c/$1.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial \
    -days 3650 -extfile <(printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment') \
    -out "$c/$1.crt" 2>/dev/null
  rm -f "$c/$1.csr"
}

make_certs() {
  local c="$S/certs"
  [ -f "$c/done" ] && return 0
  command -v openssl >/dev/null || die "openssl is not installed: install it (apt-get install openssl)"
  mkdir -p "$c"
  openssl genrsa -out "$c/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$c/ca.key" -subj "/CN=earthworm-test-ca" -days 3650 -out "$c/ca.crt" 2>/dev/null
  openssl genrsa -out "$c/apiserver.key" 2048 2>/dev/null
  openssl req -new -key "$c/apiserver.key" -subj "/CN=kube-apiserver" -out "$c/apiserver.csr" 2>/dev/null
  openssl x509 -req -in "$c/apiserver.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial -days 3650 \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth') \
    -out "$c/apiserver.crt" 2>/dev/null
  rm -f "$c/apiserver.csr"
  client_cert admin "/O=system:masters/CN=earthworm-admin"
  client_cert kube-controller-manager "/CN=system:kube-controller-manager"
  client_cert kwok "/O=system:masters/CN=kwok"
  openssl genrsa -out "$c/sa.key" 2048 2>/dev/null
  openssl rsa -in "$c/sa.key" -pubout -out "$c/sa.pub" 2>/dev/null
  touch "$c/done"
}

# The API server's client certificate towards kubelets (logs, exec,
# port-forward); node.sh grants it system:kubelet-api-admin. Made on its own so
# state dirs from before it existed get one too.
make_kubelet_client_cert() {
  [ -f "$S/certs/apiserver-kubelet-client.crt" ] ||
    client_cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client"
}

apiserver_ready() {
  curl -sf --max-time 2 --cacert "$S/certs/ca.crt" --cert "$S/certs/admin.crt" --key "$S/certs/admin.key" \
    "$SERVER/readyz" | grep -q ok
}

# Node Lease writes (not kwok's: thousands of them in the scale tests) go to
# $S/audit.log with the API server's own receive and completion times, so
# tests can compare the wire latency of a renewal with the server's; so do
# TokenReviews, which the wire-ingest bench counts. With EARTHWORM_AUDIT_ALL=1
# every request but kwok's and the control plane's own is recorded
# (benchmarks count Earthworm's requests with it).
write_audit_policy() {
  local all=""
  if [ "$AUDIT_ALL" = 1 ]; then
    all='  - level: None
    users: [system:kube-controller-manager, system:apiserver]
  - level: None
    userGroups: [system:serviceaccounts:kube-system]
  - level: Metadata'
  fi
  cat > "$S/audit-policy.yaml" <<YAML
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [kwok]
  - level: Metadata
    verbs: [update, patch]
    namespaces: [kube-node-lease]
    resources:
      - group: coordination.k8s.io
        resources: [leases]
  # TokenReviews, counted by tests/bench/wire_ingest.ts.
  - level: Metadata
    verbs: [create]
    resources:
      - group: authentication.k8s.io
        resources: [tokenreviews]
$all
  - level: None
YAML
}

start_apiserver() {
  write_audit_policy
  start_one kube-apiserver "$BIN/kube-apiserver" \
    --audit-policy-file="$S/audit-policy.yaml" --audit-log-path="$S/audit.log" \
    --audit-log-maxsize=100 --audit-log-maxbackup=1 --audit-log-mode=blocking \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$PORT" \
    --endpoint-reconciler-type=none \
    --tls-cert-file="$S/certs/apiserver.crt" --tls-private-key-file="$S/certs/apiserver.key" \
    --client-ca-file="$S/certs/ca.crt" --requestheader-client-ca-file="$S/certs/ca.crt" \
    --kubelet-client-certificate="$S/certs/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$S/certs/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --service-account-key-file="$S/certs/sa.pub" \
    --service-account-signing-key-file="$S/certs/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.96.0.0/16 \
    --allow-privileged=true --profiling=false
  wait_for kube-apiserver 90 apiserver_ready ||
    die "kube-apiserver did not become ready within 90 s: see $S/logs/kube-apiserver.log"
}

find_bin() {
  BIN="${EARTHWORM_CLUSTER_BIN:-}"
  if [ -z "$BIN" ]; then
    BIN="$(bash "$here/build.sh")" || die "building the control plane failed: see the output above"
  fi
  for b in etcd kube-apiserver kube-controller-manager kwok kubectl; do
    [ -x "$BIN/$b" ] || die "\"$BIN/$b\" is missing: run tests/cluster/build.sh"
  done
}

up() {
  find_bin
  mkdir -p "$S/pids" "$S/logs" "$S/etcd"
  make_certs
  make_kubelet_client_cert
  kubeconfig "$S/admin.kubeconfig" admin
  kubeconfig "$S/kube-controller-manager.kubeconfig" kube-controller-manager
  kubeconfig "$S/kwok.kubeconfig" kwok

  start_one etcd "$BIN/etcd" --name=earthworm --data-dir="$S/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="earthworm=http://127.0.0.1:$ETCD_PEER_PORT" \
    --quota-backend-bytes=2147483648 --log-level=warn
  wait_for etcd 30 curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" ||
    die "etcd did not become healthy within 30 s: see $S/logs/etcd.log"

  start_apiserver

  start_one kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$S/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig="$S/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig="$S/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --leader-elect=true --use-service-account-credentials=true \
    --service-account-private-key-file="$S/certs/sa.key" --root-ca-file="$S/certs/ca.crt" \
    --cluster-signing-cert-file="$S/certs/ca.crt" --cluster-signing-key-file="$S/certs/ca.key" \
    --node-monitor-grace-period="$NODE_GRACE" --node-monitor-period=2s \
    --allocate-node-cidrs=false --profiling=false

  # kwok renews each node's Lease in one of its lease workers, one Update at
  # a time, and schedules the next renewal after the answer: 4 workers (its
  # default) manage about 135-200 renewals a second on 2 cores, short of the
  # 500 a second that 5,000 nodes need. Its per-renewal info log line goes
  # too (warnings and errors stay). A KwokConfiguration read from a file gets
  # no defaults, so kwok's own are repeated here.
  {
    cat <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  cidr: 10.0.0.0/24
  nodeLeaseParallelism: $KWOK_LEASE_WORKERS
  nodePlayStageParallelism: 4
  podPlayStageParallelism: 4
  podsOnNodeSyncParallelism: 1
  enablePodsOnNodeSyncListPager: true
  enablePodsOnNodeSyncStreamWatch: false
---
YAML
    cat "$here/kwok-stages.yaml"
  } >"$S/kwok-config.yaml"
  start_one kwok "$BIN/kwok" --kubeconfig="$S/kwok.kubeconfig" --config="$S/kwok-config.yaml" \
    --manage-nodes-with-label-selector=earthworm.dev/kwok=true \
    --node-lease-duration-seconds="$NODE_LEASE_SECONDS" -v=WARN

  sleep 0.5
  for name in kube-controller-manager kwok; do
    alive "$name" || die "$name exited right after starting: see $S/logs/$name.log"
  done
  echo "$S/admin.kubeconfig"
}

down() {
  local i node_rc=0
  # A real node goes first (its kubelet must not outlive the API server); if
  # it leaves something behind, stop the control plane anyway and fail.
  if [ -d "$S/node" ]; then bash "$here/node.sh" down || node_rc=$?; fi
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    stop_one "${COMPONENTS[$i]}"
  done
  return "$node_rc"
}

status() {
  local name
  for name in "${COMPONENTS[@]}"; do
    if alive "$name"; then echo "$name running (pid $(cat "$(pidfile "$name")"))"; else echo "$name stopped"; fi
  done
}

# compact: writes a marker key outside Kubernetes' prefix (so etcd's revision
# moves past every resourceVersion clients hold, as writes through another API
# server would) and compacts etcd at that revision: watches resumed from older
# resourceVersions then get 410 Gone.
compact() {
  local rev key value
  key="$(printf '/earthworm-test/compaction-marker' | base64 -w0)"
  value="$(date +%s%N | base64 -w0)"
  rev="$(curl -sf -X POST "http://127.0.0.1:$ETCD_PORT/v3/kv/put" -d "{\"key\":\"$key\",\"value\":\"$value\"}" |
    sed -nE 's/.*"revision":"([0-9]+)".*/\1/p')"
  [ -n "$rev" ] || die "could not write to etcd at http://127.0.0.1:$ETCD_PORT: is etcd running?"
  curl -sf -X POST "http://127.0.0.1:$ETCD_PORT/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null ||
    die "etcd refused to compact at revision $rev"
  echo "$rev"
}

# node.sh sources this file for its settings and helpers.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

case "${1:-up}" in
up) up ;;
down) down ;;
status) status ;;
stop-apiserver) stop_one kube-apiserver 5 ;;
start-apiserver)
  find_bin
  start_apiserver
  ;;
compact) compact ;;
env)
  printf 'EARTHWORM_CLUSTER_DIR=%s\nKUBECONFIG=%s\nSERVER=%s\nETCD=http://127.0.0.1:%s\n' \
    "$S" "$S/admin.kubeconfig" "$SERVER" "$ETCD_PORT"
  ;;
*) die "unknown command \"$1\": use up, down, status, stop-apiserver, start-apiserver, compact or env" ;;
esac
