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

// Plain Go tests of the authorizer's decision: no API server, no WeChat.

var decideNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// tokenAt is a 2-hour token issued at issued (relative to decideNow).
func tokenAt(value string, issued time.Duration) *issuedToken {
	at := decideNow.Add(issued)
	return &issuedToken{accessToken: value, appID: "wx1111111111111111", issuedAt: at, expiresAt: at.Add(2 * time.Hour)}
}

func mtime(d time.Duration) *metav1.Time { return timePtr(decideNow.Add(d)) }

// baseAuthorizerInput is an authorized account with a component that has a token and a token
// Secret issued 30 minutes ago: nothing to do but serve it.
func baseAuthorizerInput() authorizerInput {
	secret := tokenAt("secret-token", -30*time.Minute)
	return authorizerInput{
		authorizer: &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "shop"},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{
				ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: "wx1111111111111111",
			},
		},
		state:          authorizerState{refreshToken: "refresh", token: secret},
		secretToken:    secret,
		hasTokenSecret: true,
		component:      &wechatv1alpha1.WeChatComponent{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "platform"}},
		componentToken: tokenAt("component-token", -time.Hour),
		jitter:         0.5,
	}
}

func TestDecideAuthorizer(t *testing.T) {
	stateNewer := tokenAt("state-token", -5*time.Minute)
	cases := map[string]struct {
		tweak       func(*authorizerInput)
		action      authorizerAction
		reason      string // the failure's or the waiting reason
		serve       string // the token served ("" : none)
		refreshAt   time.Time
		dropCode    bool
		deleteToken bool
	}{
		"a valid token before its refresh time is served": {
			tweak: func(*authorizerInput) {}, action: authorizerServe, serve: "secret-token",
			// 2h token issued 30m ago: margin max(10m, 12m)=12m, jitter 0.5*5% of 2h = 3m.
			refreshAt: decideNow.Add(-30*time.Minute + 2*time.Hour - 12*time.Minute - 3*time.Minute),
		},
		"the refresh time in status is kept for the same token": {
			tweak: func(in *authorizerInput) {
				in.authorizer.Status.ExpiresAt = timePtr(in.secretToken.expiresAt)
				in.authorizer.Status.RefreshAt = mtime(time.Hour)
			},
			action: authorizerServe, serve: "secret-token", refreshAt: decideNow.Add(time.Hour),
		},
		"a refresh time in status that has come refreshes": {
			tweak: func(in *authorizerInput) {
				in.authorizer.Status.ExpiresAt = timePtr(in.secretToken.expiresAt)
				in.authorizer.Status.RefreshAt = mtime(0)
			},
			action: authorizerRefresh, serve: "secret-token", refreshAt: decideNow,
		},
		"an expired token refreshes": {
			tweak: func(in *authorizerInput) {
				in.secretToken, in.state.token = tokenAt("old", -3*time.Hour), nil
			},
			action: authorizerRefresh, serve: "old",
			refreshAt: decideNow.Add(-3*time.Hour + 2*time.Hour - 15*time.Minute),
		},
		"no token at all refreshes": {
			tweak:  func(in *authorizerInput) { in.secretToken, in.state.token = nil, nil },
			action: authorizerRefresh,
		},
		"a newer token in the state than in the Secret is served (a crash between the writes)": {
			tweak:  func(in *authorizerInput) { in.state.token = stateNewer },
			action: authorizerServe, serve: "state-token",
			refreshAt: decideNow.Add(-5*time.Minute + 2*time.Hour - 15*time.Minute),
		},
		"an older token in the state does not replace the Secret's": {
			tweak:  func(in *authorizerInput) { in.state.token = tokenAt("state-token", -50*time.Minute) },
			action: authorizerServe, serve: "secret-token",
			refreshAt: decideNow.Add(-30*time.Minute + 2*time.Hour - 15*time.Minute),
		},
		"an unparsable refresh policy fails as InvalidSpec before anything else": {
			tweak: func(in *authorizerInput) {
				in.authorizer.Spec.Refresh.Before = "soon"
				in.component = nil
			},
			action: authorizerFail, reason: wechatv1alpha1.ReasonInvalidSpec,
		},
		"a revocation stops, before the component is looked at": {
			tweak: func(in *authorizerInput) {
				in.authorizer.Status.UnauthorizedAt = mtime(-time.Minute)
				in.component = nil
			},
			action: authorizerStop, reason: wechatv1alpha1.ReasonUnauthorized, serve: "secret-token",
		},
		"a revocation with onUnauthorized DeleteToken deletes the token": {
			tweak: func(in *authorizerInput) {
				in.authorizer.Status.UnauthorizedAt = mtime(-time.Minute)
				in.authorizer.Spec.OnUnauthorized = wechatv1alpha1.UnauthorizedDeleteToken
			},
			action: authorizerStop, reason: wechatv1alpha1.ReasonUnauthorized, serve: "secret-token", deleteToken: true,
		},
		"DeleteToken without a token Secret has nothing to delete": {
			tweak: func(in *authorizerInput) {
				in.authorizer.Status.UnauthorizedAt = mtime(-time.Minute)
				in.authorizer.Spec.OnUnauthorized = wechatv1alpha1.UnauthorizedDeleteToken
				in.hasTokenSecret, in.secretToken = false, nil
			},
			action: authorizerStop, reason: wechatv1alpha1.ReasonUnauthorized,
		},
		"an authorization after the revocation resumes": {
			tweak: func(in *authorizerInput) {
				in.authorizer.Status.UnauthorizedAt = mtime(-time.Hour)
				in.authorizer.Status.AuthorizedAt = mtime(-time.Minute)
			},
			action: authorizerServe, serve: "secret-token",
			refreshAt: decideNow.Add(-30*time.Minute + 2*time.Hour - 15*time.Minute),
		},
		"a code received after the revocation is exchanged": {
			tweak: func(in *authorizerInput) {
				in.authorizer.Status.UnauthorizedAt = mtime(-time.Hour)
				in.authorizer.Status.AuthorizationCode = &wechatv1alpha1.AuthorizationCode{
					Code: "code", ExpiresAt: *mtime(time.Hour), ReceivedAt: mtime(-time.Minute)}
			},
			action: authorizerExchange, serve: "secret-token",
		},
		"a missing component waits": {
			tweak:  func(in *authorizerInput) { in.component = nil },
			action: authorizerWait, reason: wechatv1alpha1.ReasonComponentNotFound, serve: "secret-token",
		},
		"a component without a valid token waits, even with a code pending": {
			tweak: func(in *authorizerInput) {
				in.componentToken = tokenAt("component-token", -3*time.Hour)
				in.authorizer.Status.AuthorizationCode = &wechatv1alpha1.AuthorizationCode{Code: "code", ExpiresAt: *mtime(time.Hour)}
			},
			action: authorizerWait, reason: wechatv1alpha1.ReasonComponentNotReady, serve: "secret-token",
		},
		"a pending code is exchanged first": {
			tweak: func(in *authorizerInput) {
				in.authorizer.Status.AuthorizationCode = &wechatv1alpha1.AuthorizationCode{Code: "code", ExpiresAt: *mtime(time.Second)}
			},
			action: authorizerExchange, serve: "secret-token",
		},
		"an expired code is dropped and the state's token decides": {
			tweak: func(in *authorizerInput) {
				in.authorizer.Status.AuthorizationCode = &wechatv1alpha1.AuthorizationCode{Code: "code", ExpiresAt: *mtime(0)}
			},
			action: authorizerServe, dropCode: true, serve: "secret-token",
			refreshAt: decideNow.Add(-30*time.Minute + 2*time.Hour - 15*time.Minute),
		},
		// As before the split into gather/decide/act: once a code was pending, the state's
		// token is the candidate, not the token Secret's.
		"an expired code with no token in the state refreshes": {
			tweak: func(in *authorizerInput) {
				in.authorizer.Status.AuthorizationCode = &wechatv1alpha1.AuthorizationCode{Code: "code", ExpiresAt: *mtime(0)}
				in.state.token = nil
			},
			action: authorizerRefresh, dropCode: true,
		},
		"after an exchange, the token it left in the state is served": {
			tweak: func(in *authorizerInput) {
				in.codeHandled = true
				in.state.token = tokenAt("exchanged", 0)
				in.authorizer.Status.AuthorizationCode = &wechatv1alpha1.AuthorizationCode{Code: "code", ExpiresAt: *mtime(time.Hour)}
			},
			action: authorizerServe, serve: "exchanged", refreshAt: decideNow.Add(2*time.Hour - 15*time.Minute),
		},
		"spec.refresh.before refreshes earlier": {
			tweak:  func(in *authorizerInput) { in.authorizer.Spec.Refresh.Before = "30m" },
			action: authorizerServe, serve: "secret-token",
			refreshAt: decideNow.Add(-30*time.Minute + 2*time.Hour - 30*time.Minute - 3*time.Minute),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := baseAuthorizerInput()
			tc.tweak(&in)
			plan := decideAuthorizer(in, decideNow)
			if plan.action != tc.action {
				t.Fatalf("action = %d, want %d", plan.action, tc.action)
			}
			reason := plan.waiting
			if plan.failure != nil {
				reason = plan.failure.reason
			}
			if reason != tc.reason {
				t.Errorf("reason = %q, want %q", reason, tc.reason)
			}
			served := ""
			if plan.serve != nil {
				served = plan.serve.accessToken
			}
			if served != tc.serve {
				t.Errorf("serve = %q, want %q", served, tc.serve)
			}
			if !tc.refreshAt.IsZero() && !plan.refreshAt.Equal(tc.refreshAt) {
				t.Errorf("refreshAt = %v, want %v", plan.refreshAt, tc.refreshAt)
			}
			if plan.dropCode != tc.dropCode || plan.deleteToken != tc.deleteToken {
				t.Errorf("dropCode, deleteToken = %v, %v; want %v, %v", plan.dropCode, plan.deleteToken, tc.dropCode, tc.deleteToken)
			}
			// A wait calls nothing; the watches wake it, and it looks again now and then,
			// never in a hot loop.
			if plan.action == authorizerWait && plan.requeue < time.Minute {
				t.Errorf("a wait must requeue in a minute or more, got %v", plan.requeue)
			}
		})
	}
}

