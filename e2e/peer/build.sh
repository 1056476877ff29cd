#!/usr/bin/env bash
# Builds the peer of `make bench-peer` from the pinned module of go.mod: e2e/bin/reports-controller
# (Kyverno's background scan), and copies Kyverno's CRDs from the same module version into
# e2e/bin/kyverno-crds/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../go-tool.sh" reports-controller "$here" github.com/kyverno/kyverno/cmd/reports-controller \
  "about 20 minutes" "$0"

module=$(cd "$here" && go list -m -f '{{.Path}}@{{.Version}}' github.com/kyverno/kyverno)
crds=$here/../bin/kyverno-crds
if [ "$(cat "$crds/.module" 2>/dev/null)" != "$module" ]; then
  dir=$(cd "$here" && GOFLAGS=-mod=mod go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir/config/crds" ] || { echo "peer: no config/crds in $module" >&2; exit 1; }
  rm -rf "$crds" && mkdir -p "$crds"
  find "$dir/config/crds" -name '*.yaml' -exec cp {} "$crds/" \;
  chmod u+w "$crds"/*.yaml
  echo "$module" > "$crds/.module"
  echo "peer: CRDs from $module"
fi
