#!/usr/bin/env bash
# Copies the CRDs of the APIs seccomp-sentinel reads but does not own from their pinned upstream Go
# modules into e2e/bin/crds/, so the test control plane serves the real schemas:
#   - SecurityContextConstraints (security.openshift.io/v1), from github.com/openshift/api;
#   - OpenShift's APIServer config (config.openshift.io/v1), whose TLS security profile /metrics
#     follows, from the same module (installed only by the test of that, on a control plane of its own);
#   - SeccompProfile (security-profiles-operator.x-k8s.io), from sigs.k8s.io/security-profiles-operator;
#   - ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1), from
#     github.com/prometheus-operator/prometheus-operator, to check config/prometheus against the
#     API server (not installed by default). OLM's CRDs come with OLM's build (e2e/olm/build.sh).
# Nothing of the modules is committed to this repository; each copy is redone only when its pin moves.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
crds=$(cd "$here/.." && pwd)/bin/crds

# fetch MODULE@VERSION PATH-IN-MODULE OUTPUT-NAME
fetch() {
  local module=$1 file=$2 out=$crds/$3
  local stamp="$out.module"
  if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module" ]; then
    return 0
  fi
  local dir
  dir=$(cd "$here" && GOFLAGS=-mod=mod go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -f "$dir/$file" ] || { echo "testenv: could not fetch $file from $module" >&2; exit 1; }
  mkdir -p "$crds"
  cp "$dir/$file" "$out"
  chmod u+w "$out"
  echo "$module" > "$stamp"
  echo "testenv: $3 from $module"
}

# github.com/openshift/api has no tagged releases for OpenShift 4; this commit is from February 2026.
fetch github.com/openshift/api@v0.0.0-20260213204242-d34f11c515b3 \
  security/v1/zz_generated.crd-manifests/0000_03_config-operator_01_securitycontextconstraints.crd.yaml \
  securitycontextconstraints.crd.yaml
fetch github.com/openshift/api@v0.0.0-20260213204242-d34f11c515b3 \
  config/v1/zz_generated.crd-manifests/0000_10_config-operator_01_apiservers-Default.crd.yaml \
  apiservers.crd.yaml
fetch sigs.k8s.io/security-profiles-operator@v0.10.0 \
  deploy/base-crds/crds/seccompprofile.yaml \
  seccompprofiles.crd.yaml
fetch github.com/prometheus-operator/prometheus-operator@v0.85.0 \
  example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml \
  servicemonitors.crd.yaml
fetch github.com/prometheus-operator/prometheus-operator@v0.85.0 \
  example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml \
  prometheusrules.crd.yaml
