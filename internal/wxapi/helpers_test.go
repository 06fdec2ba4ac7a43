/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/time/rate"
	testclock "k8s.io/utils/clock/testing"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

const (
	compID     = "wx0123456789abcdef"
	compSecret = "c0ffee00c0ffee00c0ffee00c0ffee00"
	otherComp  = "wxfedcba9876543210"
	authzID    = "wx1111111111111111"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// logBuffer collects log lines for redaction checks.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.lines = append(b.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 2})
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

type testEnv struct {
	sim     *wxsim.Simulator
	clock   *testclock.FakeClock
	srv     *httptest.Server
	client  *Client
	metrics *Metrics
	reg     *prometheus.Registry
	logs    *logBuffer
	opts    Options
}

// newTestEnv runs a simulator (one component, one account profile) behind
// an httptest server and a client pointed at it; both share a fake clock.
// The client has no rate limit, 3 attempts and 1s→2s→4s backoff.
func newTestEnv(t *testing.T, simMut func(*wxsim.Options), clientMut func(*Options)) *testEnv {
	t.Helper()
	fc := testclock.NewFakeClock(epoch)
	so := wxsim.Options{
		Clock: fc,
		Components: []wxsim.ComponentSeed{
			{AppID: compID, AppSecret: compSecret, Token: "tok", EncodingAESKey: wxsim.GenerateEncodingAESKey()},
			{AppID: otherComp, AppSecret: "other", Token: "tok2", EncodingAESKey: wxsim.GenerateEncodingAESKey()},
		},
		Authorizers: []wxsim.AuthorizerSeed{{
			ComponentAppID: compID, AppID: authzID, NickName: "Demo Shop", HeadImg: "http://wx.qlogo.cn/mmopen/demo/0",
			ServiceType: 2, VerifyType: 0, UserName: "gh_eb5e3a772040", PrincipalName: "Demo Ltd.", Alias: "demoshop",
			Signature: "We sell things", QRCodeURL: "http://mmbiz.qpic.cn/demo/0",
			Business: wxsim.BusinessInfo{OpenStore: 1, OpenPay: 1, OpenShake: 1}, FuncInfo: []int{1, 2, 15},
		}},
	}
	if simMut != nil {
		simMut(&so)
	}
	sim, err := wxsim.New(so)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)

	e := &testEnv{sim: sim, clock: fc, srv: srv, metrics: NewMetrics(), reg: prometheus.NewRegistry(), logs: &logBuffer{}}
	if err := e.metrics.Register(e.reg); err != nil {
		t.Fatal(err)
	}
	e.opts = Options{
		BaseURL:   srv.URL,
		Timeout:   5 * time.Second,
		RateLimit: rate.Inf,
		Retry:     RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second, MaxBackoff: 4 * time.Second},
		Clock:     fc,
		Metrics:   e.metrics,
		Logger:    e.logs.logger(),
	}
	if clientMut != nil {
		clientMut(&e.opts)
	}
	e.client = New(e.opts)
	return e
}

// ticket makes the simulator issue a ticket.
func (e *testEnv) ticket(t *testing.T) string {
	t.Helper()
	tk, err := e.sim.IssueTicket(compID)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// token gets a component token through the client.
func (e *testEnv) token(t *testing.T) string {
	t.Helper()
	ct, err := e.client.ComponentToken(t.Context(), compID, compSecret, e.ticket(t))
	if err != nil {
		t.Fatalf("ComponentToken: %v", err)
	}
	return ct.AccessToken
}

// authorize makes authzID authorize and exchanges the code through the client.
func (e *testEnv) authorize(t *testing.T, ctok string) AuthorizationInfo {
	t.Helper()
	res, err := e.sim.Authorize(t.Context(), wxsim.AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID})
	if err != nil {
		t.Fatal(err)
	}
	ai, err := e.client.QueryAuth(t.Context(), ctok, compID, res.AuthCode)
	if err != nil {
		t.Fatalf("QueryAuth: %v", err)
	}
	return ai
}

// stepping runs fn while advancing the fake clock whenever something waits
// on it, so retries and rate-limit waits pass instantly.
func stepping[T any](t *testing.T, fc *testclock.FakeClock, fn func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- fn() }()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case v := <-done:
			return v
		case <-deadline.C:
			t.Fatal("call did not finish within 10s")
		case <-poll.C:
			if fc.HasWaiters() {
				fc.Step(time.Second)
			}
		}
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-poll.C:
		}
	}
}

// counterValue reads wechat_api_requests_total{api,errcode} from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, api, errcode string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "wechat_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, map[string]string{"api": api, "errcode": errcode}) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// gatherAll gathers m's collectors through a private registry.
func gatherAll(m *Metrics) ([]*dto.MetricFamily, error) {
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		return nil, err
	}
	return reg.Gather()
}

// counterOf reads wechat_api_requests_total{api,errcode} from m.
func counterOf(t *testing.T, m *Metrics, api, errcode string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	return counterValue(t, reg, api, errcode)
}

func ctrlRegistry() prometheus.Registerer { return ctrlmetrics.Registry }
