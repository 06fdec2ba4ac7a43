/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
)

// Plain Go tests of how a reconcile's token and failure become the Ready and Stalled conditions.

func TestSetReady(t *testing.T) {
	valid, expired := tokenAt("t", -time.Hour), tokenAt("t", -3*time.Hour)
	busy := &failure{reason: wechatv1alpha1.ReasonWeChatBusy, message: "busy", backoff: refresh.APIFailure}
	cases := map[string]struct {
		token   *issuedToken
		failure *failure
		waiting string
		status  metav1.ConditionStatus
		reason  string
	}{
		"a valid token": {token: valid, status: metav1.ConditionTrue, reason: wechatv1alpha1.ReasonTokenIssued},
		"a valid token and a failure: still True": {token: valid, failure: busy, status: metav1.ConditionTrue, reason: wechatv1alpha1.ReasonWeChatBusy},
		"no valid token and a failure":            {token: expired, failure: busy, status: metav1.ConditionFalse, reason: wechatv1alpha1.ReasonWeChatBusy},
		"no token, waiting for a ticket": {waiting: wechatv1alpha1.ReasonWaitingForTicket,
			status: metav1.ConditionFalse, reason: wechatv1alpha1.ReasonWaitingForTicket},
		"an expired token with a valid ticket": {token: expired, waiting: wechatv1alpha1.ReasonTicketValid,
			status: metav1.ConditionFalse, reason: wechatv1alpha1.ReasonTokenExpired},
		"nothing at all": {status: metav1.ConditionFalse, reason: wechatv1alpha1.ReasonTokenExpired},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var conds []metav1.Condition
			setReady(&conds, 3, decideNow, tc.token, decideNow.Add(time.Hour), tc.failure, "s", tc.waiting, "msg")
			c := meta.FindStatusCondition(conds, wechatv1alpha1.ConditionReady)
			if c == nil || c.Status != tc.status || c.Reason != tc.reason || c.ObservedGeneration != 3 {
				t.Errorf("Ready = %+v, want %s %s at generation 3", c, tc.status, tc.reason)
			}
		})
	}
}

func TestSetStalled(t *testing.T) {
	cases := map[string]struct {
		failure *failure
		stalled bool
	}{
		"no failure":                   {nil, false},
		"a failure that may pass":      {&failure{reason: wechatv1alpha1.ReasonWeChatBusy, backoff: refresh.APIFailure}, false},
		"a failure that needs a human": {configurationFailure(wechatv1alpha1.ReasonIPNotWhitelisted, "whitelist"), true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			conds := []metav1.Condition{{Type: wechatv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "Old"}}
			setStalled(&conds, 1, tc.failure)
			if got := meta.IsStatusConditionTrue(conds, wechatv1alpha1.ConditionStalled); got != tc.stalled {
				t.Errorf("Stalled = %v, want %v", got, tc.stalled)
			}
		})
	}
}

func TestFailureRecorder(t *testing.T) {
	component := failureRecorder{random: func() float64 { return 0 }, humanEvent: wechatv1alpha1.EventCredentialsInvalid, what: "component"}
	authorizer := failureRecorder{random: func() float64 { return 0 }, what: "authorizer"}
	human := configurationFailure(wechatv1alpha1.ReasonIPNotWhitelisted, "whitelist")
	busy := &failure{reason: wechatv1alpha1.ReasonWeChatBusy, message: "busy", backoff: refresh.APIFailure}
	local := configurationFailure(wechatv1alpha1.ReasonCredentialsInvalid, "keys")
	cases := map[string]struct {
		fr        failureRecorder
		failure   *failure
		before    int32
		event     string
		movesNext bool
	}{
		"a component failure that may pass":            {component, busy, 0, wechatv1alpha1.EventRefreshFailed, true},
		"a component failure that needs a human":       {component, human, 2, wechatv1alpha1.EventCredentialsInvalid, true},
		"an authorizer failure that needs a human":     {authorizer, human, 0, wechatv1alpha1.EventRefreshFailed, true},
		"a failure found without calling WeChat":       {component, local, 0, wechatv1alpha1.EventCredentialsInvalid, false},
		"an authorizer's refresh-token Secret missing": {authorizer, configurationFailure(wechatv1alpha1.ReasonRefreshTokenSecretInvalid, "x"), 0, wechatv1alpha1.EventRefreshFailed, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			recorder := events.NewFakeRecorder(1)
			tc.fr.recorder, tc.fr.clock = recorder, clocktesting.NewFakePassiveClock(decideNow)
			s := &wechatv1alpha1.TokenStatus{FailedAttempts: tc.before}
			wait, retryAt := tc.fr.record(context.Background(), &wechatv1alpha1.WeChatComponent{}, s, tc.failure)
			if s.FailedAttempts != tc.before+1 || s.LastFailureReason != tc.failure.reason {
				t.Errorf("status = %d %q, want %d %q", s.FailedAttempts, s.LastFailureReason, tc.before+1, tc.failure.reason)
			}
			if want := tc.failure.backoff.Delay(tc.before+1, 0); wait != max(want, time.Second) {
				t.Errorf("wait = %v, want %v", wait, want)
			}
			if moved := !retryAt.IsZero(); moved != tc.movesNext {
				t.Errorf("retryAt = %v, want it set: %v", retryAt, tc.movesNext)
			} else if moved && !retryAt.Equal(decideNow.Add(wait).Truncate(time.Second)) {
				t.Errorf("retryAt = %v, want the end of the backoff", retryAt)
			}
			if e := <-recorder.Events; !strings.HasPrefix(e, "Warning "+tc.event+" ") {
				t.Errorf("Event = %q, want a Warning %s", e, tc.event)
			}
		})
	}
}
