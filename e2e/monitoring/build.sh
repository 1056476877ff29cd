#!/usr/bin/env bash
# Builds e2e/bin/promtool from the pinned github.com/prometheus/prometheus module.
# `remove_all_sd` leaves out the service-discovery plugins (the cloud SDKs): rule checks and rule
# unit tests do not use them, and they were more than half of the cold build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
GO_TOOL_TAGS=remove_all_sd exec bash "$here/../go-tool.sh" promtool "$here" \
  github.com/prometheus/prometheus/cmd/promtool "about 3 minutes" "$here/tools.go" "$0"
