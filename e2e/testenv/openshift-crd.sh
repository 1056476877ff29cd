#!/usr/bin/env bash
# Copies the SecurityContextConstraints CRD (security.openshift.io/v1) from the pinned
# github.com/openshift/api Go module into e2e/bin/crds/, so the test control plane serves the real
# OpenShift schema. Nothing of the module is committed to this repository.
set -euo pipefail

# github.com/openshift/api has no tagged releases for OpenShift 4; this commit is from February 2026.
module=github.com/openshift/api@v0.0.0-20260213204242-d34f11c515b3
file=security/v1/zz_generated.crd-manifests/0000_03_config-operator_01_securitycontextconstraints.crd.yaml

here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$here/.." && pwd)/bin/crds/securitycontextconstraints.crd.yaml
stamp="$out.module"
if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module" ]; then
  exit 0
fi
dir=$(cd "$here" && GOFLAGS=-mod=mod go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -f "$dir/$file" ] || { echo "testenv: could not fetch $module" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
cp "$dir/$file" "$out"
chmod u+w "$out"
echo "$module" > "$stamp"
echo "testenv: SecurityContextConstraints CRD from $module"
