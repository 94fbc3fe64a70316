#!/usr/bin/env bash
# Builds (or reuses) a pinned Kubernetes control plane for Earthworm's tests:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kubectl
# from the k8s.io/kubernetes Go module, kwok from sigs.k8s.io/kwok, and etcd
# from its Go module. kubelet and kube-scheduler serve the real node (node.sh).
# Binaries land in $EARTHWORM_CLUSTER_BIN (default ~/.cache/earthworm/cluster/<versions>/bin).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
staging="v0${K8S_VERSION#v1}"   # v1.34.4 -> v0.34.4

cache="${EARTHWORM_CACHE:-$HOME/.cache/earthworm}"
root="$cache/cluster/k8s-$K8S_VERSION-kwok-$KWOK_VERSION-etcd-$ETCD_VERSION"
bin="${EARTHWORM_CLUSTER_BIN:-$root/bin}"
mkdir -p "$bin"

have_all() {
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kwok etcd; do
    [ -x "$bin/$b" ] || return 1
  done
}
if have_all; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is not installed: install Go 1.24+ to build the control plane" >&2; exit 3; }
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0

# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
# ./staging paths, which Go ignores outside the main module: pin them to the
# matching published versions.
src="$root/src"
mkdir -p "$src"
cd "$src"
if [ ! -f go.mod ]; then
  go mod init earthworm.local/cluster >&2
fi
go mod download -json "k8s.io/kubernetes@$K8S_VERSION" > /dev/null
kmod="$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION/go.mod"
replaces=$(grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$kmod" | awk -v v="$staging" '{print "-replace=" $1 "=" $1 "@" v}')
# shellcheck disable=SC2086
go mod edit $replaces "-require=k8s.io/kubernetes@$K8S_VERSION"
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
go mod tidy -e >&2 || true
for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
  [ -x "$bin/$c" ] || { echo "building $c $K8S_VERSION" >&2; go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" -o "$bin/$c" "k8s.io/kubernetes/cmd/$c" >&2; }
done

# kwok and etcd build in their own modules so their dependency versions stay theirs.
if [ ! -x "$bin/kwok" ]; then
  echo "building kwok $KWOK_VERSION" >&2
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
fi
if [ ! -x "$bin/etcd" ]; then
  echo "building etcd $ETCD_VERSION" >&2
  # etcd's server module replaces its sibling modules with ../ paths: pin them
  # to the same published release in a module of our own.
  esrc="$root/etcd-src"
  mkdir -p "$esrc"
  (
    cd "$esrc"
    [ -f go.mod ] || go mod init earthworm.local/etcd >&2
    go mod edit "-require=go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
      "-replace=go.etcd.io/etcd/api/v3=go.etcd.io/etcd/api/v3@$ETCD_VERSION" \
      "-replace=go.etcd.io/etcd/client/pkg/v3=go.etcd.io/etcd/client/pkg/v3@$ETCD_VERSION" \
      "-replace=go.etcd.io/etcd/client/v3=go.etcd.io/etcd/client/v3@$ETCD_VERSION" \
      "-replace=go.etcd.io/etcd/pkg/v3=go.etcd.io/etcd/pkg/v3@$ETCD_VERSION"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
    go mod tidy -e >&2 || true
    go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3 >&2
  )
fi
have_all || { echo "build.sh: some control-plane binaries are missing in $bin" >&2; exit 1; }
echo "$bin"
