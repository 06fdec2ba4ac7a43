/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// Codes that reached the redirect page are exchanged here, by the component controller,
// because only the exchange tells which account they belong to.

const (
	msgRedirectWithoutAuthorizer = "account %s authorized this platform but no WeChatAuthorizer with spec.appID %s references it; " +
		"create one (its refresh token is then recovered from WeChat) or set spec.authorizers.autoCreate"
)

// CodeExchanger is what exchanging a redirect code needs of WeChat.
type CodeExchanger interface {
	QueryAuth(ctx context.Context, componentToken, appID, authCode string) (wxapi.AuthorizationInfo, error)
}

// exchangePendingCodes exchanges the codes in status.pendingAuthorizationCodes and keeps the
// tokens in the account's WeChatAuthorizer state Secret, where its controller picks them up.
// A code that fails for a reason worth retrying stays pending and backs off; so does a code
// over the component's budget (CodeBudget). It returns how soon to come back for them (0:
// nothing waits).
func (r *WeChatComponentReconciler) exchangePendingCodes(ctx context.Context, c *wechatv1alpha1.WeChatComponent, componentToken string) time.Duration {
	exchanger, ok := r.WeChat.(CodeExchanger)
	if !ok || len(c.Status.PendingAuthorizationCodes) == 0 {
		return 0
	}
	logger := log.FromContext(ctx)
	authorizers := &wechatv1alpha1.WeChatAuthorizerList{}
	if err := r.List(ctx, authorizers, client.InNamespace(c.Namespace)); err != nil {
		logger.Info("listing authorizers failed; pending authorization codes wait", "error", err.Error())
		return 0
	}
	now := r.Clock.Now()
	key := client.ObjectKeyFromObject(c)
	var keep []wechatv1alpha1.AuthorizationCode
	var retry, throttled time.Duration
	for _, pending := range c.Status.PendingAuthorizationCodes {
		if !now.Before(pending.ExpiresAt.Time) || recordedOnAuthorizer(authorizers.Items, c.Name, pending.Code) {
			continue // expired, or the push put it on its authorizer, whose controller exchanges it
		}
		if pending.AuthorizerAppID != "" {
			// Pushed for an account that had no WeChatAuthorizer when the receiver looked: if
			// it has one now, its controller exchanges the code as usual.
			handed, err := r.handToAuthorizer(ctx, c, authorizers.Items, pending)
			if err != nil {
				logger.Info("handing an authorization code to its authorizer failed; it stays pending", "error", err.Error())
				keep = append(keep, pending)
			}
			if handed || err != nil {
				continue
			}
			// Otherwise exchange it here, like a redirect code: whoever holds the receiver's
			// credentials can write any authorizerAppID, so an authorizer is created only for
			// the account api_query_auth names.
		}
		if allowed, wait, overBudget := r.budget().allow(key, pending.Code); !allowed {
			if overBudget {
				throttled = firstRetry(throttled, wait)
			}
			retry = firstRetry(retry, wait)
			keep = append(keep, pending)
			continue
		}
		info, err := exchanger.QueryAuth(ctx, componentToken, c.Spec.AppID, pending.Code)
		switch {
		case wxapi.IsAuthCodeInvalid(err):
			r.budget().succeeded(pending.Code)
			continue // already exchanged through the push
		case err != nil:
			wait := r.budget().failed(pending.Code, pending.ExpiresAt.Time)
			logger.Info("exchanging an authorization code failed; it stays pending", "error", err.Error(), "retryIn", wait)
			retry = firstRetry(retry, wait)
			keep = append(keep, pending)
			continue
		}
		r.budget().succeeded(pending.Code)
		if err := r.keepAuthorization(ctx, c, authorizers.Items, info, now); err != nil {
			logger.Info("keeping an authorization failed; the refresh token will be recovered from WeChat", "error", err.Error())
		}
	}
	c.Status.PendingAuthorizationCodes = keep
	if throttled > 0 {
		r.budget().throttledNotice(ctx, r.Recorder, c, key, throttled)
	}
	return retry
}

