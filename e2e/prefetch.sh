#!/usr/bin/env bash
# Starts downloading the Go modules of every reference tool that is not built yet, in the
# background, and returns at once. On a fresh machine each `go build` otherwise first spends 20 to
# 30 s fetching its modules while the cores idle (about 95 s for the four builds); fetched ahead,
# those downloads overlap the Debian packages' installation and the builds before them. Each
# build script is run with GO_TOOL_PREFETCH=1, which downloads what its `go build` reads and builds
# nothing. A warm machine (every tool built for its pin) starts nothing. Output: .testenv/prefetch.log.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || exit 0
mkdir -p .testenv
(
  export GO_TOOL_PREFETCH=1
  for script in e2e/testenv/build.sh e2e/openshift/build.sh e2e/monitoring/build.sh e2e/olm/build.sh; do
    # A failure here only costs the overlap: the build itself fetches again and reports the error.
    bash "$script" || echo "prefetch: $script failed"
  done
) </dev/null >.testenv/prefetch.log 2>&1 &
