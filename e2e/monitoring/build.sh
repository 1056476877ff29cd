#!/usr/bin/env bash
# Builds e2e/bin/promtool from the pinned github.com/prometheus/prometheus module; does nothing when
# it is already built from the current pins. Cached outside the work tree like the control plane.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$here/.." && pwd)/bin/promtool
pin=$(cat "$here/go.mod" "$here/go.sum" "$here/tools.go" "$here/build.sh" | sha256sum | cut -c1-16)
cache=${SENTINEL_CACHE_DIR:-$HOME/.cache/seccomp-sentinel}/promtool/$pin
if [ -x "$bin" ] && [ "$(cat "$bin.pin" 2>/dev/null)" = "$pin" ]; then
  exit 0
fi
if [ ! -x "$cache/promtool" ]; then
  command -v go >/dev/null || { echo "promtool: Go is required (see README prerequisites)" >&2; exit 1; }
  echo "promtool: building promtool from github.com/prometheus/prometheus (cold build: about 9 minutes on 2 cores)"
  mkdir -p "$cache.tmp"
  start=$(date +%s)
  (cd "$here" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$cache.tmp/promtool" \
      github.com/prometheus/prometheus/cmd/promtool)
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
  echo "promtool: built in $(( $(date +%s) - start ))s"
fi
mkdir -p "$(dirname "$bin")"
cp "$cache/promtool" "$bin"
echo "$pin" > "$bin.pin"