func recordedOnAuthorizer(items []wechatv1alpha1.WeChatAuthorizer, component, code string) bool {
	for _, a := range items {
		if a.Spec.ComponentRef.Name == component && a.Status.AuthorizationCode != nil && a.Status.AuthorizationCode.Code == code {
			return true
		}
	}
	return false
}

// keepAuthorization writes the tokens of an exchanged code into the state Secret of the
// account's WeChatAuthorizer, creating the authorizer if the component says so.
func (r *WeChatComponentReconciler) keepAuthorization(ctx context.Context, c *wechatv1alpha1.WeChatComponent,
	items []wechatv1alpha1.WeChatAuthorizer, info wxapi.AuthorizationInfo, now time.Time) error {
	target := wechatv1alpha1.PickAuthorizer(items, c.Name, info.AuthorizerAppID)
	if target == nil {
		if !c.Spec.Authorizers.AutoCreate {
			r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, wechatv1alpha1.EventAuthorizationNotRecorded, "ExchangeCode",
				msgRedirectWithoutAuthorizer, info.AuthorizerAppID, info.AuthorizerAppID)
			return nil
		}
		created, err := r.createAuthorizer(ctx, c, info.AuthorizerAppID)
		if err != nil {
			return err
		}
		target = created
	}
	stateSecret, err := getManagedSecret(ctx, r.APIReader, target.Namespace, stateSecretName(target))
	if err != nil {
		return err
	}
	token := newIssuedToken(info.AccessToken, info.AuthorizerAppID, now, info.ExpiresIn)
	if _, err = writeState(ctx, r.Client, r.APIReader, target, stateSecret, authorizerState{refreshToken: info.RefreshToken, token: token}); err != nil {
		return err
	}
	// As the authorizer's own exchange does: say when the account authorized (a revoked one
	// resumes on it).
	patch := client.MergeFrom(target.DeepCopy())
	authorizedAt := metav1.NewTime(now.UTC().Truncate(time.Second))
	target.Status.AuthorizedAt = &authorizedAt
	if err := r.Status().Patch(ctx, target, patch, fieldOwner); err != nil {
		return err
	}
	r.Recorder.Eventf(target, nil, corev1.EventTypeNormal, wechatv1alpha1.EventAuthorized, "ExchangeCode",
		"the account authorized the platform; tokens issued, refresh token kept in Secret %q", stateSecretName(target))
	return nil
}

// handToAuthorizer puts a pushed code on its account's WeChatAuthorizer, if one exists (its
// controller checks the code's account in the exchange). It creates nothing: the appid is
// not verified. It reports whether it handed the code over.
func (r *WeChatComponentReconciler) handToAuthorizer(ctx context.Context, c *wechatv1alpha1.WeChatComponent,
	items []wechatv1alpha1.WeChatAuthorizer, code wechatv1alpha1.AuthorizationCode) (bool, error) {
	target := wechatv1alpha1.PickAuthorizer(items, c.Name, code.AuthorizerAppID)
	if target == nil {
		return false, nil
	}
	patch := client.MergeFrom(target.DeepCopy())
	target.Status.AuthorizationCode = &code
	return true, r.Status().Patch(ctx, target, patch, fieldOwner)
}

// createAuthorizer creates the WeChatAuthorizer autoCreate asks for. Only the manager creates
// authorizers: the internet-facing receiver may not.
func (r *WeChatComponentReconciler) createAuthorizer(ctx context.Context, c *wechatv1alpha1.WeChatComponent, appID string) (*wechatv1alpha1.WeChatAuthorizer, error) {
	a := wechatv1alpha1.NewAutoCreatedAuthorizer(c, appID)
	err := r.Create(ctx, a, fieldOwner)
	if apierrors.IsAlreadyExists(err) {
		err = r.Get(ctx, client.ObjectKeyFromObject(a), a)
	} else if err == nil {
		r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, wechatv1alpha1.EventAuthorizerCreated, "ExchangeCode",
			"created WeChatAuthorizer %s for account %s", a.Name, appID)
	}
	return a, err
}
