#!/usr/bin/env bash
# Builds the committed eBPF objects from their sources: bpf/heartbeat.bpf.o
# (the wire probe) and bpf/gotls.bpf.o (the Go TLS uprobes). CO-RE, debug
# info stripped, .BTF/.BTF.ext kept. The kernel types come from the committed
# bpf/vmlinux.h (as libbpf-bootstrap does), so an object is the same on every
# build machine whatever its kernel; CO-RE relocates it at load time.
#   bash bpf/build.sh                rebuild the committed objects
#   bash bpf/build.sh --check        rebuild into a temp dir, fail if a committed object differs
#   bash bpf/build.sh --regen-vmlinux  regenerate bpf/vmlinux.h from this kernel's BTF, then rebuild
# Environment: CLANG, LLVM_STRIP, BPFTOOL, VMLINUX_BTF (default /sys/kernel/btf/vmlinux).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
clang="${CLANG:-clang}"
strip="${LLVM_STRIP:-llvm-strip}"
bpftool="${BPFTOOL:-bpftool}"
btf="${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}"
objects=(heartbeat gotls)

check=0
regen=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  --regen-vmlinux) regen=1 ;;
  *) echo "build.sh: unknown argument \"$1\": use --check, --regen-vmlinux or nothing" >&2; exit 2 ;;
esac

for tool in "$clang" "$strip" "$bpftool"; do
  command -v "$tool" >/dev/null || {
    echo "build.sh: \"$tool\" is not installed: apt-get install clang llvm bpftool libbpf-dev" >&2
    exit 3
  }
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ "$regen" = 1 ] || [ ! -f "$here/vmlinux.h" ]; then
  [ -r "$btf" ] || { echo "build.sh: cannot read kernel BTF \"$btf\": set VMLINUX_BTF" >&2; exit 3; }
  "$bpftool" btf dump file "$btf" format c > "$here/vmlinux.h"
fi
cp "$here/vmlinux.h" "$tmp/vmlinux.h"

stale=0
for name in "${objects[@]}"; do
  # Compile from inside bpf/ with relative names and a mapped temp prefix, so
  # the object does not depend on where the tree or the temp dir lives.
  (
    cd "$here"
    "$clang" -g -O2 -target bpf -D__TARGET_ARCH_x86 \
      -fdebug-prefix-map="$tmp"=. -fdebug-prefix-map="$here"=. \
      -I"$tmp" -Wall -Werror \
      -c "$name.bpf.c" -o "$tmp/$name.bpf.o"
  )
  "$strip" -g "$tmp/$name.bpf.o"
  out="$here/$name.bpf.o"
  if [ "$check" = 1 ]; then
    if cmp -s "$tmp/$name.bpf.o" "$out"; then
      echo "bpf/$name.bpf.o is up to date"
    else
      echo "build.sh: bpf/$name.bpf.o is stale: run \"deno task build:bpf\" and commit it" >&2
      stale=1
    fi
    continue
  fi
  cp "$tmp/$name.bpf.o" "$out"
  echo "built $out ($(stat -c %s "$out") bytes)"
done
exit "$stale"
