/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"testing"
	"time"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
)

// Plain Go tests of the component token step's decision: no API server, no WeChat.

// baseComponentInput: a token issued 30 minutes ago, due in an hour, and a fresh ticket.
func baseComponentInput() componentTokenInput {
	return componentTokenInput{
		token:     tokenAt("component-token", -30*time.Minute),
		refreshAt: decideNow.Add(time.Hour),
		ticket:    &wechatv1alpha1.VerifyTicket{Ticket: "ticket", CreateTime: *mtime(-5 * time.Minute)},
		namespace: "ns", name: "platform",
	}
}

func TestDecideComponentToken(t *testing.T) {
	cases := map[string]struct {
		tweak   func(*componentTokenInput)
		action  componentTokenAction
		ticket  string // the TicketReceived reason
		requeue time.Duration
		gated   bool
	}{
		"a token before its refresh time is served until then": {
			tweak: func(*componentTokenInput) {}, action: tokenServe, ticket: wechatv1alpha1.ReasonTicketValid, requeue: time.Hour,
		},
		"a token served while a backoff runs keeps the failure's conditions": {
			tweak:  func(in *componentTokenInput) { in.gate = retryGate{waiting: true, at: decideNow.Add(time.Minute)} },
			action: tokenServe, ticket: wechatv1alpha1.ReasonTicketValid, requeue: time.Hour, gated: true,
		},
		"a refresh request not yet honoured comes back when it may be": {
			tweak:  func(in *componentTokenInput) { in.request = refreshRequestDecision{inARow: 2, wait: 7 * time.Second} },
			action: tokenServe, ticket: wechatv1alpha1.ReasonTicketValid, requeue: 7 * time.Second,
		},
		"the refresh time come refreshes": {
			tweak:  func(in *componentTokenInput) { in.refreshAt = decideNow },
			action: tokenRefresh, ticket: wechatv1alpha1.ReasonTicketValid,
		},
		"an expired token refreshes": {
			tweak:  func(in *componentTokenInput) { in.token = tokenAt("old", -2*time.Hour) },
			action: tokenRefresh, ticket: wechatv1alpha1.ReasonTicketValid,
		},
		"no token refreshes": {
			tweak:  func(in *componentTokenInput) { in.token = nil },
			action: tokenRefresh, ticket: wechatv1alpha1.ReasonTicketValid,
		},
		"an honoured refresh request refreshes": {
			tweak:  func(in *componentTokenInput) { in.request = refreshRequestDecision{honour: true, inARow: 1} },
			action: tokenRefresh, ticket: wechatv1alpha1.ReasonTicketValid,
		},
		"credentials changed since the failure refresh at once, whatever the backoff": {
			tweak: func(in *componentTokenInput) {
				in.gate = retryGate{waiting: true, at: decideNow.Add(time.Hour), changed: true}
			},
			action: tokenRefresh, ticket: wechatv1alpha1.ReasonTicketValid,
		},
		"a due refresh in a running backoff makes no call": {
			tweak: func(in *componentTokenInput) {
				in.refreshAt = decideNow.Add(-time.Minute)
				in.gate = retryGate{waiting: true, at: decideNow.Add(40 * time.Second)}
			},
			action: tokenBackOff, ticket: wechatv1alpha1.ReasonTicketValid, requeue: 40 * time.Second, gated: true,
		},
		"a backoff ending now requeues in a second at the least": {
			tweak: func(in *componentTokenInput) {
				in.token = nil
				in.gate = retryGate{waiting: true, at: decideNow.Add(time.Millisecond)}
			},
			action: tokenBackOff, ticket: wechatv1alpha1.ReasonTicketValid, requeue: time.Second, gated: true,
		},
		"no ticket yet: ask for a push, look again in 10 minutes": {
			tweak:  func(in *componentTokenInput) { in.token, in.ticket = nil, nil },
			action: tokenAwaitTicket, ticket: wechatv1alpha1.ReasonWaitingForTicket, requeue: 10 * time.Minute,
		},
		"an expired ticket with a token expiring in 3 minutes looks again then": {
			tweak: func(in *componentTokenInput) {
				in.token = tokenAt("t", -117*time.Minute)
				in.refreshAt = decideNow.Add(-time.Minute)
				in.ticket.CreateTime = *mtime(-12 * time.Hour)
			},
			action: tokenAwaitTicket, ticket: wechatv1alpha1.ReasonTicketExpired, requeue: 3 * time.Minute,
		},
		"no ticket but new receiver keys: let them settle before asking for a push": {
			tweak:  func(in *componentTokenInput) { in.token, in.ticket, in.keysChanged = nil, nil, true },
			action: tokenSettleKeys, ticket: wechatv1alpha1.ReasonWaitingForTicket, requeue: keyringSettleTime,
		},
		"new receiver keys with a usable ticket refresh": {
			tweak:  func(in *componentTokenInput) { in.token, in.keysChanged = nil, true },
			action: tokenRefresh, ticket: wechatv1alpha1.ReasonTicketValid,
		},
		"no ticket does not matter while the token is good": {
			tweak:  func(in *componentTokenInput) { in.ticket = nil },
			action: tokenServe, ticket: wechatv1alpha1.ReasonWaitingForTicket, requeue: time.Hour,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := baseComponentInput()
			tc.tweak(&in)
			p := decideComponentToken(in, decideNow)
			if p.action != tc.action {
				t.Fatalf("action = %d, want %d", p.action, tc.action)
			}
			if p.ticketReason != tc.ticket {
				t.Errorf("ticket reason = %q, want %q", p.ticketReason, tc.ticket)
			}
			if tc.action != tokenRefresh && p.requeue != tc.requeue {
				t.Errorf("requeue = %v, want %v", p.requeue, tc.requeue)
			}
			if p.gated != tc.gated {
				t.Errorf("gated = %v, want %v", p.gated, tc.gated)
			}
			if (p.ticket != "") != (tc.ticket == wechatv1alpha1.ReasonTicketValid) {
				t.Errorf("ticket = %q with reason %q", p.ticket, p.ticketReason)
			}
		})
	}
}

