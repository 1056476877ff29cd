#!/usr/bin/env bash
# `make run`: runs the operator.
# - With KUBECONFIG pointing at a reachable cluster: installs the CRDs there and runs the operator
#   against it.
# - Otherwise: starts the local control plane of e2e/bin and, where this machine can (root and the
#   node packages), two real nodes with the node agent; applies the sample workloads (pods of every
#   shape, Pending, in seccomp-demo; running pods on the nodes in seccomp-demo-node), runs the
#   operator, and shows `kubectl get seccompstatus -A -o wide` once every sample has a status (and
#   every running one the agent's verdict).
# Ctrl-C stops everything. SENTINEL_KUBERNETES_BIN=$PWD/e2e/bin/kubernetes-1.33 runs it all on
# Kubernetes 1.33, the oldest supported release (control plane, kubelets and kubectl).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
kubectl=${SENTINEL_KUBERNETES_BIN:-$PWD/e2e/bin}/kubectl
operator_args=(run "$@")

sentinel=$CARGO_TARGET_DIR/debug/seccomp-sentinel
build() { cargo build --locked --quiet --workspace --bin seccomp-sentinel --bin sentinel-testenv; }

if [ -n "${KUBECONFIG:-}" ] && "$kubectl" get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
  echo "run: using the cluster of KUBECONFIG=$KUBECONFIG"
  # SENTINEL_BIN: an operator binary built already (the tests pass theirs); else it is built here.
  if [ -n "${SENTINEL_BIN:-}" ]; then sentinel=$SENTINEL_BIN; else build; fi
  "$kubectl" apply --server-side --field-manager=seccomp-sentinel-install -k crds/
  exec "$sentinel" "${operator_args[@]}"
fi
build

# Real nodes need root and the Debian packages of e2e/node/prereqs.sh.
node_args=()
missing=$(bash e2e/node/prereqs.sh --check 2>&1 || true)
if [ "$(id -u)" = 0 ] && [ -z "$missing" ]; then
  node_args=(--nodes "$sentinel")
else
  echo "run: no real nodes (${missing:-they need root}); pods stay Pending and nothing verifies them in the kernel"
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
"$CARGO_TARGET_DIR/debug/sentinel-testenv" --kubeconfig-out "$kubeconfig" "${node_args[@]}" &
pids+=($!)
for _ in $(seq 900); do [ -f "$kubeconfig" ] && break; sleep 0.2; done
[ -f "$kubeconfig" ] || { echo "run: the local control plane did not start" >&2; exit 1; }
export KUBECONFIG=$kubeconfig
# The samples' `openshift.io/scc` annotations stand in for OpenShift's SCC admission, which the
# local control plane does not run; `auto` trusts the annotation on OpenShift only, so the demo
# says `true` (a flag in ARGS still wins).
export SENTINEL_TRUST_SCC_ANNOTATION=${SENTINEL_TRUST_SCC_ANNOTATION:-true}

"$kubectl" apply -f config/samples/demo-workloads.yaml
# /metrics answers a bearer token allowed to get it: a service account bound to the shipped
# reader role, as a scraper would be.
"$kubectl" apply -f config/rbac/metrics_reader_role.yaml
"$kubectl" create serviceaccount metrics-demo -n default
"$kubectl" create clusterrolebinding seccomp-sentinel-metrics-demo \
  --clusterrole=seccomp-sentinel-metrics-reader --serviceaccount=default:metrics-demo
namespaces=(seccomp-demo)
if [ ${#node_args[@]} -gt 0 ]; then
  "$kubectl" apply -f config/samples/demo-node-workloads.yaml
  namespaces+=(seccomp-demo-node)
fi
"$sentinel" "${operator_args[@]}" &
pids+=($!)

for ns in "${namespaces[@]}"; do
  samples=$("$kubectl" get pods -n "$ns" --no-headers | wc -l)
  for _ in $(seq 600); do
    statuses=$("$kubectl" get seccompstatus -n "$ns" --no-headers 2>/dev/null | wc -l)
    unverified=0
    if [ "$ns" = seccomp-demo-node ]; then
      unverified=$("$kubectl" get seccompstatus -n "$ns" -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="RuntimeVerified")].reason}{"\n"}{end}' 2>/dev/null | grep -c '^$' || true)
    fi
    [ "$statuses" -ge "$samples" ] && [ "$unverified" = 0 ] && break
    sleep 0.2
  done
done
echo
"$kubectl" get seccompstatus -A -o wide
echo
echo "run: the operator is running on the local control plane. In another shell:"
echo "  export KUBECONFIG=$kubeconfig"
echo "  $kubectl get seccompstatus -A -o wide     # or: kubectl get seccomp -A"
# -k: without --metrics-cert-dir the certificate of /metrics is self-signed.
echo "  curl -sk -H \"Authorization: Bearer \$($kubectl create token metrics-demo -n default)\" https://localhost:8443/metrics"
echo "Ctrl-C stops the operator, the nodes and the control plane."
wait "${pids[1]}"
