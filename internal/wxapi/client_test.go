/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	testclock "k8s.io/utils/clock/testing"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

func TestRetriesBusyWithBackoffOnTheClock(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	tk := e.ticket(t)
	e.sim.AddFault(wxsim.Fault{API: APIComponentToken, ErrCode: -1, Count: 2})
	done := make(chan error, 1)
	go func() {
		_, err := e.client.ComponentToken(t.Context(), compID, compSecret, tk)
		done <- err
	}()
	waitFor(t, "first backoff", e.clock.HasWaiters)
	if n := e.sim.Calls(APIComponentToken, compID); n != 1 {
		t.Fatalf("calls before the first backoff = %d", n)
	}
	e.clock.Step(time.Second - time.Millisecond)
	if n := e.sim.Calls(APIComponentToken, compID); n != 1 {
		t.Fatalf("retried before the backoff elapsed: %d calls", n)
	}
	e.clock.Step(time.Millisecond)
	waitFor(t, "second attempt", func() bool { return e.sim.Calls(APIComponentToken, compID) == 2 })
	waitFor(t, "second backoff", e.clock.HasWaiters)
	e.clock.Step(2*time.Second - time.Millisecond) // backoff doubles
	if n := e.sim.Calls(APIComponentToken, compID); n != 2 {
		t.Fatalf("retried before the doubled backoff elapsed: %d calls", n)
	}
	e.clock.Step(time.Millisecond)
	if err := <-done; err != nil {
		t.Fatalf("ComponentToken after two busy answers: %v", err)
	}
	if n := e.sim.Calls(APIComponentToken, compID); n != 3 {
		t.Fatalf("calls = %d, want 3", n)
	}
	if v := counterValue(t, e.reg, APIComponentToken, "-1"); v != 2 {
		t.Fatalf("requests_total{errcode=-1} = %v, want 2", v)
	}
}

