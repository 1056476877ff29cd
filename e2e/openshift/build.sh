#!/usr/bin/env bash
# Builds e2e/bin/scc-oracle: OpenShift's SCC admission plugin behind a JSON interface
# (oracle/main.go), with the project's own openshift/library-go uid package (library-go-uid/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../go-tool.sh" scc-oracle "$here/oracle" . "about 4 minutes" \
  "$here/oracle/main.go" "$here/library-go-uid/go.mod" "$here/library-go-uid/pkg/security/uid/uid.go" "$0"
