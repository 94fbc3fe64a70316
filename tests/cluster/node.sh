#!/usr/bin/env bash
# A real node for the test cluster of cluster.sh: containerd (its own root,
# state and socket under the cluster's state dir), a private CNI bridge, a
# kubelet registered as system:node:<name>, and kube-scheduler to place pods
# on it. Needs root, containerd, runc, the CNI plugins and iptables.
#
#   node.sh up              start what is not running, wait until the node is Ready
#                           and its Lease exists; print NODE_NAME, READY_MS, LEASE_MS
#   node.sh down            stop it all and remove what it made: pods, shims,
#                           mounts, cgroups, the bridge, the iptables rules;
#                           fails if anything is left behind
#   node.sh status          print each component's state
#   node.sh stop-kubelet    stop only the kubelet (SIGCONT first, in case it was SIGSTOPped)
#   node.sh start-kubelet   start the kubelet again and wait for its /healthz
#   node.sh import FILE...  import OCI or Docker image archives into containerd (k8s.io namespace)
#   node.sh leftovers       print what a stopped node left behind; exit 1 if anything
#   node.sh missing         print why this machine cannot run a node (nothing if it can)
#   node.sh env             print shell variables describing the node
#
# Settings (environment), besides cluster.sh's: EARTHWORM_NODE_NAME
# (earthworm-node), EARTHWORM_POD_CIDR (a /24; default 100.64.0.0/10 carved by
# port), EARTHWORM_CNI_BIN (/usr/lib/cni). Ports: PORT+4 (kubelet, on the
# bridge address), PORT+5 (kube-scheduler), PORT+6 (kubelet /healthz).
#
# Networking: pods get addresses on the bridge ewbr<PORT> (host-local IPAM, no
# masquerade, no IP forwarding). There is no kube-proxy: one DNAT rule sends
# the `kubernetes` Service (10.96.0.1:443) from the bridge to the API server on
# 127.0.0.1:PORT, which route_localnet on that bridge alone permits.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=cluster.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cluster.sh"

log() { echo "node: $*" >&2; }
die() { echo "node: $*" >&2; exit 1; }

N="$S/node"
NODE_NAME="${EARTHWORM_NODE_NAME:-earthworm-node}"
KUBELET_PORT=$((PORT + 4))
SCHEDULER_PORT=$((PORT + 5))
HEALTHZ_PORT=$((PORT + 6))
CNI_BIN="${EARTHWORM_CNI_BIN:-/usr/lib/cni}"
CONTAINERD_SOCK="$N/containerd.sock"
BRIDGE="ewbr$PORT"
CGROUP_ROOT="/earthworm-$PORT"
SERVICE_IP=10.96.0.1
# Every iptables rule of this node carries this comment, so down finds them all.
RULE_TAG="earthworm-node $S"
# One /24 per port (modulo 16384) in the shared address space 100.64.0.0/10.
slot=$((PORT % 16384))
POD_CIDR="${EARTHWORM_POD_CIDR:-100.$((64 + slot / 256)).$((slot % 256)).0/24}"
[[ "$POD_CIDR" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]] ||
  die "EARTHWORM_POD_CIDR \"$POD_CIDR\" is not a /24 like 10.250.0.0/24"
GATEWAY="${BASH_REMATCH[1]}.1"
PAUSE_IMAGE=localhost/earthworm-test/pause:v1
NODE_COMPONENTS=(containerd kubelet kube-scheduler)
# Host directories containerd, libcni and the kubelet create outside the
# state dir (the shim sockets, CNI result cache, device-plugin socket, log
# links); down removes those it finds empty if this node created them.
HOST_DIRS=(/run/containerd /run/containerd/s /var/lib/cni /var/lib/cni/results
  /var/lib/kubelet /var/lib/kubelet/device-plugins /var/log/containers)
# Kernel settings the kubelet changes on start; down restores them.
SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

kctl() { "$BIN/kubectl" --kubeconfig "$S/admin.kubeconfig" "$@"; }
cri_ctr() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io --connect-timeout 5s "$@"; }

