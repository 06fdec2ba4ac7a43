/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics holds the client's Prometheus collectors. Label values are the
// endpoint name and the errcode (or a transport failure kind): never a token,
// an appid or a URL.
type Metrics struct {
	// Requests counts HTTP attempts by endpoint and outcome
	// (wechat_api_requests_total{api,errcode}). errcode is "0" on success,
	// WeChat's errcode on an API error, or one of "dial", "timeout",
	// "canceled", "network", "http_<status>", "invalid_response".
	Requests *prometheus.CounterVec
	// Duration observes the latency of every HTTP attempt
	// (wechat_api_request_duration_seconds{api}).
	Duration *prometheus.HistogramVec
}

// NewMetrics returns unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wechat_api_requests_total",
			Help: "WeChat Open Platform API requests by endpoint and errcode (0 on success; a transport failure kind when no answer was received).",
		}, []string{"api", "errcode"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wechat_api_request_duration_seconds",
			Help:    "Latency of WeChat Open Platform API requests by endpoint.",
			Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"api"}),
	}
}

// Register registers the collectors on r. Registering collectors that are
// already registered there is not an error.
func (m *Metrics) Register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.Requests, m.Duration} {
		if err := r.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// DefaultMetrics are the collectors used by clients whose Options.Metrics is
// nil. They are registered on controller-runtime's metrics.Registry when the
// package is loaded.
var DefaultMetrics = NewMetrics()

func init() {
	if err := DefaultMetrics.Register(ctrlmetrics.Registry); err != nil {
		panic(err)
	}
}

func (m *Metrics) observe(api, outcome string, d time.Duration) {
	m.Requests.WithLabelValues(api, outcome).Inc()
	m.Duration.WithLabelValues(api).Observe(d.Seconds())
}
