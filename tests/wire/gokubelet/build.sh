#!/usr/bin/env bash
# Builds the Go test kubelet (main.go here) once per source and Go version
# into $EARTHWORM_CACHE/gokubelet/<hash>/kubelet (default cache
# ~/.cache/earthworm) and prints its path. Stripped like release kubelets
# (-s -w: no symbol table, no DWARF; .gopclntab stays).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v go >/dev/null || { echo "build.sh: Go is not installed: install Go 1.24+" >&2; exit 3; }
cache="${EARTHWORM_CACHE:-$HOME/.cache/earthworm}"
hash="$( (cat "$here/main.go" "$here/go.mod" "$here/go.sum"; go version) | sha256sum | cut -c1-16)"
dir="$cache/gokubelet/$hash"
bin="$dir/kubelet"
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  (cd "$here" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