func TestAuthorizerRequeue(t *testing.T) {
	cases := map[string]struct {
		refreshAt time.Time
		info      *wechatv1alpha1.AuthorizerInfo
		want      time.Duration
	}{
		"at the refresh time":         {decideNow.Add(time.Hour), nil, time.Hour},
		"info never fetched":          {decideNow.Add(time.Hour), &wechatv1alpha1.AuthorizerInfo{}, time.Hour},
		"info due before the refresh": {decideNow.Add(time.Hour), &wechatv1alpha1.AuthorizerInfo{UpdatedAt: mtime(-23*time.Hour - 50*time.Minute)}, 10 * time.Minute},
		"info due after the refresh":  {decideNow.Add(time.Hour), &wechatv1alpha1.AuthorizerInfo{UpdatedAt: mtime(-time.Hour)}, time.Hour},
		"never less than a second":    {decideNow.Add(-time.Hour), nil, time.Second},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := authorizerRequeue(tc.refreshAt, tc.info, decideNow); got != tc.want {
				t.Errorf("authorizerRequeue = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInfoDue(t *testing.T) {
	cases := map[string]struct {
		info *wechatv1alpha1.AuthorizerInfo
		want bool
	}{
		"none yet":                {nil, true},
		"without a time":          {&wechatv1alpha1.AuthorizerInfo{}, true},
		"an hour old":             {&wechatv1alpha1.AuthorizerInfo{UpdatedAt: mtime(-time.Hour)}, false},
		"a day old":               {&wechatv1alpha1.AuthorizerInfo{UpdatedAt: mtime(-24 * time.Hour)}, true},
		"a second short of a day": {&wechatv1alpha1.AuthorizerInfo{UpdatedAt: mtime(-24*time.Hour + time.Second)}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := infoDue(tc.info, decideNow); got != tc.want {
				t.Errorf("infoDue = %v, want %v", got, tc.want)
			}
		})
	}
}
