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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// spec.authorizers.discover: one pass over api_get_authorizer_list creates a WeChatAuthorizer
// for every listed account that has none, its refresh token in the state Secret. The pass
// reads one page (up to 500 accounts) per reconcile, after the token step, and records its
// offset in status.discovery: the component's own token never waits behind more than one
// page, a restart resumes where the pass was, and a completed pass is never read again
// until the spec names another.

const (
	msgDiscoveryInProgress = "discovering the accounts that authorized this platform: %d listed so far, %d WeChatAuthorizers created"
	msgDiscoveryCompleted  = "pass %q: api_get_authorizer_list listed %d accounts; created %d WeChatAuthorizers, %d already had one"
	msgDiscoveryMissing    = "pass %q: api_get_authorizer_list listed %d accounts, %d of them without a refresh token; " +
		"their WeChatAuthorizers wait with reason RefreshTokenMissing: import the tokens (kubectl wechat import) " +
		"or have the accounts authorize again (kubectl wechat auth-link); created %d, %d already had one"
	msgDiscoveryFailed = "reading api_get_authorizer_list failed (%s); the pass resumes at offset %d at %s"
	msgCreateFailed    = "creating the WeChatAuthorizers (and state Secrets) of the page at offset %d failed: %s; " +
		"check the namespace's ResourceQuota, admission policies and the operator's RBAC; the page is read again at %s"
	msgStateNotOurs = "pass %q: api_get_authorizer_list listed %d accounts; %d got no WeChatAuthorizer because a Secret " +
		"named <authorizer>-state is there that the operator did not write (no %s/%s labels, or another owner): " +
		"delete or rename those Secrets, then change spec.authorizers.discover; created %d, %d already had one"

	// discoveryPagePause is the wait between two pages of a pass: the authorizers a page
	// created get their first tokens before the next page adds more.
	discoveryPagePause = time.Second
)

// discoveryAction is what the discovery step does in one reconcile.
type discoveryAction int

const (
	// discoveryIdle: no pass is asked for, or the asked-for pass is complete.
	discoveryIdle discoveryAction = iota
	// discoveryWait: a failed page read is backing off until plan.requeue has passed.
	discoveryWait
	// discoveryRead: read the page at plan.offset (plan.fresh: a new pass begins).
	discoveryRead
)

type discoveryPlan struct {
	action  discoveryAction
	offset  int
	fresh   bool
	requeue time.Duration
}

// decideDiscovery is the discovery decision, a pure function of spec, status and now.
func decideDiscovery(pass string, st *wechatv1alpha1.DiscoveryStatus, now time.Time) discoveryPlan {
	switch {
	case pass == "":
		return discoveryPlan{action: discoveryIdle}
	case st == nil || st.Pass != pass:
		return discoveryPlan{action: discoveryRead, fresh: true}
	case st.CompletedAt != nil:
		return discoveryPlan{action: discoveryIdle}
	case st.RetryAt != nil && now.Before(st.RetryAt.Time):
		return discoveryPlan{action: discoveryWait, requeue: st.RetryAt.Sub(now)}
	}
	return discoveryPlan{action: discoveryRead, offset: int(st.NextOffset)}
}

