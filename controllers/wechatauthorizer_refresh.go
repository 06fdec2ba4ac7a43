/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// findRefreshToken fills run.state.refreshToken from spec.refreshTokenSecretRef or, failing
// that, from api_get_authorizer_list.
func (r *WeChatAuthorizerReconciler) findRefreshToken(ctx context.Context, run *authorizerRun) error {
	a := run.a
	if ref := a.Spec.RefreshTokenSecretRef; ref != nil {
		key := keyOr(ref.Key, wechatv1alpha1.DefaultRefreshTokenKey)
		secret := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: a.Namespace, Name: ref.Name}, secret); err != nil || len(secret.Data[key]) == 0 {
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			return configurationFailure(wechatv1alpha1.ReasonRefreshTokenSecretInvalid, fmt.Sprintf(msgImportInvalid, ref.Name, key))
		}
		// The value goes to WeChat and into the state Secret: only from a Secret released to us.
		if !usableBy(secret, wechatv1alpha1.KindWeChatAuthorizer, a.Name) {
			return configurationFailure(wechatv1alpha1.ReasonSecretNotOptedIn,
				notOptedIn("spec.refreshTokenSecretRef", secret, wechatv1alpha1.KindWeChatAuthorizer, a.Name))
		}
		run.state.refreshToken = string(secret.Data[key])
		if err := r.saveState(ctx, run); err != nil {
			return err
		}
		r.Recorder.Eventf(a, nil, corev1.EventTypeNormal, wechatv1alpha1.EventRefreshTokenImported, "Import", msgRefreshTokenImported, ref.Name)
		return nil
	}
	// A discovery pass's state Secret or its word that there is no token (wechatauthorizer_discovered.go).
	if found, err := r.discoveredState(ctx, run); err != nil || found || discoveredWithoutRefreshToken(a) {
		return err
	}
	return r.recoverRefreshToken(ctx, run, "")
}

// recoverRefreshToken looks the account up in api_get_authorizer_list and keeps its refresh
// token if it differs from rejected.
func (r *WeChatAuthorizerReconciler) recoverRefreshToken(ctx context.Context, run *authorizerRun, rejected string) error {
	a := run.a
	item, found, err := r.directory.lookup(ctx, r.WeChat, r.Clock.Now(), run.componentToken, run.component.Spec.AppID, a.Spec.AppID, rejected)
	if err != nil {
		return r.reportToComponent(ctx, run, err)
	}
	if !found || item.RefreshToken == "" || item.RefreshToken == rejected {
		run.state.refreshToken = ""
		return nil
	}
	run.state.refreshToken = item.RefreshToken
	if err := r.saveState(ctx, run); err != nil {
		return err
	}
	// A rejected refresh token replaced is news. An authorizer applied without one (GitOps)
	// finds it here as a matter of course: its TokenIssued Event follows, and one Event per
	// account is what an import of 10,000 accounts should cost.
	if rejected != "" {
		r.Recorder.Eventf(a, nil, corev1.EventTypeNormal, wechatv1alpha1.EventRefreshTokenRecovered, "Recover", msgRefreshTokenRecovered)
	}
	return nil
}

// refreshToken calls api_authorizer_token, persisting a rotated refresh token before the
// new access token is served. A rejected refresh token (61023) is recovered from
// api_get_authorizer_list once.
func (r *WeChatAuthorizerReconciler) refreshToken(ctx context.Context, run *authorizerRun, now time.Time) (*issuedToken, error) {
	a := run.a
	for attempt := 0; ; attempt++ {
		answer, err := r.WeChat.AuthorizerToken(ctx, run.componentToken, run.component.Spec.AppID, a.Spec.AppID, run.state.refreshToken)
		if err != nil {
			if wxapi.IsRefreshTokenInvalid(err) && attempt == 0 {
				if rerr := r.recoverRefreshToken(ctx, run, run.state.refreshToken); rerr != nil {
					return nil, rerr
				}
				if run.state.refreshToken != "" {
					continue
				}
				return nil, &failure{reason: wechatv1alpha1.ReasonRefreshTokenInvalid, backoff: refresh.ConfigurationError,
					message: "WeChat rejected the refresh token (61023) and api_get_authorizer_list has no other; the account must authorize the platform again"}
			}
			return nil, r.reportToComponent(ctx, run, err)
		}
		token := newIssuedToken(answer.AccessToken, a.Spec.AppID, now, answer.ExpiresIn)
		rotated := answer.RefreshToken != "" && answer.RefreshToken != run.state.refreshToken
		if rotated {
			run.state.refreshToken = answer.RefreshToken
		}
		run.state.token = token
		// A new refresh token is persisted before anything else. An unchanged one is safe
		// already, so the state Secret is not rewritten for the access token alone: a crash
		// before the token Secret write then costs one more refresh, nothing else.
		if rotated || run.stateSecret == nil {
			if err := r.saveState(ctx, run); err != nil {
				return nil, err
			}
		}
		if err := r.writeTokenSecret(ctx, run, token); err != nil {
			return nil, err
		}
		return token, nil
	}
}
