// The one package of github.com/openshift/library-go that OpenShift's SCC admission code imports
// (pkg/security/uid), written for this project: the module itself is not on the Go module proxy.
module github.com/openshift/library-go

go 1.24