// stepDiscovery runs one page of a discovery pass, with the token the token step left.
func (r *WeChatComponentReconciler) stepDiscovery(ctx context.Context, run *componentRun) (stepResult, error) {
	c := run.c
	plan := decideDiscovery(c.Spec.Authorizers.Discover, c.Status.Discovery, run.now)
	lister, ok := r.WeChat.(AuthorizerLister)
	if plan.action == discoveryIdle || !ok || !run.codesMayGo {
		return stepResult{requeue: plan.requeue}, nil
	}
	if plan.action == discoveryWait {
		return stepResult{requeue: plan.requeue}, nil
	}
	if plan.fresh {
		c.Status.Discovery = &wechatv1alpha1.DiscoveryStatus{Pass: c.Spec.Authorizers.Discover, StartedAt: timePtr(run.now)}
	}
	st := c.Status.Discovery
	page, err := lister.GetAuthorizerList(ctx, run.state.token.accessToken, c.Spec.AppID, plan.offset, wxapi.MaxAuthorizerListCount)
	if err != nil {
		return r.discoveryFailed(ctx, run, err), nil
	}
	tally, err := r.discoverPage(ctx, c, page.List, run.now)
	if err != nil {
		// A lasting Kubernetes-side refusal backs off like a WeChat error: a plain error
		// would re-read the same page on every queue retry and watch event.
		return r.discoveryCreateFailed(ctx, run, err), nil
	}
	st.Found += int32(len(page.List))
	st.Created += tally.created
	st.Existing += tally.existing
	st.RefreshTokensMissing += tally.missing
	st.StateSecretConflicts += tally.notOurs
	st.NextOffset += int32(len(page.List))
	st.FailedAttempts, st.RetryAt = 0, nil
	if len(page.List) > 0 && int(st.NextOffset) < page.TotalCount {
		setCondition(&c.Status.Conditions, c.Generation, wechatv1alpha1.ConditionDiscovered, metav1.ConditionUnknown,
			wechatv1alpha1.ReasonDiscoveryInProgress, fmt.Sprintf(msgDiscoveryInProgress, st.Found, st.Created))
		// In status, so that no wake-up (a watch event, a retry) reads the next page early.
		st.RetryAt = timePtr(run.now.Add(discoveryPagePause))
		return stepResult{requeue: discoveryPagePause}, nil
	}
	r.discoveryCompleted(c, st, run.now)
	return stepResult{}, nil
}

func (r *WeChatComponentReconciler) discoveryCompleted(c *wechatv1alpha1.WeChatComponent, st *wechatv1alpha1.DiscoveryStatus, now time.Time) {
	st.CompletedAt, st.NextOffset = timePtr(now), 0
	status, reason := metav1.ConditionTrue, wechatv1alpha1.ReasonDiscoveryCompleted
	msg := fmt.Sprintf(msgDiscoveryCompleted, st.Pass, st.Found, st.Created, st.Existing)
	eventType := corev1.EventTypeNormal
	if st.RefreshTokensMissing > 0 {
		status, reason, eventType = metav1.ConditionFalse, wechatv1alpha1.ReasonRefreshTokensMissing, corev1.EventTypeWarning
		msg = fmt.Sprintf(msgDiscoveryMissing, st.Pass, st.Found, st.RefreshTokensMissing, st.Created, st.Existing)
	}
	if st.StateSecretConflicts > 0 {
		status, reason, eventType = metav1.ConditionFalse, wechatv1alpha1.ReasonStateSecretsNotOurs, corev1.EventTypeWarning
		msg = fmt.Sprintf(msgStateNotOurs, st.Pass, st.Found, st.StateSecretConflicts, wechatv1alpha1.LabelManagedBy,
			wechatv1alpha1.LabelAuthorizer, st.Created, st.Existing)
		if st.RefreshTokensMissing > 0 {
			msg += "; " + fmt.Sprintf(msgDiscoveryMissing, st.Pass, st.Found, st.RefreshTokensMissing, st.Created, st.Existing)
		}
	}
	setCondition(&c.Status.Conditions, c.Generation, wechatv1alpha1.ConditionDiscovered, status, reason, msg)
	r.Recorder.Eventf(c, nil, eventType, wechatv1alpha1.EventAuthorizersDiscovered, "Discover", "%s", msg)
}

// discoveryFailed backs the pass off like any failed WeChat call: the next page read is not
// before status.discovery.retryAt, whatever wakes the component meanwhile.
func (r *WeChatComponentReconciler) discoveryFailed(ctx context.Context, run *componentRun, err error) stepResult {
	c, st := run.c, run.c.Status.Discovery
	f := classifyAPIError(err)
	st.FailedAttempts++
	backoff := f.backoff
	if backoff != refresh.ConfigurationError {
		backoff = refresh.APIFailure
	}
	wait := backoff.Scaled(r.BackoffScale).Delay(st.FailedAttempts, r.Random())
	st.RetryAt = timePtr(run.now.Add(wait))
	msg := fmt.Sprintf(msgDiscoveryFailed, f.message, st.NextOffset, st.RetryAt.UTC().Format(time.RFC3339))
	setCondition(&c.Status.Conditions, c.Generation, wechatv1alpha1.ConditionDiscovered, metav1.ConditionFalse, f.reason, msg)
	log.FromContext(ctx).Info("discovery: api_get_authorizer_list failed", "reason", f.reason, "retryIn", wait)
	return stepResult{requeue: st.RetryAt.Sub(run.now)}
}