func TestDecideRefreshRequest(t *testing.T) {
	backoff := refresh.APIFailure
	token := tokenAt("t", -time.Minute)
	cases := map[string]struct {
		requestedAt time.Time
		ok          bool
		token       *issuedToken
		last        requestRun
		want        refreshRequestDecision
	}{
		"no annotation":                         {ok: false, token: token},
		"no token to refresh":                   {requestedAt: decideNow, ok: true},
		"asked for a token older than this one": {requestedAt: decideNow.Add(-2 * time.Minute), ok: true, token: token},
		"the first request is honoured at once": {
			requestedAt: decideNow, ok: true, token: token, want: refreshRequestDecision{honour: true, inARow: 1},
		},
		"a second request waits for the backoff from the token the first brought": {
			requestedAt: decideNow, ok: true, token: tokenAt("t", -time.Second),
			last: requestRun{inARow: 1, last: decideNow.Add(-time.Second)},
			want: refreshRequestDecision{inARow: 1, wait: backoff.Delay(1, 0) - time.Second},
		},
		"a request after the backoff is honoured and counted": {
			requestedAt: decideNow, ok: true, token: token,
			last: requestRun{inARow: 1, last: decideNow.Add(-time.Minute)},
			want: refreshRequestDecision{honour: true, inARow: 2},
		},
		"a token from a scheduled refresh starts a new run": {
			requestedAt: decideNow, ok: true, token: token,
			last: requestRun{inARow: 6, last: decideNow.Add(-time.Hour)},
			want: refreshRequestDecision{honour: true, inARow: 1},
		},
		"a token that lived past twice the cap starts a new run": {
			requestedAt: decideNow, ok: true, token: tokenAt("t", -2*backoff.Cap),
			last: requestRun{inARow: 6, last: decideNow.Add(-2 * backoff.Cap)},
			want: refreshRequestDecision{honour: true, inARow: 1},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := decideRefreshRequest(tc.requestedAt, tc.ok, tc.token, tc.last, backoff, decideNow); got != tc.want {
				t.Errorf("decideRefreshRequest = %+v, want %+v", got, tc.want)
			}
		})
	}
}
