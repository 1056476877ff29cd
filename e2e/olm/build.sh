#!/usr/bin/env bash
# Builds e2e/bin/bundle-validate (validate/main.go) from the pinned github.com/operator-framework/api
# module: the validators of `operator-sdk bundle validate --select-optional suite=operatorframework`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../go-tool.sh" bundle-validate "$here" ./validate "about 2 minutes" \
  "$here/validate/main.go" "$0"
