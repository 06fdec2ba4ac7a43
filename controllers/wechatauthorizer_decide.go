/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"fmt"
	"time"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
)

// An authorizer reconcile gathers everything it reads into an authorizerInput, decides with
// the pure decideAuthorizer what to do, and then acts (wechatauthorizer_controller.go). A
// pending authorization code is the one decision that depends on WeChat's answer: the code is
// exchanged first, and the decision is taken again on what the exchange left.

// authorizerInput is all one reconcile reads before it decides: the authorizer (spec and
// status as read), its two Secrets, and its component.
type authorizerInput struct {
	authorizer *wechatv1alpha1.WeChatAuthorizer
	// state is the private state Secret's content; secretToken the app-facing token Secret's.
	state       authorizerState
	secretToken *issuedToken
	// hasTokenSecret: the token Secret exists (spec.onUnauthorized DeleteToken empties it).
	hasTokenSecret bool
	// component is nil when it could not be read; componentMsg then says why (an API
	// error other than NotFound).
	component      *wechatv1alpha1.WeChatComponent
	componentMsg   string
	componentToken *issuedToken
	// codeHandled: the pending code was dealt with earlier in this reconcile (exchanged,
	// dropped, or kept for its backoff); its state is what the exchange left.
	codeHandled bool
	// minMargin and jitter: the reconciler's MinRefreshMargin and one draw of its Random.
	minMargin time.Duration
	jitter    float64
}

// authorizerAction is what a reconcile does next.
type authorizerAction int

const (
	// authorizerFail: record plan.failure (a spec the schema could not check).
	authorizerFail authorizerAction = iota
	// authorizerStop: the account revoked its authorization; stop refreshing.
	authorizerStop
	// authorizerWait: the component is missing or has no token; plan.waiting says which.
	authorizerWait
	// authorizerExchange: exchange plan.code with api_query_auth, then decide again.
	authorizerExchange
	// authorizerServe: keep serving plan.serve (its Secret's metadata brought in line with spec).
	authorizerServe
	// authorizerRefresh: get a new token (finding a refresh token first if there is none).
	authorizerRefresh
)

// authorizerPlan is what decideAuthorizer decided.
type authorizerPlan struct {
	action  authorizerAction
	failure *failure
	// waiting and waitingMsg: why Ready is False without a failure (authorizerStop, authorizerWait).
	waiting, waitingMsg string
	// deleteToken (authorizerStop): remove the token from the token Secret.
	deleteToken bool
	// dropCode: the pending code expired before it could be exchanged: clear it.
	dropCode bool
	policy   refresh.Policy
	// serve is the token the Secret serves now; hadToken that it is valid (a refresh of a
	// valid token records no Event).
	serve     *issuedToken
	hadToken  bool
	refreshAt time.Time
	// requeue, for authorizerWait: the watches wake us; look again now and then anyway.
	requeue time.Duration
}

// decideAuthorizer is the authorizer's decision, a pure function of what was read and now.
// The order is the order of precedence: a bad spec, a revocation, a missing component, a
// pending code, then the token.
func decideAuthorizer(in authorizerInput, now time.Time) authorizerPlan {
	a := in.authorizer
	policy, err := refresh.ParsePolicy(a.Spec.Refresh.Before, a.Spec.Refresh.Jitter)
	if err != nil {
		return authorizerPlan{action: authorizerFail, failure: configurationFailure(wechatv1alpha1.ReasonInvalidSpec, err.Error())}
	}
	plan := authorizerPlan{policy: policy.WithMinMargin(in.minMargin), serve: in.secretToken}
	if revoked(a) {
		plan.action = authorizerStop
		plan.waiting = wechatv1alpha1.ReasonUnauthorized
		plan.waitingMsg = fmt.Sprintf(msgRevoked, a.Status.UnauthorizedAt.UTC().Format(time.RFC3339))
		plan.deleteToken = a.Spec.OnUnauthorized == wechatv1alpha1.UnauthorizedDeleteToken && in.hasTokenSecret
		return plan
	}
	switch {
	case in.component == nil:
		plan.action, plan.requeue = authorizerWait, refresh.ConfigurationError.Cap
		plan.waiting = wechatv1alpha1.ReasonComponentNotFound
		plan.waitingMsg = fmt.Sprintf(msgComponentNotFound, a.Spec.ComponentRef.Name)
		if in.componentMsg != "" {
			plan.waitingMsg = in.componentMsg
		}
		return plan
	case !in.componentToken.validAt(now):
		plan.action, plan.requeue = authorizerWait, refresh.ConfigurationError.Cap
		plan.waiting = wechatv1alpha1.ReasonComponentNotReady
		plan.waitingMsg = fmt.Sprintf(msgComponentNotReady, in.component.Name)
		return plan
	}

	current := in.secretToken
	if code := a.Status.AuthorizationCode; code != nil && !in.codeHandled {
		if now.Before(code.ExpiresAt.Time) {
			plan.action = authorizerExchange
			return plan
		}
		plan.dropCode = true
	}
	if in.codeHandled || plan.dropCode {
		// What the exchange left in the state is the candidate (an expired code left it as it was).
		current = in.state.token
	}
	// Serve what the state holds if it is newer than the token Secret's (a crash between the
	// two writes, or a code exchanged by the component controller).
	if st := in.state.token; st.validAt(now) && (!current.validAt(now) || st.expiresAt.After(current.expiresAt)) {
		current = st
	}
	plan.serve, plan.hadToken = current, current.validAt(now)
	if current != nil {
		plan.refreshAt = keptRefreshTime(a.Status.RefreshAt, a.Status.ExpiresAt, plan.policy, current, in.jitter)
	}
	plan.action = authorizerRefresh
	if current.validAt(now) && now.Before(plan.refreshAt) {
		plan.action = authorizerServe
	}
	return plan
}

// infoDue reports whether status.info is a day old or missing.
func infoDue(info *wechatv1alpha1.AuthorizerInfo, now time.Time) bool {
	return info == nil || info.UpdatedAt == nil || now.Sub(info.UpdatedAt.Time) >= infoRefreshInterval
}

// authorizerRequeue is when to come back after a reconcile that served or refreshed the
// token: at its refresh time, or when status.info is due if that is sooner; never in less
// than a second.
func authorizerRequeue(refreshAt time.Time, info *wechatv1alpha1.AuthorizerInfo, now time.Time) time.Duration {
	next := refreshAt
	if info != nil && info.UpdatedAt != nil {
		next = minTime(next, info.UpdatedAt.Add(infoRefreshInterval))
	}
	return max(next.Sub(now), time.Second)
}
