/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package refresh

import (
	"testing"
	"time"
)

var issued = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

func TestRefreshAtBounds(t *testing.T) {
	cases := map[string]struct {
		before, jitter string
		lifetime       time.Duration
		// The refresh time must fall in [earliest, latest] before expiry.
		earliestBefore, latestBefore time.Duration
	}{
		"a 7200s token refreshes 12 minutes before expiry, minus up to 6 minutes of jitter": {
			lifetime: 7200 * time.Second, earliestBefore: 18 * time.Minute, latestBefore: 12 * time.Minute,
		},
		"a 1 hour token refreshes at the 10 minute floor, minus up to 3 minutes": {
			lifetime: time.Hour, earliestBefore: 13 * time.Minute, latestBefore: 10 * time.Minute,
		},
		"spec.refresh.before as a duration moves it earlier": {
			before: "30m", lifetime: 7200 * time.Second, earliestBefore: 36 * time.Minute, latestBefore: 30 * time.Minute,
		},
		"spec.refresh.before as a percentage": {
			before: "25%", lifetime: 7200 * time.Second, earliestBefore: 36 * time.Minute, latestBefore: 30 * time.Minute,
		},
		"spec.refresh.before below the floor is raised to the floor": {
			before: "1m", lifetime: 7200 * time.Second, earliestBefore: 18 * time.Minute, latestBefore: 12 * time.Minute,
		},
		"no jitter when spec says 0s": {
			jitter: "0s", lifetime: 7200 * time.Second, earliestBefore: 12 * time.Minute, latestBefore: 12 * time.Minute,
		},
		"a short-lived token keeps half its life": {
			lifetime: 2 * time.Minute, earliestBefore: 72 * time.Second, latestBefore: 60 * time.Second,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePolicy(tc.before, tc.jitter)
			if err != nil {
				t.Fatal(err)
			}
			expires := issued.Add(tc.lifetime)
			for _, r := range []float64{0, 0.25, 0.5, 0.999999} {
				at := p.RefreshAt(issued, expires, r)
				if at.Before(expires.Add(-tc.earliestBefore)) || at.After(expires.Add(-tc.latestBefore)) {
					t.Errorf("random %v: refresh %v before expiry, want between %v and %v",
						r, expires.Sub(at), tc.latestBefore, tc.earliestBefore)
				}
				if at.Nanosecond() != 0 {
					t.Errorf("refresh time %v is not whole seconds", at)
				}
			}
		})
	}
}

func TestRefreshAtJitterSpreads(t *testing.T) {
	p, _ := ParsePolicy("", "")
	expires := issued.Add(7200 * time.Second)
	if a, b := p.RefreshAt(issued, expires, 0), p.RefreshAt(issued, expires, 0.9); !b.Before(a) {
		t.Fatalf("a larger random number must refresh earlier: %v vs %v", a, b)
	}
}

func TestRefreshesPerDay(t *testing.T) {
	// The design promises 13-14 calls a day for 7200 s tokens (12 is the physical minimum):
	// count the refreshes in the 24 hours after a token was first issued.
	p, _ := ParsePolicy("", "")
	for _, r := range []float64{0, 0.5, 0.999} {
		end, calls := issued.Add(24*time.Hour), 0
		for now := p.RefreshAt(issued, issued.Add(7200*time.Second), r); !now.After(end); {
			calls++
			now = p.RefreshAt(now, now.Add(7200*time.Second), r)
		}
		if calls < 13 || calls > 14 {
			t.Errorf("random %v: %d refreshes in 24h, want 13 or 14", r, calls)
		}
	}
}

func TestRefreshAtExpiredLifetime(t *testing.T) {
	p, _ := ParsePolicy("", "")
	if at := p.RefreshAt(issued, issued.Add(-time.Second), 0.5); !at.Equal(issued) {
		t.Fatalf("a token with no lifetime refreshes at once, got %v", at)
	}
}

func TestParsePolicyRejects(t *testing.T) {
	for _, tc := range []struct{ before, jitter string }{
		{"soon", ""}, {"", "-1m"}, {"100%", ""}, {"", "x%"},
	} {
		if _, err := ParsePolicy(tc.before, tc.jitter); err == nil {
			t.Errorf("ParsePolicy(%q, %q) accepted", tc.before, tc.jitter)
		}
	}
}

func TestBackoff(t *testing.T) {
	cases := map[string]struct {
		b        Backoff
		failures int32
		want     time.Duration
	}{
		"first API failure waits the base":       {APIFailure, 1, 5 * time.Second},
		"third API failure doubles twice":        {APIFailure, 3, 20 * time.Second},
		"many API failures stop at the cap":      {APIFailure, 40, 5 * time.Minute},
		"configuration errors start slower":      {ConfigurationError, 1, 30 * time.Second},
		"configuration errors cap at 10 minutes": {ConfigurationError, 10, 10 * time.Minute},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tc.b.Delay(tc.failures, 0); got != tc.want {
				t.Errorf("Delay(%d, 0) = %v, want %v", tc.failures, got, tc.want)
			}
			low := tc.b.Delay(tc.failures, 0.999)
			if low >= tc.want || low < tc.want*8/10 {
				t.Errorf("Delay(%d, 0.999) = %v, want within [80%%, 100%%) of %v", tc.failures, low, tc.want)
			}
		})
	}
}

func TestMinMarginScalesWithCompressedTime(t *testing.T) {
	real := Policy{}
	for _, k := range []float64{1, 30, 60} {
		lifetime := time.Duration(float64(7200*time.Second) / k)
		compressed := Policy{}.WithMinMargin(time.Duration(float64(MinMargin) / k))
		want := time.Duration(float64(real.Margin(7200*time.Second)) / k)
		if got := compressed.Margin(lifetime); got != want {
			t.Errorf("compressed %gx: margin %v, want %v (the real margin scaled)", k, got, want)
		}
	}
	// Without the scaled floor a compressed token is refreshed at half its life.
	if got := (Policy{}).Margin(4 * time.Minute); got != 2*time.Minute {
		t.Errorf("default floor on a 4m token: margin %v, want 2m", got)
	}
	// A floor above 10 % of the lifetime still wins over the fraction.
	if got := (Policy{}).WithMinMargin(time.Minute).Margin(5 * time.Minute); got != time.Minute {
		t.Errorf("1m floor on a 5m token: margin %v, want 1m", got)
	}
}

func TestBackoffScaled(t *testing.T) {
	s := APIFailure.Scaled(1.0 / 60)
	if s.Base != APIFailure.Base/60 || s.Cap != 5*time.Second {
		t.Fatalf("APIFailure scaled 1/60 = %+v, want base %v, cap 5s", s, APIFailure.Base/60)
	}
	for _, f := range []float64{0, 1, -2} {
		if got := ConfigurationError.Scaled(f); got != ConfigurationError {
			t.Errorf("Scaled(%v) = %+v, want the backoff unchanged", f, got)
		}
	}
}
