/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a push, the "result" label of wechat_receiver_pushes_total.
const (
	resultApplied      = "applied"       // verified and persisted
	resultDuplicate    = "duplicate"     // a push already applied (WeChat's retry)
	resultStale        = "stale"         // verified, but older than what is stored
	resultIgnored      = "ignored"       // verified, of a type the receiver does not act on
	resultRejected     = "rejected"      // failed verification or parsing: 4xx
	resultUnknown      = "unknown"       // no such component, or no keys for it yet: 404
	resultTooLarge     = "too_large"     // body over the cap: 413
	resultPersistError = "persist_error" // could not write status: 5xx so WeChat retries
	resultInFlight     = "in_flight"     // a copy of it was being processed at that moment: 503
	resultRateLimited  = "rate_limited"  // redirect page: too many codes for the component: 429
)

// Metrics are the receiver's Prometheus metrics.
type Metrics struct {
	Pushes *prometheus.CounterVec
	// Messages counts messages of authorized accounts by msgtype, account (known: a
	// WeChatAuthorizer exists; unknown; unverified) and result.
	Messages *prometheus.CounterVec
	// Forwards counts forwards to apps by result; ForwardDuration times them.
	Forwards        *prometheus.CounterVec
	ForwardDuration prometheus.Histogram
	// RejectedLogsSuppressed counts log lines about rejected requests left out by sampling.
	RejectedLogsSuppressed prometheus.Counter
}

// NewMetrics creates the receiver's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wechat_receiver_pushes_total",
			Help: "Pushes received from WeChat, by InfoType (\"unknown\" when it could not be read) and result.",
		}, []string{"infotype", "result"}),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wechat_receiver_messages_total",
			Help: "Messages and events of authorized accounts, by MsgType (\"unknown\" when it could not be read), account (known, unknown, unverified) and result.",
		}, []string{"msgtype", "account", "result"}),
		Forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wechat_receiver_forwards_total",
			Help: "Messages forwarded to apps, by result: replied, no_reply, timeout, error, bad_reply, no_key.",
		}, []string{"result"}),
		ForwardDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wechat_receiver_forward_duration_seconds",
			Help:    "How long apps took to answer forwarded messages (capped by the forward timeout).",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4},
		}),
		RejectedLogsSuppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wechat_receiver_rejected_log_lines_suppressed_total",
			Help: "Log lines about rejected requests left out by sampling (the requests themselves are counted by result in wechat_receiver_pushes_total and wechat_receiver_messages_total).",
		}),
	}
	reg.MustRegister(m.Pushes, m.Messages, m.Forwards, m.ForwardDuration, m.RejectedLogsSuppressed)
	return m
}

var (
	defaultMetricsOnce sync.Once
	defaultMetrics     *Metrics
)

// DefaultMetrics are registered with controller-runtime's registry on first use.
func DefaultMetrics(reg prometheus.Registerer) *Metrics {
	defaultMetricsOnce.Do(func() { defaultMetrics = NewMetrics(reg) })
	return defaultMetrics
}
