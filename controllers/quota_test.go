/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// These are plain Go tests of the pure quota functions: they need no API server.

// bj is a wall-clock time in Beijing.
func bj(month time.Month, day, hour, minute int) time.Time {
	return time.Date(2026, month, day, hour, minute, 0, 0, beijing)
}

func TestBeijingDayStart(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		newYork = time.FixedZone("EST", -5*60*60)
	}
	cases := map[string]struct {
		t, want time.Time
	}{
		"a minute before midnight Beijing": {time.Date(2026, 11, 23, 15, 59, 0, 0, time.UTC), bj(11, 23, 0, 0)},
		"midnight Beijing is 16:00 UTC":    {time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC), bj(11, 24, 0, 0)},
		"UTC morning is Beijing afternoon": {time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), bj(11, 23, 0, 0)},
		"a new year in Beijing first":      {time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, beijing)},
		"whatever the input's zone":        {time.Date(2026, 11, 23, 11, 30, 0, 0, newYork), bj(11, 24, 0, 0)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := beijingDayStart(tc.t); !got.Equal(tc.want) {
				t.Errorf("beijingDayStart(%v) = %v, want %v", tc.t, got, tc.want)
			}
			if got := nextBeijingMidnight(tc.t); !got.Equal(tc.want.Add(24 * time.Hour)) {
				t.Errorf("nextBeijingMidnight(%v) = %v, want %v", tc.t, got, tc.want.Add(24*time.Hour))
			}
		})
	}
}

func TestQuotaResetAllowed(t *testing.T) {
	now := bj(11, 23, 23, 59)
	cases := map[string]struct {
		last time.Time
		want bool
	}{
		"never reset":                             {time.Time{}, true},
		"reset yesterday, a minute ago":           {bj(11, 23, 0, 0).Add(-time.Minute), true},
		"reset at midnight today":                 {bj(11, 23, 0, 0), false},
		"reset this morning (23 h ago, same day)": {bj(11, 23, 0, 1), false},
		"reset in the future (clock set back)":    {bj(11, 24, 8, 0), false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := quotaResetAllowed(tc.last, now); got != tc.want {
				t.Errorf("quotaResetAllowed(%v, %v) = %v, want %v", tc.last, now, got, tc.want)
			}
		})
	}
	// One minute later is the next Beijing day: the same reset no longer counts.
	if !quotaResetAllowed(bj(11, 23, 0, 1), now.Add(time.Minute)) {
		t.Error("a reset of yesterday blocks today")
	}
}

