#!/usr/bin/env bash
# shellcheck disable=SC2016 # the single-quoted snippets are TypeScript
# Builds Earthworm's container image without a Docker engine: an OCI archive
# that `skopeo inspect oci-archive:FILE` reads and `ctr -n k8s.io images
# import FILE` loads, tagged with the image the manifest names
# (ghcr.io/earthworm-dev/earthworm:<version in deno.json>).
#
#   bash deploy/build_image.sh [-o FILE]      # default dist/earthworm-<version>.oci.tar
#   bash deploy/build_image.sh --rootfs DIR   # only the root filesystem (deploy/Dockerfile)
#
# The image holds, and nothing else (no shell, no package manager):
#   - Debian 12 libraries, from `apt-get download` + `dpkg-deb -x`: libc6,
#     libgcc-s1 (Deno), libbpf1, libelf1, zlib1g (the eBPF probe's dlopen),
#     and whatever their Depends add;
#   - /earthworm, the entrypoint. Where `deno compile` can fetch its runtime or
#     is given one (DENORT_BIN), the compiled program. Otherwise a small
#     launcher (deploy/launcher.c) that execs the Deno runtime from the npm
#     registry (/usr/local/bin/deno) on Earthworm code-split into chunks
#     (/opt/earthworm/app) with its npm packages cached for offline use
#     (/opt/earthworm/deno_dir): dynamic imports stay lazy, so a follower never
#     loads @kubernetes/client-node (README.md, "The image", has the memory).
#
# Needs Debian 12's apt sources (run it in debian:12 elsewhere), npm (or a Deno
# 2 on PATH, or DENO=/path/to/deno), gcc, and umoci and skopeo for the archive.
# Downloads are cached in ~/.cache/earthworm/image, so a rerun takes seconds.
# Layers are reproducible: sorted, owned by root, every mtime set to
# SOURCE_DATE_EPOCH (default: the last commit's time).
#
# Settings: EARTHWORM_IMAGE_MODE=auto|compiled|runtime (auto), DENORT_BIN,
# DENO_VERSION (2.9.6), EARTHWORM_IMAGE_CACHE, SOURCE_DATE_EPOCH, DENO.
set -euo pipefail
umask 022
export LC_ALL=C NO_COLOR=1

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DENO_VERSION="${DENO_VERSION:-2.9.6}"
MODE="${EARTHWORM_IMAGE_MODE:-auto}"
CACHE="${EARTHWORM_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/earthworm/image}"
# Debian packages the image needs by name; apt-cache adds their Depends.
PACKAGES=(libc6 libgcc-s1 libbpf1 libelf1 zlib1g)
# Paths inside the image (deploy/launcher.c has the same three).
DENO_PATH=usr/local/bin/deno
APP_DIR=opt/earthworm/app
DENO_DIR_PATH=opt/earthworm/deno_dir

log() { echo "build_image: $*" >&2; }
die() {
  echo "build_image: $*" >&2
  exit 1
}
usage() { sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; }

out=""
rootfs_out=""
while [ $# -gt 0 ]; do
  case "$1" in
  -o | --output) out="${2:?}" && shift 2 ;;
  --rootfs) rootfs_out="${2:?}" && shift 2 ;;
  -h | --help) usage && exit 0 ;;
  *) usage && die "Unknown argument \"$1\"" ;;
  esac
done
case "$MODE" in auto | compiled | runtime) ;; *) die "EARTHWORM_IMAGE_MODE=\"$MODE\": use auto, compiled or runtime" ;; esac

# --- tools ------------------------------------------------------------------
# shellcheck source=/dev/null
os="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}/${PRETTY_NAME:-}")"
[ "${os%%/*}" = bookworm ] ||
  die "The image is made of Debian 12 packages and this is \"${os#*/}\": run the script in debian:12 (deploy/Dockerfile does)"
need() { command -v "$1" >/dev/null || die "\"$1\" is missing: apt-get install $2"; }
need apt-get apt
need dpkg-deb dpkg
need gcc gcc
if [ -z "$rootfs_out" ]; then
  need umoci umoci
  need skopeo skopeo
fi
if [ -n "${DENO:-}" ]; then
  deno="$DENO"
elif command -v deno >/dev/null; then
  deno="$(command -v deno)"
else
  need npx "nodejs npm"
  deno="$(npx -y "deno@$DENO_VERSION" eval 'console.log(Deno.execPath())' | tail -n 1)"
