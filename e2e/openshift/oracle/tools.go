//go:build tools

// The Kubernetes release of OpenShift 4.20 (1.33, the oldest the operator supports), built from
// this module's pins in the same `go build` as the oracle: the integration tests run against it
// as well (see ../build.sh). The build tag keeps these imports out of the oracle itself.
package main

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
