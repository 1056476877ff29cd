//go:build tools

// Package monitoring pins promtool, which `make test` uses to check and unit-test the alerting
// rules of config/prometheus.
package monitoring

import _ "github.com/prometheus/prometheus/cmd/promtool"