func TestRetryPolicy(t *testing.T) {
	cases := []struct {
		name      string
		fault     wxsim.Fault
		call      func(t *testing.T, e *testEnv, tok string) error
		api       string
		wantCalls int
		check     func(t *testing.T, err error)
	}{
		{
			name:  "busy answers are retried up to MaxAttempts",
			fault: wxsim.Fault{API: APIGetAuthorizerList, ErrCode: -1, Count: 10},
			call: func(t *testing.T, e *testEnv, tok string) error {
				_, err := e.client.GetAuthorizerList(t.Context(), tok, compID, 0, 10)
				return err
			},
			api: APIGetAuthorizerList, wantCalls: 3,
			check: func(t *testing.T, err error) {
				if !IsBusy(err) {
					t.Fatalf("err = %v, want busy", err)
				}
			},
		},
		{
			name:  "a code exchange is not retried on busy",
			fault: wxsim.Fault{API: APIQueryAuth, ErrCode: -1},
			call: func(t *testing.T, e *testEnv, tok string) error {
				res, _ := e.sim.Authorize(t.Context(), wxsim.AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID})
				_, err := e.client.QueryAuth(t.Context(), tok, compID, res.AuthCode)
				if !IsBusy(err) {
					t.Fatalf("err = %v, want busy", err)
				}
				// The code was not burnt: the caller may try again itself.
				_, err2 := e.client.QueryAuth(t.Context(), tok, compID, res.AuthCode)
				if err2 != nil {
					t.Fatalf("second, deliberate exchange: %v", err2)
				}
				return err
			},
			api: APIQueryAuth, wantCalls: 2,
		},
		{
			name:  "a code exchange is not retried after a timeout",
			fault: wxsim.Fault{API: APIQueryAuth, Timeout: true},
			call: func(t *testing.T, e *testEnv, tok string) error {
				_, err := e.client.QueryAuth(t.Context(), tok, compID, "queryauthcode@@@x")
				return err
			},
			api: APIQueryAuth, wantCalls: 1,
			check: func(t *testing.T, err error) {
				var ne *NetworkError
				if !errors.As(err, &ne) || ne.Kind != "timeout" || ne.NotSent {
					t.Fatalf("err = %#v, want a timeout", err)
				}
			},
		},
		{
			name:  "clear_quota is not retried on busy",
			fault: wxsim.Fault{API: APIClearQuota, ErrCode: -1},
			call: func(t *testing.T, e *testEnv, tok string) error {
				return e.client.ClearQuota(t.Context(), tok, compID)
			},
			api: APIClearQuota, wantCalls: 1,
		},
		{
			name:  "token calls are retried after a timeout",
			fault: wxsim.Fault{API: APIAuthorizerToken, Timeout: true},
			call: func(t *testing.T, e *testEnv, tok string) error {
				ai := e.authorize(t, tok)
				_, err := e.client.AuthorizerToken(t.Context(), tok, compID, authzID, ai.RefreshToken)
				return err
			},
			api: APIAuthorizerToken, wantCalls: 2,
			check: func(t *testing.T, err error) {
				if err != nil {
					t.Fatalf("err = %v, want success on the retry", err)
				}
			},
		},
		{
			name:  "HTTP 502 is retried",
			fault: wxsim.Fault{API: APIGetAuthorizerInfo, HTTPStatus: 502},
			call: func(t *testing.T, e *testEnv, tok string) error {
				e.authorize(t, tok)
				_, err := e.client.GetAuthorizerInfo(t.Context(), tok, compID, authzID)
				return err
			},
			api: APIGetAuthorizerInfo, wantCalls: 2,
		},
		{
			name:  "HTTP 400 is not retried",
			fault: wxsim.Fault{API: APIGetAuthorizerInfo, HTTPStatus: 400},
			call: func(t *testing.T, e *testEnv, tok string) error {
				_, err := e.client.GetAuthorizerInfo(t.Context(), tok, compID, authzID)
				return err
			},
			api: APIGetAuthorizerInfo, wantCalls: 1,
			check: func(t *testing.T, err error) {
				var ne *NetworkError
				if !errors.As(err, &ne) || ne.Kind != "http_400" {
					t.Fatalf("err = %v, want http_400", err)
				}
			},
		},
		{
			name:  "other errcodes are not retried",
			fault: wxsim.Fault{API: APICreatePreAuthCode, ErrCode: 40001, Count: 5},
			call: func(t *testing.T, e *testEnv, tok string) error {
				_, err := e.client.CreatePreAuthCode(t.Context(), tok, compID)
				return err
			},
			api: APICreatePreAuthCode, wantCalls: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, nil, func(o *Options) { o.Timeout = 150 * time.Millisecond })
			tok := e.token(t)
			e.sim.AddFault(tc.fault)
			err := stepping(t, e.clock, func() error { return tc.call(t, e, tok) })
			if tc.check != nil {
				tc.check(t, err)
			}
			if n := e.sim.Calls(tc.api, compID); n != tc.wantCalls {
				t.Fatalf("simulator saw %d calls, want %d (err %v)", n, tc.wantCalls, err)
			}
		})
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestConnectionRefusedIsRetriedEvenForCodeExchange(t *testing.T) {
	fc := testclock.NewFakeClock(epoch)
	m := NewMetrics()
	c := New(Options{
		BaseURL: "http://" + closedAddr(t), RateLimit: rate.Inf, Clock: fc, Metrics: m,
		Retry: RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second},
	})
	err := stepping(t, fc, func() error {
		_, err := c.QueryAuth(t.Context(), "component-token-secret-value", compID, "queryauthcode@@@secret")
		return err
	})
	var ne *NetworkError
	if !errors.As(err, &ne) || ne.Kind != "dial" || !ne.NotSent {
		t.Fatalf("err = %#v, want a dial error", err)
	}
	if v := counterOf(t, m, APIQueryAuth, "dial"); v != 3 {
		t.Fatalf("attempts = %v, want 3 (a request that never left is safe to repeat)", v)
	}
}

