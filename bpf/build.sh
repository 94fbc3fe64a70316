#!/usr/bin/env bash
# Builds bpf/heartbeat.bpf.o from heartbeat.bpf.c: CO-RE, debug info stripped,
# .BTF/.BTF.ext kept. vmlinux.h is generated from the running kernel's BTF
# into a temporary directory (never committed).
#   bash bpf/build.sh          rebuild the committed object
#   bash bpf/build.sh --check  rebuild into a temp dir, fail if the committed object differs
# Environment: CLANG, LLVM_STRIP, BPFTOOL, VMLINUX_BTF (default /sys/kernel/btf/vmlinux).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
clang="${CLANG:-clang}"
strip="${LLVM_STRIP:-llvm-strip}"
bpftool="${BPFTOOL:-bpftool}"
btf="${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}"
out="$here/heartbeat.bpf.o"

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  *) echo "build.sh: unknown argument \"$1\": use --check or nothing" >&2; exit 2 ;;
esac

for tool in "$clang" "$strip" "$bpftool"; do
  command -v "$tool" >/dev/null || {
    echo "build.sh: \"$tool\" is not installed: apt-get install clang llvm bpftool libbpf-dev" >&2
    exit 3
  }
done
[ -r "$btf" ] || { echo "build.sh: cannot read kernel BTF \"$btf\": set VMLINUX_BTF" >&2; exit 3; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bpftool" btf dump file "$btf" format c > "$tmp/vmlinux.h"

# Compile from inside bpf/ with relative names and a mapped temp prefix, so
# the object does not depend on where the tree or the temp dir lives.
(
  cd "$here"
  "$clang" -g -O2 -target bpf -D__TARGET_ARCH_x86 \
    -fdebug-prefix-map="$tmp"=. -fdebug-prefix-map="$here"=. \
    -I"$tmp" -Wall -Werror \
    -c heartbeat.bpf.c -o "$tmp/heartbeat.bpf.o"
)
"$strip" -g "$tmp/heartbeat.bpf.o"

if [ "$check" = 1 ]; then
  if cmp -s "$tmp/heartbeat.bpf.o" "$out"; then
    echo "bpf/heartbeat.bpf.o is up to date"
    exit 0
  fi
  echo "build.sh: bpf/heartbeat.bpf.o is stale: run \"deno task build:bpf\" and commit it" >&2
  exit 1
fi
cp "$tmp/heartbeat.bpf.o" "$out"
echo "built $out ($(stat -c %s "$out") bytes)"
