#!/usr/bin/env bash
# Builds e2e/bin/scc-oracle (OpenShift's SCC admission plugin behind a JSON interface, see
# oracle/main.go) from its pinned Go modules; does nothing when it is already built from the
# current pins. Cached outside the work tree like the control plane (SENTINEL_CACHE_DIR).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$here/.." && pwd)/bin/scc-oracle
pin=$(cat "$here/oracle/go.mod" "$here/oracle/go.sum" "$here/oracle/main.go" \
  "$here/library-go-uid/go.mod" "$here/library-go-uid/pkg/security/uid/uid.go" "$here/build.sh" | sha256sum | cut -c1-16)
cache=${SENTINEL_CACHE_DIR:-$HOME/.cache/seccomp-sentinel}/scc-oracle/$pin
if [ -x "$bin" ] && [ "$(cat "$bin.pin" 2>/dev/null)" = "$pin" ]; then
  exit 0
fi
if [ ! -x "$cache/scc-oracle" ]; then
  command -v go >/dev/null || { echo "scc-oracle: Go is required (see README prerequisites)" >&2; exit 1; }
  echo "scc-oracle: building OpenShift's SCC admission oracle (cold build: about 6 minutes on 2 cores)"
  mkdir -p "$cache.tmp"
  start=$(date +%s)
  (cd "$here/oracle" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$cache.tmp/scc-oracle" .)
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
  echo "scc-oracle: built in $(( $(date +%s) - start ))s"
fi
mkdir -p "$(dirname "$bin")"
cp "$cache/scc-oracle" "$bin"
echo "$pin" > "$bin.pin"