fi
[ -x "$deno" ] || die "Cannot run Deno \"$deno\": set DENO to a Deno 2 binary"
# Runs a TypeScript snippet (JSON handling): deno_eval CODE ARGS...
deno_eval() {
  local code="$1"
  shift
  "$deno" eval --no-config "$code" -- "$@"
}

case "$(dpkg --print-architecture)" in
amd64) triplet=x86_64-linux-gnu loader=lib64/ld-linux-x86-64.so.2 deno_pkg=linux-x64-glibc ;;
arm64) triplet=aarch64-linux-gnu loader=lib/ld-linux-aarch64.so.1 deno_pkg=linux-arm64-glibc ;;
*) die "Unsupported architecture \"$(dpkg --print-architecture)\": amd64 or arm64" ;;
esac
arch="$(dpkg --print-architecture)"

version="$(deno_eval 'console.log(JSON.parse(Deno.readTextFileSync(Deno.args[0])).version)' "$ROOT/deno.json")"
[ -n "$version" ] || die "deno.json has no \"version\""
image="ghcr.io/earthworm-dev/earthworm:$version"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)"
fi
created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
out="${out:-$ROOT/dist/earthworm-$version.oci.tar}"

work="$(mktemp -d "${TMPDIR:-/tmp}/earthworm-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
layers="$work/layers"
mkdir -p "$CACHE/debs" "$CACHE/npm" "$layers"

# --- Debian packages ----------------------------------------------------------
if ! apt-cache show libbpf1 >/dev/null 2>&1; then
  log "apt-get update (no package lists yet)"
  apt-get update -q >/dev/null || die "apt-get update failed"
fi
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances "${PACKAGES[@]}" >"$work/depends.txt" ||
  die "apt-cache depends ${PACKAGES[*]} failed"
mapfile -t debs < <(grep -v -e '^ ' -e '^<' "$work/depends.txt" | sort -u)
[ "${#debs[@]}" -gt 0 ] || die "apt-cache depends named no packages"
log "Debian packages: ${debs[*]}"
debian="$layers/1-debian"
mkdir -p "$debian"
# 'URL' FILE SIZE SHA256:HASH, one line a package; download what is not cached.
unpacked=0
while read -r _url file _size hash; do
  if ! echo "${hash#SHA256:}  $CACHE/debs/$file" | sha256sum -c --status 2>/dev/null; then
    pkg="${file%%_*}"
    (cd "$CACHE/debs" && apt-get -q -o APT::Sandbox::User="$(id -un)" download "$pkg" >/dev/null) ||
      die "apt-get download $pkg failed"
    echo "${hash#SHA256:}  $CACHE/debs/$file" | sha256sum -c --status ||
      die "$file does not match its SHA256 in the package lists"
  fi
  dpkg-deb -x "$CACHE/debs/$file" "$debian"
  unpacked=$((unpacked + 1))
done < <(apt-get download --print-uris "${debs[@]}" | sort -k2)
[ "$unpacked" = "${#debs[@]}" ] || die "apt-get download --print-uris ${debs[*]} named $unpacked packages, not ${#debs[@]}"
# Unused here: iconv modules (8 MB), translations, lintian data, changelogs.
# The copyright files stay.
rm -rf "$debian/usr/lib/$triplet/gconv" "$debian/usr/share/locale" "$debian/usr/share/lintian"
find "$debian/usr/share/doc" -type f ! -name copyright -delete
mkdir -p "$debian/etc" "$debian/tmp"
chmod 1777 "$debian/tmp"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$debian/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$debian/etc/group"

# --- Earthworm: compiled, or the Deno runtime + code-split program -------------
compiled=""
why_not=""
if [ "$MODE" != runtime ]; then
  log "deno compile${DENORT_BIN:+ (DENORT_BIN=$DENORT_BIN)}"
  if (cd "$ROOT" && timeout 600 "$deno" compile --quiet --v8-flags=--heap-growing-percent=50,--max-semi-space-size=4 --allow-all --output "$work/earthworm" main.ts) >"$work/compile.log" 2>&1; then
    got="$("$work/earthworm" --version 2>&1 | head -n 1 || true)"
    if [ "$got" = "earthworm $version" ]; then
      compiled=1
    else
      why_not="the compiled file prints \"$got\" for --version, not \"earthworm $version\" (DENORT_BIN must be denort, not deno)"
    fi
  else
    # Its error's second cause names what failed (the runtime's download).
    why_not="$(sed -n 's/^ *1: //p' "$work/compile.log" | head -n 1)"
    why_not="${why_not:-$(head -n 1 "$work/compile.log")}"
  fi
  [ -n "$compiled" ] || [ "$MODE" = auto ] || die "deno compile failed: $why_not"