func TestContextCancelStopsBackoff(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	e.sim.AddFault(wxsim.Fault{API: APIComponentToken, ErrCode: -1, Count: 5})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	tk := e.ticket(t)
	go func() {
		_, err := e.client.ComponentToken(ctx, compID, compSecret, tk)
		done <- err
	}()
	waitFor(t, "backoff", e.clock.HasWaiters)
	cancel()
	select {
	case err := <-done:
		if !IsBusy(err) {
			t.Fatalf("err = %v, want the last busy answer", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not end the backoff")
	}
	if n := e.sim.Calls(APIComponentToken, compID); n != 1 {
		t.Fatalf("calls = %d, want 1", n)
	}
}

// TestNothingLeaksSecrets drives failures of every kind with recognizable
// secrets and checks errors, log lines and metric labels for them.
func TestNothingLeaksSecrets(t *testing.T) {
	const (
		tok    = "TOKENtokenTOKENtoken0123456789"
		secret = "SECRETsecretSECRET"
		ticket = "ticket@@@TICKETticket"
		code   = "queryauthcode@@@CODEcode"
		rt     = "refreshtoken@@@REFRESHrefresh"
	)
	secrets := []string{tok, secret, ticket, code, rt, url.QueryEscape(tok), url.QueryEscape(code)}
	var errs []error
	collect := func(err error) {
		if err == nil {
			t.Fatal("expected a failure")
		}
		errs = append(errs, err)
	}

	// Network failures: refused connection, timeout.
	fc := testclock.NewFakeClock(epoch)
	logs := &logBuffer{}
	m := NewMetrics()
	refused := New(Options{BaseURL: "http://" + closedAddr(t), RateLimit: rate.Inf, Clock: fc, Metrics: m, Logger: logs.logger()})
	collect(stepping(t, fc, func() error { _, err := refused.CreatePreAuthCode(t.Context(), tok, compID); return err }))
	collect(stepping(t, fc, func() error { _, err := refused.ComponentToken(t.Context(), compID, secret, ticket); return err }))

	e := newTestEnv(t, nil, func(o *Options) { o.Timeout = 100 * time.Millisecond; o.Logger = logs.logger(); o.Metrics = m })
	e.sim.AddFault(wxsim.Fault{API: APIQueryAuth, Timeout: true})
	collect(stepping(t, e.clock, func() error { _, err := e.client.QueryAuth(t.Context(), tok, compID, code); return err }))

	// WeChat echoing secrets in errmsg.
	e.sim.AddFault(wxsim.Fault{API: APIAuthorizerToken, ErrCode: 40001, ErrMsg: "bad token " + tok + " / refresh " + rt})
	collect(stepping(t, e.clock, func() error {
		_, err := e.client.AuthorizerToken(t.Context(), tok, compID, authzID, rt)
		return err
	}))
	e.sim.AddFault(wxsim.Fault{API: APIComponentToken, ErrCode: 61006, ErrMsg: "ticket " + ticket + " secret " + secret})
	collect(stepping(t, e.clock, func() error { _, err := e.client.ComponentToken(t.Context(), compID, secret, ticket); return err }))
	// HTTP failures and real errcodes.
	e.sim.AddFault(wxsim.Fault{API: APIGetAuthorizerList, HTTPStatus: 503, Count: 3})
	collect(stepping(t, e.clock, func() error { _, err := e.client.GetAuthorizerList(t.Context(), tok, compID, 0, 1); return err }))
	collect(stepping(t, e.clock, func() error { return e.client.ClearQuota(t.Context(), tok, compID) }))

	for _, err := range errs {
		text := err.Error()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("error %q contains a secret", text)
			}
		}
		if strings.Contains(text, "component_access_token") || strings.Contains(text, "?") {
			t.Errorf("error %q contains a URL query", text)
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			t.Errorf("error %q wraps a *url.Error (whose text holds the URL)", text)
		}
		for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
			for _, s := range secrets {
				if strings.Contains(u.Error(), s) {
					t.Errorf("wrapped error %q contains a secret", u.Error())
				}
			}
		}
	}
	if !strings.Contains(errs[3].Error(), redacted) {
		t.Errorf("echoed secret not marked as redacted: %q", errs[3].Error())
	}
	logText := logs.String()
	if !strings.Contains(logText, "wechat call failed") {
		t.Fatalf("no failure was logged; log = %q", logText)
	}
	for _, s := range secrets {
		if strings.Contains(logText, s) {
			t.Errorf("log contains a secret: %q", logText)
		}
	}
	// Metric labels hold endpoint names and outcomes only.
	mfs, err := gatherAll(m)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				seen++
				if lp.GetName() != "api" && lp.GetName() != "errcode" {
					t.Errorf("unexpected label %q", lp.GetName())
				}
				for _, s := range secrets {
					if strings.Contains(lp.GetValue(), s) {
						t.Errorf("label %s=%q contains a secret", lp.GetName(), lp.GetValue())
					}
				}
				if strings.ContainsAny(lp.GetValue(), "?/=") {
					t.Errorf("label %s=%q looks like a URL", lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no metrics recorded")
	}
}

func TestScrubURLs(t *testing.T) {
	got := scrubURLs(`Post "http://h/cgi-bin/component/x?component_access_token=abc": boom`)
	if strings.Contains(got, "abc") || !strings.Contains(got, redacted) {
		t.Fatalf("scrubURLs = %q", got)
	}
	if got := scrubURLs("no url here"); got != "no url here" {
		t.Fatalf("scrubURLs changed plain text: %q", got)
	}
}

