//go:build tools

// Package tools keeps Kyverno's module, whose reports-controller build.sh builds, in go.mod (`go
// mod tidy` would drop it otherwise).
package tools

import _ "github.com/kyverno/kyverno/cmd/reports-controller"
