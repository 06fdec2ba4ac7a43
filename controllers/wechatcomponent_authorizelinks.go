/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/authlink"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// The authorization start page (spec.authorizePage): the receiver, which holds no token,
// records each visit in status.authorizeLinkRequests and waits; this step answers each
// request once, with one api_create_preauthcode call whose code it seals for the receiver
// (internal/authlink), or with a failure reason. Whoever holds the receiver's credentials
// can write requests, so the calls are bounded per component: a token bucket, and after a
// failed call a backoff during which requests are answered with the failure, not called.

const (
	// linkAnswerWindow is how old a request may be and still be answered: the receiver waits
	// a few seconds (its --authorize-page-timeout), then shows "try again".
	linkAnswerWindow = 10 * time.Second
	// linkRequestLifetime is when any request goes from status, answered or not: the
	// receiver removes those it showed; these are the ones it did not (it crashed, or gave up).
	linkRequestLifetime = time.Minute
	// DefaultLinkBurst and DefaultLinkInterval bound api_create_preauthcode calls per
	// component: a few administrators at once, then one per interval.
	DefaultLinkBurst    = 5
	DefaultLinkInterval = 12 * time.Second
)

// PreAuthCodeCreator is what answering the start page needs of WeChat.
type PreAuthCodeCreator interface {
	CreatePreAuthCode(ctx context.Context, componentToken, appID string) (wxapi.PreAuthCode, error)
}

// linkAction is what to do with one request.
type linkAction int

const (
	linkKeep linkAction = iota // answered already, or waiting: leave it
	linkDrop                   // expired, or answered long ago: remove it
	linkFail                   // answer with a failure reason, no call
	linkCall                   // make a pre_auth_code
)

// linkInput is what deciding on one request needs.
type linkInput struct {
	request    wechatv1alpha1.AuthorizeLinkRequest
	enabled    bool // spec.authorizePage.enabled
	tokenValid bool // a component token the call may use
	now        time.Time
}

// decideLinkRequest is pure: what to do with a request, and the failure reason for linkFail.
func decideLinkRequest(in linkInput) (linkAction, string) {
	age := in.now.Sub(in.request.RequestedAt.Time)
	switch {
	case age >= linkRequestLifetime || age <= -linkRequestLifetime:
		return linkDrop, "" // a requestedAt far ahead is junk: it would otherwise stay for good
	case in.request.AnsweredAt != nil || in.request.FailureReason != "":
		return linkKeep, ""
	case age > linkAnswerWindow:
		return linkDrop, "" // the receiver stopped waiting; a code now would be wasted
	case !in.enabled:
		return linkFail, wechatv1alpha1.ReasonAuthorizePageDisabled
	case !in.tokenValid:
		return linkFail, wechatv1alpha1.ReasonComponentNotReady
	}
	return linkCall, ""
}

// linkBudget bounds api_create_preauthcode calls per component: a token bucket, and a
// backoff after a failure (refresh.APIFailure) during which no call is made.
type linkBudget struct {
	mu      sync.Mutex
	buckets map[types.NamespacedName]bucket
	backoff map[types.NamespacedName]linkFailure
}

type linkFailure struct {
	failures  int32
	notBefore time.Time
	reason    string
}

// allow reports whether a call may go now; else the reason to answer with instead.
func (b *linkBudget) allow(key types.NamespacedName, now time.Time) (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f, ok := b.backoff[key]; ok && now.Before(f.notBefore) {
		return false, f.reason
	}
	if b.buckets == nil {
		b.buckets = map[types.NamespacedName]bucket{}
	}
	next, ok, _ := b.buckets[key].take(now, DefaultLinkBurst, DefaultLinkInterval)
	b.buckets[key] = next
	if !ok {
		return false, wechatv1alpha1.ReasonAuthorizeLinksThrottled
	}
	return true, ""
}

// result records a call's outcome: a failure starts or lengthens the backoff.
func (b *linkBudget) result(key types.NamespacedName, now time.Time, failureReason string, scale, random float64) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if failureReason == "" {
		delete(b.backoff, key)
		return 0
	}
	if b.backoff == nil {
		b.backoff = map[types.NamespacedName]linkFailure{}
	}
	f := b.backoff[key]
	f.failures++
	wait := refresh.APIFailure.Scaled(scale).Delay(f.failures, random)
	f.notBefore, f.reason = now.Add(wait), failureReason
	b.backoff[key] = f
	return wait
}