// discoveryCreateFailed backs the pass off after a page's creations failed in Kubernetes,
// with the same backoff as a failed read: the page is read again at retryAt, not before.
func (r *WeChatComponentReconciler) discoveryCreateFailed(ctx context.Context, run *componentRun, err error) stepResult {
	c, st := run.c, run.c.Status.Discovery
	st.FailedAttempts++
	wait := refresh.APIFailure.Scaled(r.BackoffScale).Delay(st.FailedAttempts, r.Random())
	st.RetryAt = timePtr(run.now.Add(wait))
	msg := fmt.Sprintf(msgCreateFailed, st.NextOffset, err.Error(), st.RetryAt.UTC().Format(time.RFC3339))
	setCondition(&c.Status.Conditions, c.Generation, wechatv1alpha1.ConditionDiscovered, metav1.ConditionFalse,
		wechatv1alpha1.ReasonDiscoveryCreateFailed, msg)
	log.FromContext(ctx).Info("discovery: creating the page's WeChatAuthorizers failed", "error", err.Error(), "retryIn", wait)
	return stepResult{requeue: wait}
}

type discoveryTally struct{ created, existing, missing, notOurs int32 }

// discoverPage creates the WeChatAuthorizers of one page's accounts that have none.
func (r *WeChatComponentReconciler) discoverPage(ctx context.Context, c *wechatv1alpha1.WeChatComponent,
	items []wxapi.AuthorizerListItem, now time.Time) (discoveryTally, error) {
	var tally discoveryTally
	// Only looked up, never written: the cache's objects, not a copy of each per page.
	authorizers := &wechatv1alpha1.WeChatAuthorizerList{}
	if err := r.List(ctx, authorizers, client.InNamespace(c.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return tally, err
	}
	for _, item := range items {
		if wechatv1alpha1.PickAuthorizer(authorizers.Items, c.Name, item.AuthorizerAppID) != nil {
			tally.existing++
			continue
		}
		created, err := r.createDiscovered(ctx, c, item, now)
		switch {
		case errors.Is(err, errStateNotOurs):
			tally.notOurs++
		case apierrors.IsInvalid(err):
			// Not an appid the CRD accepts; nothing a retry changes.
			log.FromContext(ctx).Info("discovery: skipping an account the WeChatAuthorizer schema rejects", "authorizerAppID", item.AuthorizerAppID, "error", err.Error())
		case err != nil:
			return tally, err
		case !created:
			tally.existing++
		case item.RefreshToken == "":
			tally.created++
			tally.missing++
		default:
			tally.created++
		}
	}
	return tally, nil
}

// createDiscovered creates the account's WeChatAuthorizer, its refresh token first: the
// state Secret exists before the authorizer does, so the authorizer's first reconcile finds
// it and never looks the account up in api_get_authorizer_list again. It reports false when
// the name is taken (left as it is).
func (r *WeChatComponentReconciler) createDiscovered(ctx context.Context, c *wechatv1alpha1.WeChatComponent,
	item wxapi.AuthorizerListItem, now time.Time) (bool, error) {
	a := wechatv1alpha1.NewAutoCreatedAuthorizer(c, item.AuthorizerAppID)
	if item.RefreshToken == "" {
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		a.Annotations[wechatv1alpha1.AnnotationRefreshTokenMissing] = now.UTC().Format(time.RFC3339)
	}
	var state *corev1.Secret
	if item.RefreshToken != "" {
		var err error
		if state, err = r.createDiscoveredState(ctx, c, a, item.RefreshToken); err != nil {
			return false, err
		}
	}
	err := r.Create(ctx, a, fieldOwner)
	if apierrors.IsAlreadyExists(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if state != nil {
		r.handStateOver(ctx, c, a, state)
	}
	return true, nil
}

// errStateNotOurs: the account's <name>-state Secret is there and not the operator's; its
// authorizer is not created, so nothing ever reads that Secret's refresh token.
var errStateNotOurs = errors.New("a state Secret the operator did not write is in the way")

// createDiscoveredState creates the state Secret of a discovered account, owned by the
// component until its authorizer exists. A Secret already there that is ours (a pass's
// earlier attempt, or an authorizer deleted and re-created) gets the listed refresh token;
// one that is not ours is left alone (errStateNotOurs).
func (r *WeChatComponentReconciler) createDiscoveredState(ctx context.Context, c *wechatv1alpha1.WeChatComponent,
	a *wechatv1alpha1.WeChatAuthorizer, refreshToken string) (*corev1.Secret, error) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: stateSecretName(a), Namespace: a.Namespace,
			Labels: map[string]string{
				wechatv1alpha1.LabelManagedBy:  wechatv1alpha1.ManagedByValue,
				wechatv1alpha1.LabelAuthorizer: a.Name,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			wechatv1alpha1.SecretKeyRefreshToken: []byte(refreshToken),
			stateKeyAppID:                        []byte(a.Spec.AppID),
		},
	}
	if err := controllerutil.SetControllerReference(c, secret, r.Scheme); err != nil {
		return nil, err
	}
	err := r.Create(ctx, secret, fieldOwner)
	if apierrors.IsAlreadyExists(err) {
		return r.refreshDiscoveredState(ctx, c, a, refreshToken)
	}
	return secret, err
}

