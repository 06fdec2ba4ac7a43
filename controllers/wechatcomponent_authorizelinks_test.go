/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// Plain Go tests of what the start page's requests get: no API server, no WeChat.

func TestDecideLinkRequest(t *testing.T) {
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(decideNow.Add(d)) }
	answered := at(-time.Second)
	cases := map[string]struct {
		tweak  func(*linkInput)
		action linkAction
		reason string
	}{
		"a fresh request of an enabled page with a token gets a call": {func(*linkInput) {}, linkCall, ""},
		"an answered request is left for the receiver":                {func(in *linkInput) { in.request.AnsweredAt = &answered }, linkKeep, ""},
		"a failure answer is left for the receiver too":               {func(in *linkInput) { in.request.FailureReason = "WeChatBusy" }, linkKeep, ""},
		"an answered request a minute old goes": {func(in *linkInput) {
			in.request.AnsweredAt, in.request.RequestedAt = &answered, at(-linkRequestLifetime)
		}, linkDrop, ""},
		"a request the receiver stopped waiting for goes without a call": {func(in *linkInput) {
			in.request.RequestedAt = at(-linkAnswerWindow - time.Second)
		}, linkDrop, ""},
		"a request dated far ahead goes":                          {func(in *linkInput) { in.request.RequestedAt = at(linkRequestLifetime) }, linkDrop, ""},
		"a request dated a little ahead (clock skew) is answered": {func(in *linkInput) { in.request.RequestedAt = at(2 * time.Second) }, linkCall, ""},
		"a disabled page gets no code":                            {func(in *linkInput) { in.enabled = false }, linkFail, wechatv1alpha1.ReasonAuthorizePageDisabled},
		"no component token, no call":                             {func(in *linkInput) { in.tokenValid = false }, linkFail, wechatv1alpha1.ReasonComponentNotReady},
		"disabled wins over no token":                             {func(in *linkInput) { in.enabled, in.tokenValid = false, false }, linkFail, wechatv1alpha1.ReasonAuthorizePageDisabled},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := linkInput{request: wechatv1alpha1.AuthorizeLinkRequest{ID: "request-0123456789ab", RequestedAt: at(-time.Second)},
				enabled: true, tokenValid: true, now: decideNow}
			tc.tweak(&in)
			action, reason := decideLinkRequest(in)
			if action != tc.action || reason != tc.reason {
				t.Fatalf("got %v %q, want %v %q", action, reason, tc.action, tc.reason)
			}
		})
	}
}

func TestRebaseLinkRequestsKeepsTheReceiversAndTheManagersChanges(t *testing.T) {
	now := metav1.NewTime(decideNow)
	req := func(id string, answered bool) wechatv1alpha1.AuthorizeLinkRequest {
		r := wechatv1alpha1.AuthorizeLinkRequest{ID: id, RequestedAt: now}
		if answered {
			r.AnsweredAt, r.SealedPreAuthCode = &now, "v1.sealed-"+id
		}
		return r
	}
	before := []wechatv1alpha1.AuthorizeLinkRequest{req("answered-by-me", false), req("pruned-by-me", false), req("shown-meanwhile", false)}
	mine := []wechatv1alpha1.AuthorizeLinkRequest{req("answered-by-me", true), req("shown-meanwhile", true)}
	// Meanwhile the receiver removed the one it showed and recorded a new one.
	latest := []wechatv1alpha1.AuthorizeLinkRequest{req("answered-by-me", false), req("pruned-by-me", false), req("new", false)}
	got := rebaseLinkRequests(before, mine, latest)
	if len(got) != 2 || got[0].ID != "answered-by-me" || got[0].SealedPreAuthCode == "" || got[1].ID != "new" || got[1].AnsweredAt != nil {
		t.Fatalf("rebased = %+v; want my answer kept, my pruning kept, the receiver's removal and new request kept", got)
	}
}
