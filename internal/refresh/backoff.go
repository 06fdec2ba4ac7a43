/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package refresh

import "time"

// Backoff is an exponential backoff with a cap and jitter.
type Backoff struct {
	// Base is the wait after the first failure.
	Base time.Duration
	// Cap is the longest wait.
	Cap time.Duration
}

var (
	// APIFailure backs off failed WeChat calls: 5s, 10s, 20s ... up to 5 minutes.
	APIFailure = Backoff{Base: 5 * time.Second, Cap: 5 * time.Minute}
	// ConfigurationError backs off problems only a human can fix (a missing Secret):
	// 30s, 1m, 2m ... up to 10 minutes; a change to the resource retries at once.
	ConfigurationError = Backoff{Base: 30 * time.Second, Cap: 10 * time.Minute}
)

// Delay is the wait after the given number of consecutive failures (1 for the first).
// random in [0, 1) spreads the wait over [80%, 100%] of the nominal value so that many
// resources failing together do not retry together.
func (b Backoff) Delay(failures int32, random float64) time.Duration {
	d := b.Base
	for i := int32(1); i < failures && d < b.Cap; i++ {
		d *= 2
	}
	d = min(d, b.Cap)
	return d - time.Duration(0.2*random*float64(d))
}

// Scaled returns the backoff with base and cap multiplied by f; f <= 0 or 1 returns it as it
// is. Only compressed-time runs (the fault matrix) scale backoffs, with the token lifetime.
func (b Backoff) Scaled(f float64) Backoff {
	if f <= 0 || f == 1 {
		return b
	}
	return Backoff{Base: time.Duration(f * float64(b.Base)), Cap: time.Duration(f * float64(b.Cap))}
}