// refreshDiscoveredState writes the listed refresh token into an existing state Secret if
// it is ours, with optimistic locking (a conflict is a Go error: the page backs off and is
// read again).
func (r *WeChatComponentReconciler) refreshDiscoveredState(ctx context.Context, c *wechatv1alpha1.WeChatComponent,
	a *wechatv1alpha1.WeChatAuthorizer, refreshToken string) (*corev1.Secret, error) {
	existing := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: stateSecretName(a)}, existing); err != nil {
		return nil, err
	}
	if !discoveredStateOurs(existing, a.Name, c.UID, "") {
		return nil, errStateNotOurs
	}
	if string(existing.Data[wechatv1alpha1.SecretKeyRefreshToken]) == refreshToken && string(existing.Data[stateKeyAppID]) == a.Spec.AppID {
		return existing, nil
	}
	updated := existing.DeepCopy()
	if updated.Data == nil {
		updated.Data = map[string][]byte{}
	}
	updated.Data[wechatv1alpha1.SecretKeyRefreshToken] = []byte(refreshToken)
	updated.Data[stateKeyAppID] = []byte(a.Spec.AppID)
	// Update sends the resourceVersion read above: a concurrent write is a conflict, not lost.
	return updated, r.Update(ctx, updated, fieldOwner)
}

// handStateOver makes the new authorizer the state Secret's controller, so that it goes
// with the authorizer. Only the owner reference changes, with optimistic locking: the
// authorizer's controller may have written a rotated refresh token meanwhile (and adopted
// the Secret doing so), which a conflict leaves in place.
func (r *WeChatComponentReconciler) handStateOver(ctx context.Context, c *wechatv1alpha1.WeChatComponent, a *wechatv1alpha1.WeChatAuthorizer, secret *corev1.Secret) {
	if !metav1.IsControlledBy(secret, c) {
		return
	}
	updated := secret.DeepCopy()
	updated.OwnerReferences = nil
	err := controllerutil.SetControllerReference(a, updated, r.Scheme)
	if err == nil {
		err = r.Update(ctx, updated, fieldOwner)
	}
	if err != nil {
		// The authorizer's controller adopts it on its first state write.
		log.FromContext(ctx).V(1).Info("discovery: state Secret left to its authorizer to adopt", "secret", secret.Name, "error", err.Error())
	}
}
