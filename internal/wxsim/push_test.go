/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPushTicketIsEncryptedSignedAndUsable(t *testing.T) {
	e := newEnv(t, nil)
	rc := newReceiver(t, compToken, compKey, compID, 0)
	if err := e.sim.SetReceiverURL(compID, rc.srv.URL+"/wechat/default/demo?tenant=a"); err != nil {
		t.Fatal(err)
	}
	ticket, err := e.sim.PushTicket(t.Context(), compID)
	if err != nil {
		t.Fatalf("PushTicket: %v", err)
	}
	p := rc.next(t)
	if p.InfoType != InfoTypeComponentVerifyTicket || p.AppID != compID || p.ComponentVerifyTicket != ticket || p.CreateTime != epoch.Unix() {
		t.Fatalf("push = %+v, want ticket %q", p, ticket)
	}
	if p.Query["timestamp"] != "1772366400" || len(p.Query["nonce"]) == 0 {
		t.Fatalf("query = %v", p.Query)
	}
	m := e.post(t, APIComponentToken, "", map[string]any{"component_appid": compID, "component_appsecret": compSecret, "component_verify_ticket": p.ComponentVerifyTicket})
	wantErrcode(t, m, 0)
	recs := e.sim.Pushes()
	if len(recs) != 1 || !recs[0].Delivered || recs[0].Attempts != 1 || recs[0].InfoType != InfoTypeComponentVerifyTicket {
		t.Fatalf("push log = %+v", recs)
	}
}

func TestPushRetriesOnTheSimulatorClock(t *testing.T) {
	e := newEnv(t, nil) // PushRetryDelay 1s, doubling
	rc := newReceiver(t, compToken, compKey, compID, 2)
	_ = e.sim.SetReceiverURL(compID, rc.srv.URL)
	type result struct {
		ticket string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		tk, err := e.sim.PushTicket(t.Context(), compID)
		done <- result{tk, err}
	}()
	waitFor(t, "first retry wait", e.clock.HasWaiters)
	if got := rc.requestCount(); got != 1 {
		t.Fatalf("requests before the first retry = %d, want 1", got)
	}
	e.clock.Step(time.Second)
	waitFor(t, "second attempt", func() bool { return rc.requestCount() == 2 })
	waitFor(t, "second retry wait", e.clock.HasWaiters)
	e.clock.Step(2*time.Second - time.Millisecond)
	if got := rc.requestCount(); got != 2 {
		t.Fatalf("requests before the doubled delay elapsed = %d, want 2", got)
	}
	e.clock.Step(time.Millisecond)
	p := rc.next(t)
	r := <-done
	if r.err != nil || p.ComponentVerifyTicket != r.ticket {
		t.Fatalf("PushTicket = %v; pushed %q, returned %q", r.err, p.ComponentVerifyTicket, r.ticket)
	}
	if recs := e.sim.Pushes(); recs[len(recs)-1].Attempts != 3 || !recs[len(recs)-1].Delivered {
		t.Fatalf("push log = %+v", recs)
	}
}

func TestPushGivesUpAfterRetries(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PushRetries = 2 })
	rc := newReceiver(t, compToken, compKey, compID, 1000)
	_ = e.sim.SetReceiverURL(compID, rc.srv.URL)
	done := make(chan error, 1)
	var ticket string
	go func() {
		var err error
		ticket, err = e.sim.PushTicket(t.Context(), compID)
		done <- err
	}()
	for i := 1; i <= 2; i++ {
		waitFor(t, "retry wait", e.clock.HasWaiters)
		e.clock.Step(time.Duration(1<<(i-1)) * time.Second)
	}
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("err = %v, want not delivered after 3 attempts", err)
	}
	if rc.requestCount() != 3 {
		t.Fatalf("receiver saw %d requests, want 3", rc.requestCount())
	}
	// The ticket exists anyway, as on WeChat.
	wantErrcode(t, e.post(t, APIComponentToken, "", map[string]any{"component_appid": compID, "component_appsecret": compSecret, "component_verify_ticket": ticket}), 0)
}

func TestPushTicketWithoutReceiver(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.sim.PushTicket(t.Context(), compID); !errors.Is(err, ErrNoReceiver) {
		t.Fatalf("err = %v, want ErrNoReceiver", err)
	}
	if _, err := e.sim.PushTicket(t.Context(), "wx9999999999999999"); !errors.Is(err, ErrUnknownComponent) {
		t.Fatalf("err = %v, want ErrUnknownComponent", err)
	}
}