fi

if [ -n "$compiled" ]; then
  what="compiled binary (deno compile $("$deno" --version | head -n 1 | cut -d' ' -f2))"
  mkdir -p "$layers/2-earthworm"
  mv "$work/earthworm" "$layers/2-earthworm/earthworm"
  check_bins=(earthworm)
else
  what="Deno $DENO_VERSION runtime from npm + code-split program${why_not:+ (no deno compile: $why_not)}"
  # The runtime: the deno npm package's platform binary.
  tgz="$CACHE/npm/deno-$deno_pkg-$DENO_VERSION.tgz"
  if [ ! -s "$tgz" ]; then
    log "npm pack @deno/$deno_pkg@$DENO_VERSION"
    (cd "$work" && npm pack --silent "@deno/$deno_pkg@$DENO_VERSION" >/dev/null) ||
      die "npm pack @deno/$deno_pkg@$DENO_VERSION failed"
    mv "$work/deno-$deno_pkg-$DENO_VERSION.tgz" "$tgz"
  fi
  runtime="$layers/2-deno"
  mkdir -p "$runtime/${DENO_PATH%/*}"
  tar -xzf "$tgz" -O package/deno >"$runtime/$DENO_PATH"
  chmod 755 "$runtime/$DENO_PATH"
  got="$("$runtime/$DENO_PATH" --version | head -n 1)"
  case "$got" in "deno $DENO_VERSION "*) ;; *) die "The npm package's Deno says \"$got\", not $DENO_VERSION" ;; esac

  # The program: every module main.ts reaches, bundled into chunks, one per
  # dynamic import, with the UI and the eBPF object inlined; npm packages
  # stay imports, resolved through the import map below.
  app="$layers/4-app"
  stage="$app/$APP_DIR"
  mkdir -p "$stage"
  deno_eval '
    const { imports = {} } = JSON.parse(Deno.readTextFileSync(Deno.args[0]));
    for (const [k, v] of Object.entries(imports)) {
      if (String(v).startsWith("npm:")) console.log(k.endsWith("/") ? `${k}*` : k);
    }' "$ROOT/deno.json" >"$work/externals.txt" || die "Cannot read the imports of deno.json"
  externals=()
  while read -r key; do externals+=(--external "$key"); done <"$work/externals.txt"
  (cd "$ROOT" && "$deno" bundle --quiet --platform deno --minify --code-splitting \
    "${externals[@]}" --outdir "$stage" main.ts) || die "deno bundle failed"
  # deno.json for the image: the npm imports main.ts uses, the compiler and
  # unstable settings; deno.lock pins their versions.
  (cd "$ROOT" && "$deno" info --json main.ts) >"$work/info.json" || die "deno info main.ts failed"
  deno_eval '
    const [config, info, out] = Deno.args;
    const c = JSON.parse(Deno.readTextFileSync(config));
    const used = new Set(Object.keys(JSON.parse(Deno.readTextFileSync(info)).redirects ?? {}));
    const norm = (v) => String(v).replace(/^npm:\/?/, "npm:").replace(/\/$/, "");
    c.imports = Object.fromEntries(Object.entries(c.imports ?? {}).filter(([, v]) => used.has(norm(v))));
    for (const k of ["name", "exports", "tasks", "lint", "fmt", "test", "bench", "exclude"]) delete c[k];
    Deno.writeTextFileSync(out, JSON.stringify(c, null, 2) + "\n");
  ' "$ROOT/deno.json" "$work/info.json" "$stage/deno.json"
  cp "$ROOT/deno.lock" "$stage/deno.lock"
  # Cache those npm packages (the lock loses every other package), then copy
  # exactly the packages reachable from the imports, without type
  # declarations and source maps.
  export DENO_DIR="$CACHE/deno_dir"
  (cd "$stage" && "$deno" install --quiet --entrypoint main.js) || die "deno install (npm packages) failed"
  (cd "$stage" && "$deno" info --json main.js) >"$work/app-info.json" || die "deno info main.js failed"
  unset DENO_DIR
  deps="$layers/3-npm"
  deno_eval '
    const [file, npmDir] = Deno.args;
    const info = JSON.parse(Deno.readTextFileSync(file));
    const pkgs = info.npmPackages ?? {};
    const todo = info.modules.filter((m) => m.kind === "npm").map((m) => m.npmPackage);
    const seen = new Set();
    while (todo.length) {
      const id = todo.pop();
      if (seen.has(id)) continue;
      if (!pkgs[id]?.localPath?.startsWith(`${npmDir}/`)) throw new Error(`npm package ${id} is not cached in ${npmDir}`);
      seen.add(id);
      todo.push(...(pkgs[id].dependencies ?? []));
    }
    for (const id of [...seen].sort()) console.log(pkgs[id].localPath.slice(npmDir.length + 1));
  ' "$work/app-info.json" "$CACHE/deno_dir/npm" >"$work/npm-dirs.txt" || die "Cannot list the npm packages main.ts needs"
  while read -r dir; do
    mkdir -p "$deps/$DENO_DIR_PATH/npm/$dir"
    cp -R "$CACHE/deno_dir/npm/$dir/." "$deps/$DENO_DIR_PATH/npm/$dir/"
  done <"$work/npm-dirs.txt"
  find "$deps" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
  # /earthworm: execs the runtime on the program.
  gcc -O2 -s -o "$app/earthworm" "$ROOT/deploy/launcher.c" || die "Cannot compile deploy/launcher.c"
  check_bins=(earthworm "$DENO_PATH")
