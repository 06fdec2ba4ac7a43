/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// A component reconcile is an ordered list of steps, run by one loop (reconcileSteps):
//
//  1. keys: the credentials Secret, and the receiver keys and forwarding key in the keyring;
//  2. token: the component_access_token (decideComponentToken, then the call and the Secret);
//  3. quota reset: a clear_quota an authorizer (or a human) asked for;
//  4. code exchange: the codes in status.pendingAuthorizationCodes;
//  5. release-test replies: the 全网发布 test's status.pendingTestReplies;
//  6. authorize links: the start page's status.authorizeLinkRequests (wechatcomponent_authorizelinks.go);
//     answers reach the visitor only with the status write at the end of the reconcile, so a
//     reconcile that answered one stops here when a discovery page (up to 500 creations) is due,
//     and reads the page in the next reconcile, right after;
//  7. discovery: one page of a spec.authorizers.discover pass (wechatcomponent_discovery.go).
//
// Each step returns when it wants to come back; the loop keeps the soonest. A Go error ends
// the loop (the queue retries it); so does a step that says stop. WeChat calls and writes
// happen in this order: the keyring, the token Secret, the authorizers' state Secrets (code
// exchange), and last, in Reconcile, the component's status.

// componentState is what one reconcile learned; it is turned into status at the end.
type componentState struct {
	token        *issuedToken
	refreshAt    time.Time
	failure      *failure
	ticketReason string
	ticketMsg    string
	// gated: a failed call's backoff is running, nothing new was learned; its conditions stay.
	gated bool
}

// componentRun is one reconcile's working set, shared by the steps.
type componentRun struct {
	c      *wechatv1alpha1.WeChatComponent
	key    types.NamespacedName
	now    time.Time
	state  *componentState
	secret *corev1.Secret // the token Secret as read
	policy refresh.Policy
	creds  credentials
	// keysChanged: the keys step wrote new receiver keys.
	keysChanged bool
	// codesMayGo: the token step left a token the code steps may use now (it did not fail,
	// wait for a ticket, or back off).
	codesMayGo bool
}

// stepResult is what a step asks of the loop: to come back after requeue (0: no opinion),
// or to stop here.
type stepResult struct {
	requeue time.Duration
	stop    bool
}

type componentStep func(context.Context, *componentRun) (stepResult, error)

// reconcileSteps gathers, then runs the steps in order and folds their results once.
func (r *WeChatComponentReconciler) reconcileSteps(ctx context.Context, c *wechatv1alpha1.WeChatComponent) (*componentState, reconcile.Result, error) {
	run := &componentRun{c: c, key: client.ObjectKeyFromObject(c), now: r.Clock.Now(), state: &componentState{}}
	var err error
	if run.secret, err = getManagedSecret(ctx, r.Client, c.Namespace, componentTokenSecretName(c)); err != nil {
		return run.state, reconcile.Result{}, err
	}
	run.state.token = readTokenSecret(run.secret, c.Spec.AppID)
	r.quota.restore(run.key, c)
	policy, err := refresh.ParsePolicy(c.Spec.Refresh.Before, c.Spec.Refresh.Jitter)
	run.policy = policy.WithMinMargin(r.MinRefreshMargin)
	if err != nil {
		res, err := r.fail(ctx, run, configurationFailure(wechatv1alpha1.ReasonInvalidSpec, err.Error()))
		return run.state, reconcile.Result{RequeueAfter: res.requeue}, err
	}
	if run.state.token != nil {
		run.state.refreshAt = keptRefreshTime(c.Status.RefreshAt, c.Status.ExpiresAt, run.policy, run.state.token, r.Random())
	}

	var result time.Duration
	for _, step := range []componentStep{r.stepKeys, r.stepToken, r.stepQuotaReset, r.stepCodeExchange, r.stepTestReplies, r.stepAuthorizeLinks, r.stepDiscovery} {
		res, err := step(ctx, run)
		if err != nil {
			return run.state, reconcile.Result{}, err
		}
		if res.requeue > 0 && (result == 0 || res.requeue < result) {
			result = res.requeue
		}
		if res.stop {
			break
		}
	}
	return run.state, reconcile.Result{RequeueAfter: result}, nil
}

// stepKeys reads the credentials and projects the receiver keys. Without usable
// credentials nothing else can be done.
func (r *WeChatComponentReconciler) stepKeys(ctx context.Context, run *componentRun) (stepResult, error) {
	creds, err := r.loadCredentials(ctx, run.c)
	if err != nil {
		res, err := r.fail(ctx, run, err)
		res.stop = true
		return res, err
	}
	run.creds = creds
	forwardKey, err := r.forwardKey(ctx, run.c)
	if err != nil {
		return stepResult{}, err
	}
	if run.keysChanged, err = r.keyring().project(ctx, run.key, creds.token, creds.encodingAESKey, forwardKey); err != nil {
		return stepResult{}, fmt.Errorf("updating the receiver keyring: %w", err)
	}
	return stepResult{}, nil
}

