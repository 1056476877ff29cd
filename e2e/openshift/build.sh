#!/usr/bin/env bash
# Builds, in one `go build` of the oracle module (OpenShift 4.20's Kubernetes, 1.33):
# - e2e/bin/scc-oracle: OpenShift's SCC admission plugin behind a JSON interface (oracle/main.go),
#   with the project's own openshift/library-go uid package (library-go-uid/);
# - e2e/bin/kubernetes-1.33/: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and
#   kubectl of the oldest Kubernetes the operator supports; `make test` runs the integration tests
#   against them too (SENTINEL_KUBERNETES_BIN).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=v1.33.5
# What `kubectl version` and the API server's /version report, as a release build sets them.
GO_TOOL_LDFLAGS=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  GO_TOOL_LDFLAGS+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=33"
  GO_TOOL_LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
export GO_TOOL_LDFLAGS
grep -q "k8s.io/kubernetes $version\$" "$here/oracle/go.mod" || {
  echo "e2e/openshift/build.sh: oracle/go.mod does not pin k8s.io/kubernetes $version" >&2
  exit 1
}
packages="scc-oracle=github.com/seccomp-sentinel/seccomp-sentinel/e2e/openshift/oracle"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
  packages+=" kubernetes-1.33/$cmd=k8s.io/kubernetes/cmd/$cmd"
done
exec bash "$here/../go-tool.sh" scc-oracle "$here/oracle" "$packages" "about 4 minutes" \
  "$here/oracle/main.go" "$here/oracle/tools.go" "$here/library-go-uid/go.mod" \
  "$here/library-go-uid/pkg/security/uid/uid.go" "$0"