# missing_tools: why this machine cannot run the node, or nothing.
missing_tools() {
  local t
  [ "$(id -u)" = 0 ] || { echo "the real node needs root"; return; }
  for t in containerd ctr runc containerd-shim-runc-v2 ip iptables iptables-save; do
    command -v "$t" >/dev/null || { echo "$t is not installed: apt-get install containerd runc iproute2 iptables"; return; }
  done
  for t in bridge host-local loopback; do
    [ -x "$CNI_BIN/$t" ] || { echo "CNI plugin $CNI_BIN/$t is missing: apt-get install containernetworking-plugins"; return; }
  done
}

find_node_bin() {
  find_bin
  local b
  for b in kubelet kube-scheduler; do
    [ -x "$BIN/$b" ] || die "\"$BIN/$b\" is missing: run tests/cluster/build.sh"
  done
}

node_certs() {
  [ -f "$S/certs/kubelet-$NODE_NAME.crt" ] ||
    client_cert "kubelet-$NODE_NAME" "/O=system:nodes/CN=system:node:$NODE_NAME"
  [ -f "$S/certs/kube-scheduler.crt" ] || client_cert kube-scheduler "/CN=system:kube-scheduler"
  kubeconfig "$N/kubelet.kubeconfig" "kubelet-$NODE_NAME"
  kubeconfig "$N/kube-scheduler.kubeconfig" kube-scheduler
}

write_containerd_config() {
  cat >"$N/containerd.toml" <<EOF
version = 2
root = "$N/containerd/root"
state = "$N/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CONTAINERD_SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$N/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This machine kind lacks CAP_SYS_RESOURCE in the bounding set: without
  # this, runc fails every sandbox ("can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  # Network namespaces under the state dir, not /run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$N/containerd/runc"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$N/cni/net.d"
EOF
}

write_cni_config() {
  mkdir -p "$N/cni/net.d" "$N/cni/ipam"
  # isGateway stays false: the bridge gets its address from node.sh, so the
  # plugin neither turns on IP forwarding nor adds anything to iptables.
  cat >"$N/cni/net.d/10-earthworm.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "earthworm-$PORT",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$N/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$GATEWAY" }]],
        "routes": [{ "dst": "0.0.0.0/0", "gw": "$GATEWAY" }]
      }
    }
  ]
}
EOF
}

write_kubelet_config() {
  mkdir -p "$N/pod-logs"
  cat >"$N/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $GATEWAY
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $HEALTHZ_PORT
# The API server's calls (logs, exec, port-forward) are authenticated by
# client certificate and authorized by SubjectAccessReview, as on real nodes.
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $S/certs/ca.crt
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
# Pods' cgroups under a root of their own, so down can find every process.
cgroupRoot: $CGROUP_ROOT
failCgroupV1: false
failSwapOn: false
podLogsDir: $N/pod-logs
clusterDomain: cluster.local
# Never garbage-collect the locally imported images (nothing can be pulled),
# and do not evict on a nearly full laptop disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 50Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
EOF
}

# --v=6: client-go logs every request the kubelet makes with its round trip
# in milliseconds (tests compare the wire's latencies with the kubelet's own).
start_kubelet() {
  start_one kubelet "$BIN/kubelet" --config="$N/kubelet.yaml" --kubeconfig="$N/kubelet.kubeconfig" \
    --root-dir="$N/kubelet" --cert-dir="$N/kubelet/pki" --hostname-override="$NODE_NAME" --node-ip="$GATEWAY" \
    --node-labels=earthworm.dev/real-node=true --v=6
  wait_for kubelet 30 curl -sf --max-time 2 "http://127.0.0.1:$HEALTHZ_PORT/healthz" ||
    die "the kubelet did not become healthy within 30 s: see $S/logs/kubelet.log"
}

# cgroup_dirs: this node's cgroup root in every mounted hierarchy.
cgroup_dirs() {
  awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/mounts | while read -r m; do
    [ -d "$m$CGROUP_ROOT" ] && echo "$m$CGROUP_ROOT"
  done
  return 0
}

