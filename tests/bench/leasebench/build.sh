#!/usr/bin/env bash
# Builds leasebench (the Go files here: a client-go Lease informer and a Lease
# renewer) once per source and Go version into
# $EARTHWORM_CACHE/leasebench/<hash>/leasebench (default cache
# ~/.cache/earthworm) and prints its path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v go >/dev/null || { echo "build.sh: Go is not installed: install Go 1.24+" >&2; exit 3; }
cache="${EARTHWORM_CACHE:-$HOME/.cache/earthworm}"
hash="$( (cat "$here"/*.go "$here/go.mod" "$here/go.sum"; go version) | sha256sum | cut -c1-16)"
dir="$cache/leasebench/$hash"
bin="$dir/leasebench"
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  (cd "$here" && CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