// TestRateLimiterSpacesCalls uses burst 1 at one call per second, on the
// fake clock: the second call waits exactly one second.
func TestRateLimiterSpacesCalls(t *testing.T) {
	e := newTestEnv(t, nil, func(o *Options) { o.RateLimit = rate.Every(time.Second); o.Burst = 1 })
	tok := e.token(t) // uses the burst
	done := make(chan error, 1)
	go func() {
		_, err := e.client.CreatePreAuthCode(t.Context(), tok, compID)
		done <- err
	}()
	waitFor(t, "the limiter wait", e.clock.HasWaiters)
	e.clock.Step(999 * time.Millisecond)
	if n := e.sim.Calls(APICreatePreAuthCode, compID); n != 0 {
		t.Fatalf("call went out %d times before the limiter allowed it", n)
	}
	e.clock.Step(time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := e.sim.Calls(APICreatePreAuthCode, compID); n != 1 {
		t.Fatalf("calls = %d", n)
	}
}

func TestSharedLimiterAcrossClients(t *testing.T) {
	lim := rate.NewLimiter(rate.Every(time.Minute), 1)
	e := newTestEnv(t, nil, func(o *Options) { o.Limiter = lim })
	other := New(Options{BaseURL: e.srv.URL, Limiter: lim, Clock: e.clock, Metrics: e.metrics})
	tok := e.token(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := other.CreatePreAuthCode(ctx, tok, compID)
		done <- err
	}()
	waitFor(t, "the second client to wait for the shared limiter", e.clock.HasWaiters)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled while waiting", err)
	}
	if n := e.sim.Calls(APICreatePreAuthCode, compID); n != 0 {
		t.Fatalf("call went out despite the shared limiter: %d", n)
	}
	// The cancelled reservation is given back: after a minute, one call passes.
	e.clock.Step(time.Minute)
	if _, err := other.CreatePreAuthCode(t.Context(), tok, compID); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrencyCap holds requests in the server and checks that no more
// than MaxConcurrency are in flight while the others wait for a slot.
func TestConcurrencyCap(t *testing.T) {
	const maxConc, calls = 2, 6
	var inflight, peak atomic.Int64
	arrived := make(chan struct{}, calls)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
		inflight.Add(-1)
		_, _ = io.WriteString(w, `{"authorizer_info":{"nick_name":"x"},"authorization_info":{"authorizer_appid":"wx1"}}`)
	}))
	defer srv.Close()
	defer releaseAll() // runs before srv.Close, so a failing test cannot hang on held requests
	c := New(Options{BaseURL: srv.URL, RateLimit: rate.Inf, MaxConcurrency: maxConc, Metrics: NewMetrics()})

	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Go(func() {
			_, err := c.GetAuthorizerInfo(t.Context(), "tokentokentokentoken", compID, authzID)
			errs <- err
		})
	}
	waitFor(t, "two requests in flight and four waiting", func() bool {
		return len(arrived) == maxConc && c.waiting.Load() == calls-maxConc
	})
	if got := len(arrived); got != maxConc {
		t.Fatalf("%d requests reached the server, cap is %d", got, maxConc)
	}
	releaseAll()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p != maxConc {
		t.Fatalf("peak in flight = %d, want %d", p, maxConc)
	}
	if len(arrived) != calls {
		t.Fatalf("%d of %d requests arrived", len(arrived), calls)
	}
}

func TestMetricsAndDefaultRegistration(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	tok := e.token(t)
	_, _ = e.client.CreatePreAuthCode(t.Context(), "short", compID)
	if v := counterValue(t, e.reg, APIComponentToken, "0"); v != 1 {
		t.Errorf("component token successes = %v", v)
	}
	if v := counterValue(t, e.reg, APICreatePreAuthCode, "40014"); v != 1 {
		t.Errorf("40014 count = %v", v)
	}
	mfs, _ := e.reg.Gather()
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "wechat_api_request_duration_seconds" {
			for _, m := range mf.GetMetric() {
				if labelsMatch(m, map[string]string{"api": APIComponentToken}) && m.GetHistogram().GetSampleCount() == 1 {
					found = true
				}
			}
		}
	}
	if !found {
		t.Error("no latency observation for api_component_token")
	}
	_ = tok
	// Registering twice is harmless; DefaultMetrics is already on
	// controller-runtime's registry.
	if err := e.metrics.Register(e.reg); err != nil {
		t.Errorf("second Register: %v", err)
	}
	if err := DefaultMetrics.Register(ctrlRegistry()); err != nil {
		t.Errorf("DefaultMetrics on controller-runtime's registry: %v", err)
	}
}

func TestNewDefaults(t *testing.T) {
	c := New(Options{})
	if c.base.String() != DefaultBaseURL || c.timeout != DefaultTimeout || cap(c.sem) != DefaultMaxConcurrency ||
		c.retry.MaxAttempts != DefaultMaxAttempts || c.metrics != DefaultMetrics || c.limiter.Burst() != DefaultBurst {
		t.Fatalf("defaults not applied: %+v", c)
	}
	bad := New(Options{BaseURL: "::not a url"})
	if _, err := bad.ComponentToken(t.Context(), compID, "s", "t"); err == nil {
		t.Fatal("invalid base URL accepted")
	}
	if got := c.backoff(10); got != DefaultMaxBackoff {
		t.Fatalf("backoff is not capped: %v", got)
	}
}
