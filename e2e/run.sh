#!/usr/bin/env bash
# `make run`: runs the operator.
# - With KUBECONFIG pointing at a reachable cluster: installs the CRDs there and runs the operator
#   against it.
# - Otherwise: starts the local control plane of e2e/bin, applies config/samples/demo-workloads.yaml,
#   runs the operator, and shows `kubectl get seccompstatus -A` once every sample has a status.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
kubectl=$PWD/e2e/bin/kubectl
operator_args=(run "$@")

cargo build --locked --quiet --workspace --bin seccomp-sentinel --bin sentinel-testenv
sentinel=$CARGO_TARGET_DIR/debug/seccomp-sentinel

if [ -n "${KUBECONFIG:-}" ] && "$kubectl" get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
  echo "run: using the cluster of KUBECONFIG=$KUBECONFIG"
  "$kubectl" apply --server-side --field-manager=seccomp-sentinel-install -f crds/
  exec "$sentinel" "${operator_args[@]}"
fi

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kubeconfig=$PWD/.testenv/kubeconfig
rm -f "$kubeconfig"
"$CARGO_TARGET_DIR/debug/sentinel-testenv" --kubeconfig-out "$kubeconfig" &
pids+=($!)
for _ in $(seq 600); do [ -f "$kubeconfig" ] && break; sleep 0.2; done
[ -f "$kubeconfig" ] || { echo "run: the local control plane did not start" >&2; exit 1; }
export KUBECONFIG=$kubeconfig

"$kubectl" apply -f config/samples/demo-workloads.yaml
"$sentinel" "${operator_args[@]}" &
pids+=($!)

samples=$("$kubectl" get pods -n seccomp-demo --no-headers | wc -l)
for _ in $(seq 300); do
  [ "$("$kubectl" get seccompstatus -n seccomp-demo --no-headers 2>/dev/null | wc -l)" -ge "$samples" ] && break
  sleep 0.2
done
echo
"$kubectl" get seccompstatus -A -o wide
echo
echo "run: the operator is running on the local control plane. In another shell:"
echo "  export KUBECONFIG=$kubeconfig"
echo "  $kubectl get seccompstatus -A        # or: kubectl get seccomp -A"
echo "Ctrl-C stops the operator and the control plane."
wait "${pids[1]}"