// quotaComponent is a component with the given opt-in, last reset and request annotation.
func quotaComponent(optIn bool, lastReset time.Time, request string) *wechatv1alpha1.WeChatComponent {
	c := &wechatv1alpha1.WeChatComponent{}
	c.Spec.Quota.ResetOnExhausted = optIn
	if !lastReset.IsZero() {
		c.Status.LastQuotaResetTime = &metav1.Time{Time: lastReset}
	}
	if request != "" {
		c.Annotations = map[string]string{wechatv1alpha1.AnnotationQuotaResetRequestedAt: request}
	}
	return c
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func TestQuotaResetRequested(t *testing.T) {
	now := bj(11, 23, 18, 0)
	cases := map[string]struct {
		c    *wechatv1alpha1.WeChatComponent
		want bool
	}{
		"no request":                           {quotaComponent(true, time.Time{}, ""), false},
		"not opted in":                         {quotaComponent(false, time.Time{}, rfc(now)), false},
		"malformed request":                    {quotaComponent(true, time.Time{}, "yesterday"), false},
		"request now, never reset":             {quotaComponent(true, time.Time{}, rfc(now)), true},
		"request now, reset yesterday":         {quotaComponent(true, bj(11, 22, 20, 0), rfc(now)), true},
		"request older than today's reset":     {quotaComponent(true, bj(11, 23, 17, 0), rfc(bj(11, 23, 16, 0))), false},
		"request after today's reset":          {quotaComponent(true, bj(11, 23, 17, 0), rfc(now)), false},
		"request of yesterday, never honoured": {quotaComponent(true, time.Time{}, rfc(bj(11, 22, 23, 0))), false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := quotaResetRequested(tc.c, now); got != tc.want {
				t.Errorf("quotaResetRequested = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestShouldRequestQuotaReset(t *testing.T) {
	now := bj(11, 23, 18, 0)
	cases := map[string]struct {
		c    *wechatv1alpha1.WeChatComponent
		want bool
	}{
		"not opted in":                           {quotaComponent(false, time.Time{}, ""), false},
		"opted in, no request yet":               {quotaComponent(true, time.Time{}, ""), true},
		"already reset today":                    {quotaComponent(true, bj(11, 23, 9, 0), ""), false},
		"reset yesterday":                        {quotaComponent(true, bj(11, 22, 9, 0), ""), true},
		"a request pending for 30 s":             {quotaComponent(true, time.Time{}, rfc(now.Add(-30*time.Second))), false},
		"a request pending for 2 min: ask again": {quotaComponent(true, time.Time{}, rfc(now.Add(-2*time.Minute))), true},
		"a request of yesterday":                 {quotaComponent(true, time.Time{}, rfc(bj(11, 22, 23, 0))), true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := shouldRequestQuotaReset(tc.c, now); got != tc.want {
				t.Errorf("shouldRequestQuotaReset = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQuotaMemory(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "platform"}
	now := bj(11, 23, 18, 0)
	var m quotaMemory
	if allowed, refused := m.check(key, now); !allowed || refused {
		t.Fatalf("an empty memory: allowed %v refused %v", allowed, refused)
	}
	m.block(key, now, true)
	if allowed, refused := m.check(key, now.Add(time.Hour)); allowed || !refused {
		t.Errorf("after 48006 the same day: allowed %v refused %v", allowed, refused)
	}
	if allowed, refused := m.check(key, bj(11, 24, 0, 0)); !allowed || refused {
		t.Errorf("after 48006, the next day: allowed %v refused %v", allowed, refused)
	}
	m.block(key, now, false)
	if allowed, refused := m.check(key, now); allowed || refused {
		t.Errorf("after a lost answer: allowed %v refused %v", allowed, refused)
	}

	other := types.NamespacedName{Namespace: "ns", Name: "other"}
	m.reset(other, now)
	if allowed, _ := m.check(other, now.Add(time.Hour)); allowed {
		t.Error("a second reset the same day is allowed")
	}
	// A status write that was lost is restored from memory; a newer status is kept.
	c := quotaComponent(true, time.Time{}, "")
	m.restore(other, c)
	if c.Status.LastQuotaResetTime == nil || !c.Status.LastQuotaResetTime.Time.Equal(now) {
		t.Errorf("restore: lastQuotaResetTime = %v, want %v", c.Status.LastQuotaResetTime, now)
	}
	later := quotaComponent(true, now.Add(24*time.Hour), "")
	m.restore(other, later)
	if !later.Status.LastQuotaResetTime.Time.Equal(now.Add(24 * time.Hour)) {
		t.Error("restore overwrote a newer reset")
	}
}

func TestQuotaFailure(t *testing.T) {
	now := bj(11, 23, 18, 0)
	quotaErr := &wxapi.APIError{API: wxapi.APIComponentToken, Code: wxapi.CodeQuotaReached, Msg: "reach max api daily quota limit"}
	refusal := &wxapi.APIError{API: wxapi.APIClearQuota, Code: wxapi.CodeClearQuotaLimit}
	valid := &issuedToken{accessToken: "secret-token-value", expiresAt: now.Add(time.Hour)}
	cases := map[string]struct {
		c          *wechatv1alpha1.WeChatComponent
		token      *issuedToken
		outcome    quotaResetOutcome
		resetErr   error
		wantReason string
		wantText   string
	}{
		"not opted in": {quotaComponent(false, time.Time{}, ""), valid, quotaNotReset, nil,
			wechatv1alpha1.ReasonQuotaExceeded, "resets at midnight Beijing time"},
		"reset already today": {quotaComponent(true, bj(11, 23, 9, 0), ""), valid, quotaNotReset, nil,
			wechatv1alpha1.ReasonQuotaExceeded, "already reset with clear_quota today"},
		"no token for clear_quota": {quotaComponent(true, time.Time{}, ""), nil, quotaNotReset, nil,
			wechatv1alpha1.ReasonQuotaExceeded, "needs a valid component_access_token"},
		"48006": {quotaComponent(true, time.Time{}, ""), valid, quotaResetRefused, refusal,
			wechatv1alpha1.ReasonQuotaResetExhausted, "quota resets are used up; waiting for the quotas to reset at midnight Beijing time (2026-11-24T00:00:00+08:00)"},
		"48006 remembered": {quotaComponent(true, time.Time{}, ""), valid, quotaResetRefused, nil,
			wechatv1alpha1.ReasonQuotaResetExhausted, "quota resets are used up"},
		"clear_quota busy": {quotaComponent(true, time.Time{}, ""), valid, quotaResetFailed, &wxapi.APIError{API: wxapi.APIClearQuota, Code: wxapi.CodeBusy},
			wechatv1alpha1.ReasonQuotaExceeded, "clear_quota failed"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := quotaFailure(tc.c, tc.token, quotaErr, tc.outcome, tc.resetErr, now)
			if f.reason != tc.wantReason {
				t.Errorf("reason = %q, want %q", f.reason, tc.wantReason)
			}
			if !strings.Contains(f.message, tc.wantText) {
				t.Errorf("message %q lacks %q", f.message, tc.wantText)
			}
			if strings.Contains(f.message, valid.accessToken) {
				t.Errorf("message %q holds the token", f.message)
			}
			var asFailure *failure
			if !errors.As(error(f), &asFailure) {
				t.Error("not a *failure")
			}
		})
	}
}

// TestComponentTokenChangedOnQuotaReset checks that a quota reset wakes the component's
// authorizers, as a new component token does.
func TestComponentTokenChangedOnQuotaReset(t *testing.T) {
	at := metav1.NewTime(bj(11, 23, 18, 0))
	later := metav1.NewTime(bj(11, 24, 18, 0))
	cases := map[string]struct {
		old, new *metav1.Time
		want     bool
	}{
		"first reset":   {nil, &at, true},
		"another reset": {&at, &later, true},
		"no change":     {&at, &at, false},
		"never reset":   {nil, nil, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			oldC, newC := &wechatv1alpha1.WeChatComponent{}, &wechatv1alpha1.WeChatComponent{}
			oldC.Status.LastQuotaResetTime, newC.Status.LastQuotaResetTime = tc.old, tc.new
			if got := quotaResetChanged(oldC, newC); got != tc.want {
				t.Errorf("quotaResetChanged = %v, want %v", got, tc.want)
			}
			if got := componentTokenChanged.Update(event.UpdateEvent{ObjectOld: oldC, ObjectNew: newC}); got != tc.want {
				t.Errorf("componentTokenChanged = %v, want %v", got, tc.want)
			}
		})
	}
}
