//go:build tools

// Package monitoring pins promtool, which `make test` uses to check and unit-test the alerting
// rules of config/prometheus, and the Prometheus server, which scrapes the operator's /metrics
// over HTTPS in the tests.
package monitoring

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
