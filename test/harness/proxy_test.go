/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProxyModes(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "pong")
	}))
	defer target.Close()
	p, err := StartProxy(strings.TrimPrefix(target.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	hc := &http.Client{Timeout: 300 * time.Millisecond}
	get := func() (string, error) {
		resp, err := hc.Get(p.URL + "/ping")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	if got, err := get(); err != nil || got != "pong" {
		t.Fatalf("pass: %q, %v", got, err)
	}
	p.SetMode(ProxyRefuse)
	start := time.Now()
	if _, err := get(); err == nil {
		t.Fatal("refuse: the request got through")
	} else if errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 250*time.Millisecond {
		t.Fatalf("refuse: the request should fail at once, not time out: %v", err)
	}
	p.SetMode(ProxyBlackhole)
	if _, err := get(); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("blackhole: want the client's timeout, got %v", err)
	}
	p.SetMode(ProxyPass)
	if got, err := get(); err != nil || got != "pong" {
		t.Fatalf("pass again: %q, %v", got, err)
	}
	for _, m := range []ProxyMode{ProxyPass, ProxyRefuse, ProxyBlackhole} {
		if p.Accepted(m) == 0 {
			t.Errorf("no connection accepted in mode %s", m)
		}
	}
}
