/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package refresh decides when tokens are refreshed and how long to wait after a failure.
// It is pure: time and randomness come in as arguments, so it is tested without waiting.
package refresh

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	// MinMargin is the least time before expiry a token is refreshed. WeChat keeps the
	// previous token valid for only ~5 minutes after issuing a new one, so consumers need
	// the new value well before the old one expires.
	MinMargin = 10 * time.Minute
	// MarginFraction of the lifetime is refreshed early when that is more than MinMargin.
	MarginFraction = 0.10
	// DefaultJitterFraction of the lifetime is the default largest random jitter.
	DefaultJitterFraction = 0.05
)

// amount is a duration or a fraction of the token lifetime, as written in spec ("15m", "20%").
type amount struct {
	duration time.Duration
	fraction float64
}

func (a amount) of(lifetime time.Duration) time.Duration {
	if a.fraction > 0 {
		return time.Duration(a.fraction * float64(lifetime))
	}
	return a.duration
}

func parseAmount(field, s string) (amount, *amount, error) {
	if s == "" {
		return amount{}, nil, nil
	}
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(pct)
		if err != nil || n < 0 || n >= 100 {
			return amount{}, nil, fmt.Errorf("%s %q: a percentage must be a whole number from 0 to 99", field, s)
		}
		a := amount{fraction: float64(n) / 100}
		return a, &a, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return amount{}, nil, fmt.Errorf("%s %q: want a duration such as \"15m\" or a percentage such as \"20%%\"", field, s)
	}
	a := amount{duration: d}
	return a, &a, nil
}

// Policy is a parsed spec.refresh.
type Policy struct {
	before *amount
	jitter *amount
	// minMargin replaces MinMargin when set (see WithMinMargin).
	minMargin time.Duration
}

// WithMinMargin returns the policy with d as the least margin instead of MinMargin; 0 keeps
// MinMargin. Only compressed-time runs (benchmarks, simulators with short tokens) lower it:
// scaled down with the token lifetime, the policy then behaves exactly as with real tokens.
func (p Policy) WithMinMargin(d time.Duration) Policy {
	p.minMargin = d
	return p
}

// ParsePolicy parses spec.refresh.before and spec.refresh.jitter (empty means default).
func ParsePolicy(before, jitter string) (Policy, error) {
	_, b, err := parseAmount("refresh.before", before)
	if err != nil {
		return Policy{}, err
	}
	_, j, err := parseAmount("refresh.jitter", jitter)
	if err != nil {
		return Policy{}, err
	}
	return Policy{before: b, jitter: j}, nil
}

// Margin is how long before expiry a token of this lifetime is refreshed, before jitter:
// max(10m, 10% of the lifetime, spec.refresh.before), but never more than half the lifetime,
// so that short-lived tokens (the simulator's, in the demo) still live a while.
func (p Policy) Margin(lifetime time.Duration) time.Duration {
	floor := MinMargin
	if p.minMargin > 0 {
		floor = p.minMargin
	}
	margin := max(floor, time.Duration(MarginFraction*float64(lifetime)))
	if p.before != nil {
		margin = max(margin, p.before.of(lifetime))
	}
	return min(margin, lifetime/2)
}

// MaxJitter is the largest random time subtracted from the refresh time: spec.refresh.jitter,
// 5% of the lifetime by default, never more than a tenth of the lifetime.
func (p Policy) MaxJitter(lifetime time.Duration) time.Duration {
	jitter := time.Duration(DefaultJitterFraction * float64(lifetime))
	if p.jitter != nil {
		jitter = p.jitter.of(lifetime)
	}
	return min(jitter, lifetime/10)
}

// RefreshAt is when a token issued at issuedAt and expiring at expiresAt is refreshed.
// random is a number in [0, 1) that picks the jitter. The result is truncated to whole
// seconds so that it survives a round trip through status (RFC 3339) unchanged.
func (p Policy) RefreshAt(issuedAt, expiresAt time.Time, random float64) time.Time {
	lifetime := expiresAt.Sub(issuedAt)
	if lifetime <= 0 {
		return issuedAt.Truncate(time.Second)
	}
	jitter := time.Duration(random * float64(p.MaxJitter(lifetime)))
	return expiresAt.Add(-p.Margin(lifetime) - jitter).Truncate(time.Second)
}
