#!/usr/bin/env bash
# Builds e2e/bin/promtool from the pinned github.com/prometheus/prometheus module.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../go-tool.sh" promtool "$here" github.com/prometheus/prometheus/cmd/promtool \
  "about 8 minutes" "$here/tools.go" "$0"