// stepAuthorizeLinks answers status.authorizeLinkRequests and prunes old ones. It asks to
// come back when the oldest kept request is due for removal.
func (r *WeChatComponentReconciler) stepAuthorizeLinks(ctx context.Context, run *componentRun) (stepResult, error) {
	c := run.c
	if len(c.Status.AuthorizeLinkRequests) == 0 {
		return stepResult{}, nil
	}
	creator, canCall := r.WeChat.(PreAuthCodeCreator)
	tokenValid := canCall && run.codesMayGo && run.state.token.validAt(run.now) && run.creds.token != ""
	var keep []wechatv1alpha1.AuthorizeLinkRequest
	var requeue time.Duration
	answered := false
	for _, req := range c.Status.AuthorizeLinkRequests {
		action, reason := decideLinkRequest(linkInput{request: req, enabled: c.Spec.AuthorizePage.Enabled, tokenValid: tokenValid, now: run.now})
		switch action {
		case linkDrop:
			continue
		case linkFail:
			req, answered = answeredLink(req, run.now, reason), true
		case linkCall:
			req, answered = r.answerLinkRequest(ctx, run, creator, req), true
		}
		keep = append(keep, req)
		requeue = firstRetry(requeue, max(req.RequestedAt.Add(linkRequestLifetime).Sub(run.now), time.Second))
	}
	c.Status.AuthorizeLinkRequests = keep
	if answered && decideDiscovery(c.Spec.Authorizers.Discover, c.Status.Discovery, run.now).action == discoveryRead {
		// The answers reach the visitor only with the status write at the end of the
		// reconcile: write them now, and read the discovery page in the next reconcile.
		return stepResult{requeue: linkAnsweredRequeue, stop: true}, nil
	}
	return stepResult{requeue: requeue}, nil
}

// linkAnsweredRequeue is how soon a reconcile that stopped to deliver link answers goes on.
const linkAnsweredRequeue = 10 * time.Millisecond

// answerLinkRequest makes one pre_auth_code for req, if the budget allows, and seals it.
func (r *WeChatComponentReconciler) answerLinkRequest(ctx context.Context, run *componentRun, creator PreAuthCodeCreator,
	req wechatv1alpha1.AuthorizeLinkRequest) wechatv1alpha1.AuthorizeLinkRequest {
	logger := log.FromContext(ctx)
	if ok, reason := r.links.allow(run.key, run.now); !ok {
		logger.Info("an authorization start page request was not answered with a code", "reason", reason)
		return answeredLink(req, run.now, reason)
	}
	pac, err := creator.CreatePreAuthCode(ctx, run.state.token.accessToken, run.c.Spec.AppID)
	if err != nil {
		reason := classifyAPIError(err).reason
		wait := r.links.result(run.key, run.now, reason, r.BackoffScale, r.Random())
		logger.Info("api_create_preauthcode failed; the start page shows \"try again\"", "reason", reason, "error", err.Error(), "backoff", wait)
		return answeredLink(req, run.now, reason)
	}
	r.links.result(run.key, run.now, "", 0, 0)
	sealed, err := authlink.Seal(authlink.SealKey(run.creds.token, run.creds.encodingAESKey), run.c.Namespace, run.c.Name, req.ID, pac.Code)
	if err != nil {
		logger.Info("sealing a pre_auth_code failed", "error", err.Error())
		return answeredLink(req, run.now, wechatv1alpha1.ReasonWeChatError)
	}
	req = answeredLink(req, run.now, "")
	expires := metav1.NewTime(run.now.Add(pac.ExpiresIn).UTC().Truncate(time.Second))
	req.SealedPreAuthCode, req.ExpiresAt = sealed, &expires
	logger.Info("answered an authorization start page request with a pre_auth_code", "expiresAt", expires)
	return req
}

func answeredLink(req wechatv1alpha1.AuthorizeLinkRequest, now time.Time, reason string) wechatv1alpha1.AuthorizeLinkRequest {
	at := metav1.NewTime(now.UTC().Truncate(time.Second))
	req.AnsweredAt, req.FailureReason = &at, reason
	return req
}

// rebaseLinkRequests is latest's requests (the receiver adds and removes them) with this
// reconcile's answers, less those it removed.
func rebaseLinkRequests(before, mine, latest []wechatv1alpha1.AuthorizeLinkRequest) []wechatv1alpha1.AuthorizeLinkRequest {
	var out []wechatv1alpha1.AuthorizeLinkRequest
	byID := func(list []wechatv1alpha1.AuthorizeLinkRequest, id string) int {
		return slices.IndexFunc(list, func(r wechatv1alpha1.AuthorizeLinkRequest) bool { return r.ID == id })
	}
	for _, l := range latest {
		i := byID(mine, l.ID)
		switch {
		case i >= 0:
			out = append(out, *mine[i].DeepCopy())
		case byID(before, l.ID) < 0:
			out = append(out, *l.DeepCopy()) // recorded meanwhile: for the next reconcile
		}
	}
	return out
}

// newLinkRequest reports a request in now that was not in before: it must wake the controller.
func newLinkRequest(before, now []wechatv1alpha1.AuthorizeLinkRequest) bool {
	for _, n := range now {
		if !slices.ContainsFunc(before, func(b wechatv1alpha1.AuthorizeLinkRequest) bool { return b.ID == n.ID }) {
			return true
		}
	}
	return false
}
