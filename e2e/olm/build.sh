#!/usr/bin/env bash
# Builds the OLM reference tools from the pinned modules of go.mod, in one `go build`:
#   e2e/bin/operator-sdk          `operator-sdk bundle validate` (operator-sdk);
#   e2e/bin/olm, e2e/bin/catalog  OLM's own operators (operator-lifecycle-manager);
#   e2e/bin/opm                   the catalog tool: render, validate, serve (operator-registry);
# and copies OLM's CRDs from the operator-framework/api version they are built with into
# e2e/bin/olm-crds/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
GO_TOOL_CGO=1 GO_TOOL_TAGS=json1,containers_image_openpgp bash "$here/../go-tool.sh" olm-tools "$here" \
  "operator-sdk=github.com/operator-framework/operator-sdk/cmd/operator-sdk \
   olm=github.com/operator-framework/operator-lifecycle-manager/cmd/olm \
   catalog=github.com/operator-framework/operator-lifecycle-manager/cmd/catalog \
   opm=github.com/operator-framework/operator-registry/cmd/opm" \
  "about 5 minutes" "$0"
[ -z "${GO_TOOL_PREFETCH:-}" ] || exit 0

# OLM's CRDs, from the operator-framework/api version the OLM build above uses.
api=$(cd "$here" && go list -m -f '{{.Path}}@{{.Version}}' github.com/operator-framework/api)
crds=$here/../bin/olm-crds
if [ "$(cat "$crds/.module" 2>/dev/null)" != "$api" ]; then
  dir=$(cd "$here" && GOFLAGS=-mod=mod go mod download -json "$api" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir/crds" ] || { echo "olm: no crds/ in $api" >&2; exit 1; }
  rm -rf "$crds" && mkdir -p "$crds"
  cp "$dir"/crds/operators.coreos.com_*.yaml "$crds/"
  chmod u+w "$crds"/*.yaml
  echo "$api" > "$crds/.module"
  echo "olm: CRDs from $api"
fi
