#!/usr/bin/env bash
# `make run`: starts the local control plane (e2e/bin) when no cluster is reachable, and prints
# how to reach it. Stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
kubectl=$PWD/e2e/bin/kubectl

if [ -n "${KUBECONFIG:-}" ] && "$kubectl" version --request-timeout=5s >/dev/null 2>&1; then
  echo "run: using the cluster of KUBECONFIG=$KUBECONFIG"
  exit 0
fi
exec cargo run --locked --quiet --features testenv --bin sentinel-testenv -- --kubeconfig-out .testenv/kubeconfig
