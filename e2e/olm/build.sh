#!/usr/bin/env bash
# Builds e2e/bin/bundle-validate from the pinned github.com/operator-framework/api module; does
# nothing when it is already built from the current pins (cached like the control plane).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$here/.." && pwd)/bin/bundle-validate
pin=$(cat "$here/go.mod" "$here/go.sum" "$here/validate/main.go" "$here/build.sh" | sha256sum | cut -c1-16)
cache=${SENTINEL_CACHE_DIR:-$HOME/.cache/seccomp-sentinel}/olm/$pin
if [ -x "$bin" ] && [ "$(cat "$bin.pin" 2>/dev/null)" = "$pin" ]; then
  exit 0
fi
if [ ! -x "$cache/bundle-validate" ]; then
  echo "olm: building bundle-validate (operator-framework/api validators)"
  mkdir -p "$cache"
  (cd "$here" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$cache/bundle-validate" ./validate)
fi
mkdir -p "$(dirname "$bin")"
cp "$cache/bundle-validate" "$bin"
echo "$pin" > "$bin.pin"
