#!/usr/bin/env bash
# Builds e2e/bin/promtool and e2e/bin/prometheus from the pinned github.com/prometheus/prometheus
# module, in one `go build`. `remove_all_sd` leaves out the service-discovery plugins (the cloud
# SDKs): rule checks, rule unit tests and the tests' static scrape targets do not use them, and they
# were more than half of the cold build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
GO_TOOL_TAGS=remove_all_sd exec bash "$here/../go-tool.sh" prometheus "$here" \
  "promtool=github.com/prometheus/prometheus/cmd/promtool prometheus=github.com/prometheus/prometheus/cmd/prometheus" \
  "about 4 minutes" "$here/tools.go" "$0"