make_cgroup_root() {
  local m
  # cgroup v1 (and hybrid) hierarchies: the kubelet requires its root to exist.
  awk '$3 == "cgroup" { print $2 }' /proc/mounts | while read -r m; do
    mkdir -p "$m$CGROUP_ROOT"
    if [ -f "$m/cpuset.cpus" ] && [ -z "$(cat "$m$CGROUP_ROOT/cpuset.cpus")" ]; then
      cat "$m/cpuset.cpus" >"$m$CGROUP_ROOT/cpuset.cpus"
      cat "$m/cpuset.mems" >"$m$CGROUP_ROOT/cpuset.mems"
    fi
  done
  # A pure cgroup v2 machine.
  if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then mkdir -p "/sys/fs/cgroup$CGROUP_ROOT"; fi
}

network_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    [ -z "$(ip -4 route show "$POD_CIDR")" ] ||
      die "$POD_CIDR is already routed on this machine: set EARTHWORM_POD_CIDR to a free /24"
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$GATEWAY/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Lets packets from pods, DNATed to 127.0.0.1, in (and their answers out).
  echo 1 >"/proc/sys/net/ipv4/conf/$BRIDGE/route_localnet"
  local dnat=(PREROUTING -i "$BRIDGE" -d "$SERVICE_IP/32" -p tcp --dport 443
    -m comment --comment "$RULE_TAG" -j DNAT --to-destination "127.0.0.1:$PORT")
  local accept=(INPUT -i "$BRIDGE" -d 127.0.0.1/32 -p tcp --dport "$PORT"
    -m comment --comment "$RULE_TAG" -j ACCEPT)
  iptables -w -t nat -C "${dnat[@]}" 2>/dev/null || iptables -w -t nat -A "${dnat[@]}"
  iptables -w -t filter -C "${accept[@]}" 2>/dev/null || iptables -w -t filter -I "${accept[@]}"
}

network_down() {
  local table line
  for table in nat filter; do
    while IFS= read -r line; do
      # iptables-save prints "-A CHAIN spec..." with the comment quoted.
      eval "iptables -w -t $table -D ${line#-A }"
    done < <(iptables-save -t "$table" | grep -F -- "$RULE_TAG" || true)
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
}

save_sysctls() {
  local k
  [ -f "$N/sysctl.saved" ] && return 0
  for k in "${SYSCTLS[@]}"; do echo "$k $(cat "/proc/sys/$k")"; done >"$N/sysctl.saved"
}

restore_sysctls() {
  local k v
  [ -f "$N/sysctl.saved" ] || return 0
  while read -r k v; do echo "$v" >"/proc/sys/$k" || log "could not restore $k to $v"; done <"$N/sysctl.saved"
  rm -f "$N/sysctl.saved"
}

note_host_dirs() {
  local d
  for d in "${HOST_DIRS[@]}"; do
    [ -e "$d" ] || grep -qxF -- "$d" "$N/host-dirs" 2>/dev/null || echo "$d" >>"$N/host-dirs"
  done
}

# sandbox_ids: this node's pod sandboxes, from containerd's CRI state on disk
# (readable after a crash too).
sandbox_ids() {
  local d
  for d in "$N/containerd/root/io.containerd.grpc.v1.cri/sandboxes" "$N/containerd/state/io.containerd.grpc.v1.cri/sandboxes"; do
    [ -d "$d" ] && ls "$d"
  done
  return 0
}

