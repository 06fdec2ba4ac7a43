/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// What a WeChatAuthorizer created by a discovery pass (wechatcomponent_discovery.go) finds.

const msgRefreshTokenMissing = "the discovery pass of WeChatComponent %q found account %s in api_get_authorizer_list without a refresh token " +
	"(annotation %s); import it (kubectl wechat import, or spec.refreshTokenSecretRef) or have the account authorize again " +
	"(kubectl wechat auth-link %s -n %s); the list is not read again for it while the annotation is there"

// discoveredWithoutRefreshToken reports an authorizer a discovery pass created without a
// refresh token, and nothing imported since. Its controller waits instead of reading
// api_get_authorizer_list, which would only say the same again, over and over.
func discoveredWithoutRefreshToken(a *wechatv1alpha1.WeChatAuthorizer) bool {
	return a.Spec.RefreshTokenSecretRef == nil && a.Annotations[wechatv1alpha1.AnnotationRefreshTokenMissing] != ""
}

// discoveredState reads the state Secret from the API server when the cache has none: a
// discovery pass creates it just before the authorizer, and the authorizer's create event
// may come before the Secret's. One GET here saves a page-through of api_get_authorizer_list.
func (r *WeChatAuthorizerReconciler) discoveredState(ctx context.Context, run *authorizerRun) (bool, error) {
	if run.stateSecret != nil {
		return false, nil
	}
	secret, err := getManagedSecret(ctx, r.APIReader, run.a.Namespace, stateSecretName(run.a))
	if err != nil || secret == nil {
		return false, err
	}
	st := readState(secret, run.a.Spec.AppID)
	if st.refreshToken == "" {
		return false, nil
	}
	run.stateSecret, run.state.refreshToken = secret, st.refreshToken
	return true, nil
}

// refreshTokenMissing waits, without a requeue: an authorization code, spec.refreshTokenSecretRef
// or the annotation's removal wakes the authorizer.
func (r *WeChatAuthorizerReconciler) refreshTokenMissing(run *authorizerRun) (reconcile.Result, error) {
	a := run.a
	msg := fmt.Sprintf(msgRefreshTokenMissing, a.Spec.ComponentRef.Name, a.Spec.AppID, wechatv1alpha1.AnnotationRefreshTokenMissing,
		a.Spec.ComponentRef.Name, a.Namespace)
	run.authorized = &metav1.Condition{Status: metav1.ConditionFalse, Reason: wechatv1alpha1.ReasonRefreshTokenMissing, Message: msg}
	run.waiting, run.waitingMsg = wechatv1alpha1.ReasonRefreshTokenMissing, msg
	return reconcile.Result{}, nil
}