func TestReceiverURLTemplate(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ReceiverURLTemplate = "http://127.0.0.1:1/wechat/{appid}" })
	for _, c := range e.sim.State() {
		if c.ReceiverURL != "http://127.0.0.1:1/wechat/"+c.AppID {
			t.Fatalf("receiver URL of %s = %q", c.AppID, c.ReceiverURL)
		}
	}
}

func TestRunPushesEveryInterval(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PushOnStart = true; o.Components = o.Components[:1] })
	rc := newReceiver(t, compToken, compKey, compID, 0)
	_ = e.sim.SetReceiverURL(compID, rc.srv.URL)
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan error, 1)
	go func() { runDone <- e.sim.Run(ctx) }()

	first := rc.next(t)
	waitFor(t, "the interval timer", e.clock.HasWaiters)
	e.clock.Step(10*time.Minute - time.Second)
	if n := rc.requestCount(); n != 1 {
		t.Fatalf("pushes before the interval = %d, want 1", n)
	}
	e.clock.Step(time.Second)
	second := rc.next(t)
	if second.ComponentVerifyTicket == first.ComponentVerifyTicket || second.CreateTime-first.CreateTime != 600 {
		t.Fatalf("second push %+v after first %+v", second, first)
	}

	// api_start_push_ticket pushes at once.
	m := e.post(t, APIStartPushTicket, "", map[string]any{"component_appid": compID, "component_secret": compSecret})
	wantErrcode(t, m, 0)
	if str(m, "errmsg") != "ok" {
		t.Fatalf("answer = %v", m)
	}
	rc.next(t)

	// Stopped pushes stay stopped across intervals.
	if err := e.sim.SetTicketPushing(compID, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the interval timer", e.clock.HasWaiters)
	e.clock.Step(10 * time.Minute)
	waitFor(t, "the interval timer to be re-armed", e.clock.HasWaiters)
	if n := rc.requestCount(); n != 3 {
		t.Fatalf("pushes while stopped: receiver saw %d requests, want 3", n)
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestStartPushTicketValidation(t *testing.T) {
	e := newEnv(t, nil)
	wantErrcode(t, e.post(t, APIStartPushTicket, "", map[string]any{"component_appid": compID, "component_secret": "wrong"}), 40125)
	wantErrcode(t, e.post(t, APIStartPushTicket, "", map[string]any{"component_appid": compID}), 41004)
	// The WeChat field is component_secret, not component_appsecret.
	wantErrcode(t, e.post(t, APIStartPushTicket, "", map[string]any{"component_appid": compID, "component_appsecret": compSecret}), 41004)
	wantErrcode(t, e.post(t, APIStartPushTicket, "", map[string]any{"component_appid": "wx9999999999999999", "component_secret": compSecret}), 40013)
}

func TestAuthorizePushes(t *testing.T) {
	e := newEnv(t, nil)
	rc := newReceiver(t, compToken, compKey, compID, 0)
	_ = e.sim.SetReceiverURL(compID, rc.srv.URL)
	tok := e.componentToken(t)
	pac := str(e.post(t, APICreatePreAuthCode, tok, map[string]any{"component_appid": compID}), "pre_auth_code")
	res, err := e.sim.Authorize(t.Context(), AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID, PreAuthCode: pac, FuncInfo: []int{1, 15}})
	if err != nil || !res.Push.Delivered {
		t.Fatalf("Authorize = %+v, %v", res, err)
	}
	p := rc.next(t)
	if p.InfoType != InfoTypeAuthorized || p.AuthorizerAppid != authzID || p.AuthorizationCode != res.AuthCode ||
		p.AuthorizationCodeExpiredTime != epoch.Add(time.Hour).Unix() || p.PreAuthCode != pac || p.AppID != compID {
		t.Fatalf("push = %+v, result = %+v", p, res)
	}
	m := e.post(t, APIQueryAuth, tok, map[string]any{"component_appid": compID, "authorization_code": p.AuthorizationCode})
	wantErrcode(t, m, 0)
	if fi := m["authorization_info"].(map[string]any)["func_info"].([]any); len(fi) != 2 {
		t.Fatalf("func_info = %v, want the 2 granted sets", fi)
	}

	res, _ = e.sim.Authorize(t.Context(), AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID})
	if p := rc.next(t); p.InfoType != InfoTypeUpdateAuthorized || p.AuthorizationCode != res.AuthCode || p.PreAuthCode != "" {
		t.Fatalf("update push = %+v", p)
	}
}
