/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestScrapeReadsPrometheusText(t *testing.T) {
	text := `# HELP apiserver_request_total Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",resource="secrets",subresource="",verb="PUT"} 7
apiserver_request_total{code="201",resource="secrets",subresource="",verb="POST"} 3
apiserver_request_total{code="200",resource="secrets",subresource="",verb="GET"} 100
apiserver_request_total{code="200",resource="wechatauthorizers",subresource="status",verb="PUT"} 5
workqueue_depth{name="wechatauthorizer"} 0
controller_runtime_reconcile_total{controller="wechatauthorizer",result="success"} 9990
controller_runtime_reconcile_total{controller="wechatauthorizer",result="requeue_after"} 10
label_with_comma{a="x,y",b="z"} 1
`
	samples, err := scrape(context.Background(), func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(text)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(samples, "controller_runtime_reconcile_total", map[string]string{"controller": "wechatauthorizer"}); got != 10000 {
		t.Errorf("reconciles %v, want 10000", got)
	}
	if got := sum(samples, "label_with_comma", map[string]string{"a": "x,y", "b": "z"}); got != 1 {
		t.Errorf("a quoted comma split the labels: %v", got)
	}
	w := apiWrites(samples)
	if w["secrets"] != 10 || w["wechatauthorizers/status"] != 5 || len(w) != 2 {
		t.Errorf("writes %v, want secrets 10 (PUT+POST, not GET) and wechatauthorizers/status 5", w)
	}
	if d := (writes{"secrets": 15, "leases": 2}).minus(w); d["secrets"] != 5 || d["leases"] != 2 || len(d) != 2 {
		t.Errorf("difference %v", d)
	}
}

func TestQuietMomentFindsAGapWithoutDueRefreshes(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	cases := map[string]struct {
		due  map[string]time.Time
		want time.Time
		ok   bool
	}{
		"nothing due: now":                    {due: map[string]time.Time{}, want: now, ok: true},
		"the next refresh is far: now":        {due: map[string]time.Time{"a": at(100)}, want: now, ok: true},
		"a refresh soon: the second after it": {due: map[string]time.Time{"a": at(5), "b": at(70)}, want: at(6), ok: true},
		"refreshes all the time: none":        {due: map[string]time.Time{"a": at(5), "b": at(20), "c": at(40), "d": at(60)}, ok: false},
	}
	for name, tc := range cases {
		got, ok := quietMoment(tc.due, now, 50*time.Second, 30*time.Second)
		if ok != tc.ok || (ok && !got.Equal(tc.want)) {
			t.Errorf("%s: got %v %v, want %v %v", name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTokenWatchAddsUpExpiredTime(t *testing.T) {
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	secret := func(name, token string, expires time.Time) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{
			"access_token": []byte(token), "expires_at": []byte(expires.Format(time.RFC3339)), "appid": []byte("wx0")}}
	}
	w := newTokenWatch()
	w.observe(secret("a-token", "t1", start.Add(time.Minute)), start)
	w.observe(secret("b-token", "u1", start.Add(time.Minute)), start)
	w.observe(secret("b-state", "u1", start.Add(-time.Hour)), start) // not app-facing
	w.startWindow(start)
	// a is refreshed in time; b only 5 s after its token expired.
	w.observe(secret("a-token", "t2", start.Add(3*time.Minute)), start.Add(50*time.Second))
	w.observe(secret("b-token", "u1", start.Add(time.Minute)), start.Add(61*time.Second)) // same value: no change
	w.observe(secret("b-token", "u2", start.Add(3*time.Minute)), start.Add(65*time.Second))
	expired, tokens, changes, served := w.result(start.Add(2 * time.Minute))
	if expired != 5*time.Second || tokens != 1 || changes != 2 || served != 2 {
		t.Errorf("expired %v over %d tokens, %d changes, %d served; want 5s, 1, 2, 2", expired, tokens, changes, served)
	}
	// Still holding an expired token at the end counts up to the end.
	expired, tokens, _, _ = w.result(start.Add(4 * time.Minute))
	if expired != 5*time.Second+2*time.Minute || tokens != 3 {
		t.Errorf("at the end: expired %v over %d tokens, want 2m5s over 3", expired, tokens)
	}
}