# host_files: what this node left in the HOST_DIRS: log links into the state
# dir, CNI results of its network and sandboxes, its shims' sockets, a
# device-plugin socket in a directory it created.
host_files() {
  local f id
  for f in /var/log/containers/*.log; do
    [ -L "$f" ] && [[ "$(readlink "$f")" == "$N/"* ]] && echo "$f"
  done
  for f in /var/lib/cni/results/"earthworm-$PORT-"*; do [ -e "$f" ] && echo "$f"; done
  for id in $(sandbox_ids | sort -u); do
    for f in /var/lib/cni/results/*"-$id-"*; do [ -e "$f" ] && echo "$f"; done
    # A killed shim leaves its socket, named by containerd 1.6 after the
    # sha256 of "<containerd address>/<namespace>/<sandbox id>".
    f="/run/containerd/s/$(printf '%s' "$CONTAINERD_SOCK/k8s.io/$id" | sha256sum | cut -d' ' -f1)"
    [ -S "$f" ] && echo "$f"
  done
  if grep -qxF /var/lib/kubelet/device-plugins "$N/host-dirs" 2>/dev/null &&
    [ -e /var/lib/kubelet/device-plugins/kubelet.sock ]; then
    echo /var/lib/kubelet/device-plugins/kubelet.sock
  fi
  return 0
}

# empty_host_dirs: directories this node created that are still there, empty.
empty_host_dirs() {
  local d
  [ -f "$N/host-dirs" ] || return 0
  while read -r d; do
    [ -d "$d" ] && [ -z "$(ls -A "$d")" ] && echo "$d"
  done <"$N/host-dirs"
  return 0
}

remove_host_files() {
  local f d
  while read -r f; do rm -f "$f"; done < <(host_files)
  [ -f "$N/host-dirs" ] || return 0
  # Deepest first; rmdir leaves a directory something else still uses.
  while read -r d; do rmdir "$d" 2>/dev/null || true; done < <(sort -r "$N/host-dirs")
}

node_lease() { kctl -n kube-node-lease get lease "$NODE_NAME" >/dev/null 2>&1; }

node_ready() {
  kctl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null |
    grep -qx True
}

up() {
  local reason t0 ready_ms lease_ms
  t0=$(date +%s%N)
  reason="$(missing_tools)"
  [ -z "$reason" ] || die "$reason"
  find_node_bin
  apiserver_ready || die "the control plane at $SERVER is not running: run cluster.sh up first"
  local images
  images="$(bash "$here/images/build.sh")" || die "building the node's images failed: see the output above"
  mkdir -p "$N/containerd" "$S/pids" "$S/logs"
  node_certs
  write_containerd_config
  write_cni_config
  write_kubelet_config
  save_sysctls
  note_host_dirs
  make_cgroup_root
  network_up

  start_one containerd containerd --config "$N/containerd.toml"
  wait_for containerd 30 cri_ctr version ||
    die "containerd did not answer within 30 s: see $S/logs/containerd.log"
  cri_ctr images import "$images/pause.tar" >/dev/null
  cri_ctr images import "$images/probe.tar" >/dev/null

  # What the API server may do on kubelets (logs, exec, port-forward).
  kctl create clusterrolebinding earthworm:apiserver-kubelet-client --clusterrole=system:kubelet-api-admin \
    --user=kube-apiserver-kubelet-client --dry-run=client -o yaml | kctl apply -f - >/dev/null

  start_kubelet
  start_one kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$N/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$N/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$N/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --profiling=false
  wait_for node 60 node_ready || die "node $NODE_NAME did not become Ready within 60 s: see $S/logs/kubelet.log"
  ready_ms=$((($(date +%s%N) - t0) / 1000000))
  # A new node's first Lease comes one renew interval (10 s) after the
  # kubelet starts: the kubelet tries before its Node exists, and waits.
  wait_for lease 30 node_lease || die "node $NODE_NAME has no Lease in kube-node-lease after 30 s: see $S/logs/kubelet.log"
  lease_ms=$((($(date +%s%N) - t0) / 1000000))
  alive kube-scheduler || die "kube-scheduler exited right after starting: see $S/logs/kube-scheduler.log"
  log "node $NODE_NAME Ready $ready_ms ms after up, its Lease there after $lease_ms ms"
  printf 'NODE_NAME=%s\nREADY_MS=%s\nLEASE_MS=%s\n' "$NODE_NAME" "$ready_ms" "$lease_ms"
}

stop_kubelet() {
  if alive kubelet; then kill -CONT "$(cat "$(pidfile kubelet)")" 2>/dev/null || true; fi
  stop_one kubelet
}

# node_pids: processes started for this node: named in their command line
# (containerd, its shims, the kubelet, kube-scheduler) or in its pods' cgroups.
node_pids() {
  local p d args
  for p in /proc/[0-9]*; do
    # Read in bash: a grep or awk given "$N/" would match itself.
    mapfile -d '' args 2>/dev/null <"$p/cmdline" || continue
    [[ "${args[*]}" == *"$N/"* ]] && echo "${p#/proc/}"
  done
  while read -r d; do
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
  done < <(cgroup_dirs)
  return 0
}

node_mounts() { awk -v p="$N/" 'index($2, p) == 1 { print $2 }' /proc/mounts; }

leftovers() {
  local found=0 pids mounts rules cg files
  pids="$(node_pids | sort -un | tr '\n' ' ')"
  [ -z "$pids" ] || { echo "processes: $pids"; found=1; }
  mounts="$(node_mounts)"
  [ -z "$mounts" ] || { echo "mounts: $mounts"; found=1; }
  if ip link show "$BRIDGE" >/dev/null 2>&1; then echo "bridge: $BRIDGE"; found=1; fi
  if [ -n "$(ip -4 route show "$POD_CIDR" 2>/dev/null)" ]; then echo "route: $POD_CIDR"; found=1; fi
  rules="$(iptables-save 2>/dev/null | grep -F -- "$RULE_TAG" || true)"
  [ -z "$rules" ] || { echo "iptables: $rules"; found=1; }
  cg="$(cgroup_dirs)"
  [ -z "$cg" ] || { echo "cgroups: $cg"; found=1; }
  files="$(host_files; empty_host_dirs)"
  [ -z "$files" ] || { echo "host files: $files"; found=1; }
  return "$found"
}

down() {
  local id pids m
  stop_one kube-scheduler
  stop_kubelet
  if alive containerd; then
    # Kill and delete every container and sandbox while containerd still
    # knows them; this unmounts their root filesystems and ends their shims.
    # (A hung containerd gets 10 s a call; the SIGKILLs below follow anyway.)
    for id in $(cri_ctr --timeout 10s tasks ls -q 2>/dev/null); do
      cri_ctr --timeout 10s tasks delete --force "$id" >/dev/null 2>&1 || true
    done
    for id in $(cri_ctr --timeout 10s containers ls -q 2>/dev/null); do
      cri_ctr --timeout 10s containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_one containerd
  # Whatever survived (a crash, a containerd that was killed): kill it.
  for _ in 1 2 3; do
    pids="$(node_pids | sort -un)"
    [ -n "$pids" ] || break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
  done
  # Pod network namespaces, volumes, root filesystems, /dev/shm: deepest first.
  for _ in 1 2 3; do
    [ -n "$(node_mounts)" ] || break
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done < <(node_mounts | sort -r)
  done
  while read -r m; do find "$m" -depth -type d -exec rmdir {} + 2>/dev/null || true; done < <(cgroup_dirs)
  network_down
  restore_sysctls
  remove_host_files
  rm -rf "$N/cni/ipam"
  local left
  if left="$(leftovers)"; then
    log "stopped; nothing left behind"
  else
    die "down left something behind: $left"
  fi
}

status() {
  local name
  for name in "${NODE_COMPONENTS[@]}"; do
    if alive "$name"; then echo "$name running (pid $(cat "$(pidfile "$name")"))"; else echo "$name stopped"; fi
  done
}

case "${1:-up}" in
up) up ;;
down) down ;;
status) status ;;
stop-kubelet) stop_kubelet ;;
start-kubelet)
  find_node_bin
  start_kubelet
  ;;
import)
  shift
  [ "$#" -gt 0 ] || die "import needs one or more image archives"
  cri_ctr images import "$@"
  ;;
leftovers) leftovers ;;
missing) missing_tools ;;
env)
  printf 'NODE_NAME=%s\nBRIDGE=%s\nPOD_CIDR=%s\nGATEWAY=%s\nKUBELET_PORT=%s\nCONTAINERD_ADDRESS=%s\nCGROUP_ROOT=%s\nPAUSE_IMAGE=%s\n' \
    "$NODE_NAME" "$BRIDGE" "$POD_CIDR" "$GATEWAY" "$KUBELET_PORT" "$CONTAINERD_SOCK" "$CGROUP_ROOT" "$PAUSE_IMAGE"
  ;;
*) die "unknown command \"$1\": use up, down, status, stop-kubelet, start-kubelet, import, leftovers or env" ;;
esac
