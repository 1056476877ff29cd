#!/usr/bin/env bash
# Builds one pinned Go reference tool into e2e/bin/NAME from its own module, in one `go build`;
# does nothing when e2e/bin/NAME is already built from the current pin. Built binaries are kept
# by pin outside the work tree (SENTINEL_CACHE_DIR, default ~/.cache/seccomp-sentinel), so a fresh
# clone on the same machine only copies them.
#
#   go-tool.sh NAME MODULE_DIR PACKAGE "COLD BUILD TIME" [PINNED_FILE...]
#
# The pin covers MODULE_DIR/go.mod and go.sum, the PINNED_FILEs (sources, the caller) and this
# script. GO_TOOL_CGO=1 builds with cgo; GO_TOOL_TAGS gives build tags.
set -euo pipefail
name=$1 module=$2 package=$3 estimate=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/bin/$name
pin=$(cat "$module/go.mod" "$module/go.sum" "$@" "$here/go-tool.sh" | sha256sum | cut -c1-16)
cache=${SENTINEL_CACHE_DIR:-$HOME/.cache/seccomp-sentinel}/$name/$pin
if [ -x "$bin" ] && [ "$(cat "$bin.pin" 2>/dev/null)" = "$pin" ]; then
  exit 0
fi
if [ ! -x "$cache/$name" ]; then
  command -v go >/dev/null || { echo "$name: Go is required (see README prerequisites)" >&2; exit 1; }
  echo "$name: building from $module (cold build: $estimate on 2 cores)"
  mkdir -p "$cache.tmp"
  start=$(date +%s)
  (cd "$module" && GOFLAGS=-mod=mod CGO_ENABLED=${GO_TOOL_CGO:-0} \
      go build -trimpath -ldflags "-s -w" ${GO_TOOL_TAGS:+-tags "$GO_TOOL_TAGS"} -o "$cache.tmp/$name" "$package")
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
  echo "$name: built in $(( $(date +%s) - start ))s"
fi
mkdir -p "$(dirname "$bin")"
cp "$cache/$name" "$bin"
echo "$pin" > "$bin.pin"