// stepToken decides on the component token and acts on the decision.
func (r *WeChatComponentReconciler) stepToken(ctx context.Context, run *componentRun) (stepResult, error) {
	c, state, now := run.c, run.state, run.now
	gate := r.gate(c, run.creds.version)
	honour, inARow, wait := r.refreshRequest(c, state.token, now)
	plan := decideComponentToken(componentTokenInput{
		token: state.token, refreshAt: state.refreshAt, ticket: c.Status.VerifyTicket, namespace: c.Namespace, name: c.Name,
		keysChanged: run.keysChanged, gate: gate, request: refreshRequestDecision{honour: honour, inARow: inARow, wait: wait},
	}, now)
	state.ticketReason, state.ticketMsg = plan.ticketReason, plan.ticketMsg
	switch plan.action {
	case tokenServe:
		// Keep the Secret's labels and annotations in line with spec, without a WeChat call.
		if _, err := r.tokenSecrets().ensure(ctx, c, run.secret, componentTokenSecretName(c), c.Spec.TokenSecret, componentLabels(c), state.token); err != nil {
			return r.secretFailure(ctx, run, err)
		}
		state.gated, run.codesMayGo = plan.gated, true
		return stepResult{requeue: plan.requeue}, nil
	case tokenAwaitTicket:
		r.requestTicketPush(ctx, c, run.creds)
		return stepResult{requeue: plan.requeue}, nil
	case tokenBackOff:
		state.gated, state.refreshAt = plan.gated, plan.retryAt
		return stepResult{requeue: plan.requeue}, nil
	case tokenSettleKeys:
		return stepResult{requeue: plan.requeue}, nil
	}
	if gate.changed {
		log.FromContext(ctx).Info("the spec or the credentials Secret changed since the last failure; trying again now")
	}
	if honour {
		r.retries.honourRequest(run.key, inARow, now)
	}
	return r.refreshComponentToken(ctx, run, plan.ticket)
}

// refreshComponentToken calls api_component_token (once more after a quota reset) and
// writes the token Secret.
func (r *WeChatComponentReconciler) refreshComponentToken(ctx context.Context, run *componentRun, ticket string) (stepResult, error) {
	c, state, now := run.c, run.state, run.now
	issued, err := r.WeChat.ComponentToken(ctx, c.Spec.AppID, run.creds.appSecret, ticket)
	if wxapi.IsQuota(err) {
		outcome, resetErr := r.resetQuota(ctx, c, state.token, wxapi.APIComponentToken)
		if outcome == quotaReset {
			// Retry once, right away; another 45009 backs off like any failure.
			issued, err = r.WeChat.ComponentToken(ctx, c.Spec.AppID, run.creds.appSecret, ticket)
		} else {
			err = quotaFailure(c, state.token, err, outcome, resetErr, now)
		}
	}
	if err != nil {
		f := classifyComponentTokenError(err, c.Spec.CredentialsSecretRef.Name)
		r.retries.failed(run.key, run.creds.version)
		if f.reason == wechatv1alpha1.ReasonTicketRejected {
			state.ticketReason, state.ticketMsg = wechatv1alpha1.ReasonTicketRejected, msgTicketRejected
			r.requestTicketPush(ctx, c, run.creds)
		}
		return r.fail(ctx, run, f)
	}
	token := newIssuedToken(issued.AccessToken, c.Spec.AppID, now, issued.ExpiresIn)
	if _, err := r.tokenSecrets().ensure(ctx, c, run.secret, componentTokenSecretName(c), c.Spec.TokenSecret, componentLabels(c), token); err != nil {
		return r.secretFailure(ctx, run, err)
	}
	recordTokenEvent(r.Recorder, c, "component_access_token", state.token.validAt(now), c.Status.FailedAttempts, token)
	state.token = token
	state.refreshAt = run.policy.RefreshAt(token.issuedAt, token.expiresAt, r.Random())
	c.Status.FailedAttempts, c.Status.LastFailureReason = 0, ""
	r.retries.succeeded(run.key)
	log.FromContext(ctx).Info("component_access_token refreshed", "expiresAt", token.expiresAt, "refreshAt", state.refreshAt)
	run.codesMayGo = true
	return stepResult{requeue: state.refreshAt.Sub(now)}, nil
}

// stepQuotaReset honours a quota-reset request with whatever valid token the token step left.
func (r *WeChatComponentReconciler) stepQuotaReset(ctx context.Context, run *componentRun) (stepResult, error) {
	if run.state.token.validAt(run.now) {
		r.honourQuotaResetRequest(ctx, run.c, run.state.token)
	}
	return stepResult{}, nil
}

// stepCodeExchange exchanges the pending authorization codes.
func (r *WeChatComponentReconciler) stepCodeExchange(ctx context.Context, run *componentRun) (stepResult, error) {
	if !run.codesMayGo {
		return stepResult{}, nil
	}
	return stepResult{requeue: r.exchangePendingCodes(ctx, run.c, run.state.token.accessToken)}, nil
}

// stepTestReplies answers the 全网发布 test's pending replies.
func (r *WeChatComponentReconciler) stepTestReplies(ctx context.Context, run *componentRun) (stepResult, error) {
	if !run.codesMayGo {
		return stepResult{}, nil
	}
	return stepResult{requeue: r.answerTestReplies(ctx, run.c, run.state.token.accessToken)}, nil
}

// fail records a failure and backs off (recordFailure, failure.go).
func (r *WeChatComponentReconciler) fail(ctx context.Context, run *componentRun, err error) (stepResult, error) {
	var f *failure
	if !errors.As(err, &f) {
		return stepResult{}, err
	}
	run.state.failure = f
	wait, retryAt := r.failures().record(ctx, run.c, &run.c.Status.TokenStatus, f)
	if !retryAt.IsZero() {
		run.state.refreshAt = retryAt
	}
	return stepResult{requeue: wait}, nil
}

func (r *WeChatComponentReconciler) secretFailure(ctx context.Context, run *componentRun, err error) (stepResult, error) {
	var notOurs errSecretNotOurs
	if errors.As(err, &notOurs) {
		return r.fail(ctx, run, configurationFailure(wechatv1alpha1.ReasonSecretConflict, err.Error()))
	}
	return stepResult{}, fmt.Errorf("writing the token Secret: %w", err)
}
