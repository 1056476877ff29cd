//go:build tools

// Package tools keeps the modules of the OLM binaries that build.sh builds in go.mod (`go mod
// tidy` would drop them otherwise).
package tools

import (
	_ "github.com/operator-framework/operator-lifecycle-manager/cmd/catalog"
	_ "github.com/operator-framework/operator-lifecycle-manager/cmd/olm"
	_ "github.com/operator-framework/operator-registry/cmd/opm"
	_ "github.com/operator-framework/operator-sdk/cmd/operator-sdk"
)
