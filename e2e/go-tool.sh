#!/usr/bin/env bash
# Builds pinned Go reference tools into e2e/bin from one module, in one `go build`; does nothing
# when they are already built from the current pin. Built binaries are kept by pin outside the
# work tree (SENTINEL_CACHE_DIR, default ~/.cache/seccomp-sentinel), so a fresh clone on the same
# machine only copies them.
#
#   go-tool.sh NAME MODULE_DIR PACKAGES "COLD BUILD TIME" [PINNED_FILE...]
#
# PACKAGES is one package (built as e2e/bin/NAME) or a space-separated list of BIN=PACKAGE (each
# built as e2e/bin/BIN, which may name a subdirectory; NAME names the set). The pin covers
# MODULE_DIR/go.mod and go.sum, the PINNED_FILEs (sources, the caller) and this script.
# GO_TOOL_CGO=1 builds with cgo; GO_TOOL_TAGS gives build tags, GO_TOOL_LDFLAGS more linker flags
# (set them in a pinned caller). GO_TOOL_PREFETCH=1 only downloads the modules the build would
# need, when it is not built yet (e2e/prefetch.sh).
set -euo pipefail
name=$1 module=$2 packages=$3 estimate=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
read -r -a specs <<< "$packages"
if [ ${#specs[@]} = 1 ] && [[ $packages != *=* ]]; then
  specs=("$name=$packages")
fi
bins=() pkgs=()
for spec in "${specs[@]}"; do
  bins+=("${spec%%=*}")
  pkgs+=("${spec#*=}")
done
pin=$(cat "$module/go.mod" "$module/go.sum" "$@" "$here/go-tool.sh" | sha256sum | cut -c1-16)
cache=${SENTINEL_CACHE_DIR:-$HOME/.cache/seccomp-sentinel}/$name/$pin
built() {
  local dir=$1 bin
  for bin in "${bins[@]}"; do [ -x "$dir/$bin" ] || return 1; done
}
if built "$here/bin" && [ "$(cat "$here/bin/$name.pin" 2>/dev/null)" = "$pin" ]; then
  exit 0
fi
if [ -n "${GO_TOOL_PREFETCH:-}" ]; then
  # Listing the packages' dependencies, with the build's cgo setting and tags (they decide which
  # files, so which imports, count), downloads exactly the modules `go build` reads.
  built "$cache" && exit 0
  cd "$module" && GOFLAGS=-mod=mod CGO_ENABLED=${GO_TOOL_CGO:-0} \
    go list -deps ${GO_TOOL_TAGS:+-tags "$GO_TOOL_TAGS"} "${pkgs[@]}" >/dev/null
  echo "$name: modules downloaded"
  exit 0
fi
if ! built "$cache"; then
  command -v go >/dev/null || { echo "$name: Go is required (see README prerequisites)" >&2; exit 1; }
  echo "$name: building ${bins[*]} from $module (cold build: $estimate on 2 cores)"
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp/out"
  start=$(date +%s)
  # One package: `-o FILE`; several: `-o DIR/`, each binary named after its package's last element.
  out=$cache.tmp/out/${bins[0]}
  [ ${#pkgs[@]} = 1 ] || out=$cache.tmp/out/
  (cd "$module" && GOFLAGS=-mod=mod CGO_ENABLED=${GO_TOOL_CGO:-0} \
      go build -trimpath -ldflags "-s -w ${GO_TOOL_LDFLAGS:-}" ${GO_TOOL_TAGS:+-tags "$GO_TOOL_TAGS"} -o "$out" "${pkgs[@]}")
  for i in "${!bins[@]}"; do
    [ ${#pkgs[@]} = 1 ] && from=${bins[0]} || from=$(basename "${pkgs[$i]}")
    mkdir -p "$(dirname "$cache.tmp/${bins[$i]}")"
    mv "$cache.tmp/out/$from" "$cache.tmp/${bins[$i]}"
  done
  rm -rf "$cache.tmp/out" "$cache" && mv "$cache.tmp" "$cache"
  echo "$name: built in $(( $(date +%s) - start ))s"
fi
mkdir -p "$here/bin"
for bin in "${bins[@]}"; do
  mkdir -p "$(dirname "$here/bin/$bin")"
  cp "$cache/$bin" "$here/bin/$bin"
done
echo "$pin" > "$here/bin/$name.pin"