fi
log "$what"

# --- reproducible layers -------------------------------------------------------
for l in "$layers"/*; do
  find "$l" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
done
all="$work/all"
mkdir -p "$all"
for l in "$layers"/*; do cp -a "$l/." "$all/"; done

# --- every binary finds its libraries in the image, none on this machine ------
libpath="$all/lib/$triplet:$all/usr/lib/$triplet"
for bin in "${check_bins[@]}" "usr/lib/$triplet/libbpf.so.1"; do
  [ -e "$all/$bin" ] || die "/$bin is missing from the image"
  listing="$("$all/$loader" --library-path "$libpath" --list "$all/$bin" 2>&1)" ||
    die "/$bin cannot load its libraries: $listing"
  while read -r lib path; do
    case "$path" in
    "$all"/*) ;;
    *) die "/$bin needs $lib, which no package in the image provides ($path): add its package to PACKAGES" ;;
    esac
  done < <(echo "$listing" | sed -n 's/^\s*\(\S*\) => \(\S*\).*/\1 \2/p')
done

size_mb() { du -sb "$1" | awk '{ printf "%.1f MB", $1 / 1e6 }'; }
log "root filesystem: $(size_mb "$all")"

if [ -n "$rootfs_out" ]; then
  mkdir -p "$rootfs_out"
  cp -a "$all/." "$rootfs_out/"
  echo "$rootfs_out"
  exit 0
fi

# --- the OCI image ------------------------------------------------------------------
oci="$work/oci"
owner=()
[ "$(id -u)" = 0 ] || owner=(--rootless --uid-map "0:$(id -u):1" --gid-map "0:$(id -g):1")
umoci init --layout "$oci"
umoci new --image "$oci:$version"
for l in "$layers"/*; do
  umoci insert "${owner[@]}" --image "$oci:$version" --history.created "$created" \
    --history.created_by "deploy/build_image.sh: ${l##*/[0-9]-}" "$l" /
done
umoci config --image "$oci:$version" --created "$created" --history.created "$created" \
  --history.created_by "deploy/build_image.sh: entrypoint /earthworm" \
  --os linux --architecture "$arch" \
  --config.entrypoint /earthworm --config.cmd agent --config.exposedports 8080/tcp \
  --config.env PATH=/usr/local/bin:/usr/bin:/bin \
  --config.env MALLOC_ARENA_MAX=1 \
  --config.env MALLOC_TRIM_THRESHOLD_=131072 \
  --config.env MALLOC_MMAP_THRESHOLD_=131072 \
  --config.label "org.opencontainers.image.title=earthworm" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.licenses=MIT" \
  --config.label "org.opencontainers.image.description=Live cardiograms of a Kubernetes cluster's Lease heartbeats"
mkdir -p "$(dirname "$out")"
rm -f "$out"
skopeo copy --quiet "oci:$oci:$version" "oci-archive:$out:$image"
log "$image → $out: $(size_mb "$out") compressed, $(skopeo inspect "oci-archive:$out" | deno_eval '
  const m = JSON.parse(await new Response(Deno.stdin.readable).text());
  console.log(`${m.Layers.length} layers`);')"
echo "$out"
