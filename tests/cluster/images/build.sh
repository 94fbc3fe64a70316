#!/usr/bin/env bash
# Builds the container images of Earthworm's real test node without a
# registry or a Docker engine: each is one static binary in an otherwise empty
# OCI image, assembled with umoci and packed as an OCI archive (a tar of the
# image layout) whose index names the image by its full reference, so
# `ctr images import` keeps that name.
#
#   pause.tar   localhost/earthworm-test/pause:v1   containerd's sandbox image (pause.c)
#   probe.tar   localhost/earthworm-test/probe:v1   "probe serve PORT" / "probe whoami" (probe/)
#
# Archives are cached in $EARTHWORM_CACHE/node-images/<hash of the sources>;
# prints that directory. Needs gcc with a static libc, Go and umoci.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${EARTHWORM_CACHE:-$HOME/.cache/earthworm}"
PAUSE_REF=localhost/earthworm-test/pause:v1
PROBE_REF=localhost/earthworm-test/probe:v1

die() { echo "images: $*" >&2; exit 1; }

hash="$(cd "$here" && cat build.sh pause.c probe/go.mod probe/main.go | sha256sum | cut -c1-16)"
out="$cache/node-images/$hash"
if [ -f "$out/pause.tar" ] && [ -f "$out/probe.tar" ]; then
  echo "$out"
  exit 0
fi

for tool in gcc go umoci tar; do
  command -v "$tool" >/dev/null ||
    die "$tool is not installed: apt-get install gcc libc6-dev umoci, and Go 1.22+"
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# pack REF BINARY ARCHIVE ENTRYPOINT: an image holding BINARY as /ENTRYPOINT.
pack() {
  local ref="$1" binary="$2" archive="$3" entry="$4" layout="$work/oci-$4"
  umoci init --layout "$layout"
  umoci new --image "$layout:img"
  umoci insert --image "$layout:img" "$binary" "/$entry" >/dev/null
  umoci config --image "$layout:img" --os linux --architecture amd64 \
    --config.entrypoint "/$entry" --config.workingdir / >/dev/null
  umoci tag --image "$layout:img" "$ref"
  umoci rm --image "$layout:img"
  umoci gc --layout "$layout"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    -C "$layout" -cf "$archive.tmp" oci-layout index.json blobs
  mv "$archive.tmp" "$archive"
}

mkdir -p "$out"
echo "building the test node's images in $out" >&2
gcc -static -O2 -s -Wall -Wextra -Werror -o "$work/pause" "$here/pause.c" ||
  die "compiling pause.c failed: a static libc is needed (apt-get install libc6-dev)"
(cd "$here/probe" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$work/probe" .) ||
  die "building probe failed"
pack "$PAUSE_REF" "$work/pause" "$out/pause.tar" pause
pack "$PROBE_REF" "$work/probe" "$out/probe.tar" probe
echo "$out"
