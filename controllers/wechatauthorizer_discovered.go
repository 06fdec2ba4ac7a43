/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"
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
// discovery pass (or autoCreate) creates it just before the authorizer, and the authorizer's
// create event may come before the Secret's. One GET here saves a page-through of
// api_get_authorizer_list. Only for an authorizer the operator created, and only from a
// Secret the operator wrote for it: anything else named <name>-state is not ours to read.
func (r *WeChatAuthorizerReconciler) discoveredState(ctx context.Context, run *authorizerRun) (bool, error) {
	a := run.a
	if run.stateSecret != nil || run.component == nil || !operatorCreated(a) {
		return false, nil
	}
	secret, err := getManagedSecret(ctx, r.APIReader, a.Namespace, stateSecretName(a))
	if err != nil || secret == nil {
		return false, err
	}
	if !discoveredStateOurs(secret, a.Name, run.component.UID, a.UID) {
		log.FromContext(ctx).Info("ignoring a state Secret the operator did not write", "secret", secret.Name)
		return false, nil
	}
	st := readState(secret, a.Spec.AppID)
	if st.refreshToken == "" {
		return false, nil
	}
	run.stateSecret, run.state.refreshToken = secret, st.refreshToken
	return true, nil
}

// operatorCreated: the authorizer was made by a discovery pass or autoCreate
// (NewAutoCreatedAuthorizer labels it with the component it belongs to).
func operatorCreated(a *wechatv1alpha1.WeChatAuthorizer) bool {
	return a.Labels[wechatv1alpha1.LabelManagedBy] == wechatv1alpha1.ManagedByValue &&
		a.Labels[wechatv1alpha1.LabelComponent] == a.Spec.ComponentRef.Name
}

// firstTokenReportedByCreator: the first token of an authorizer the operator created records
// no TokenIssued Event, for what created it has reported it already: a discovery pass with one
// AuthorizersDiscovered Event on the component, autoCreate with AuthorizerCreated and
// Authorized, kubectl wechat import with RefreshTokenImported and its own report. An Event per
// account would make an import of 100,000 accounts 100,000 more API writes, which the API
// server keeps an hour and client-go's recorder holds in memory for 6–12 minutes. The Ready
// condition says TokenIssued either way.
func firstTokenReportedByCreator(a *wechatv1alpha1.WeChatAuthorizer) bool {
	return operatorCreated(a) && a.Status.LastRefreshTime == nil
}

// stateAdoptable: a state Secret the operator wrote for an earlier WeChatAuthorizer of this
// name, or a discovery pass's not handed over yet, which writeState may take over. A Secret
// someone else made (other labels, another controller) is never written.
func stateAdoptable(secret *corev1.Secret, a *wechatv1alpha1.WeChatAuthorizer) bool {
	ref := metav1.GetControllerOf(secret)
	if ref == nil || ref.APIVersion != apiVersion ||
		(ref.Kind == wechatv1alpha1.KindWeChatComponent && ref.Name != a.Spec.ComponentRef.Name) {
		return false
	}
	return discoveredStateOurs(secret, a.Name, ref.UID, "")
}

// discoveredStateOurs: the Secret carries the labels the operator gives a state Secret, and
// its controller is the component (a pass's Secret not handed over yet) or a WeChatAuthorizer
// of this name (authorizerUID, or any earlier one when authorizerUID is empty).
func discoveredStateOurs(secret *corev1.Secret, authorizerName string, componentUID, authorizerUID types.UID) bool {
	if secret.Labels[wechatv1alpha1.LabelManagedBy] != wechatv1alpha1.ManagedByValue ||
		secret.Labels[wechatv1alpha1.LabelAuthorizer] != authorizerName {
		return false
	}
	ref := metav1.GetControllerOf(secret)
	switch {
	case ref == nil:
		return false
	case ref.UID == componentUID && ref.Kind == wechatv1alpha1.KindWeChatComponent:
		return true
	case ref.Kind != wechatv1alpha1.KindWeChatAuthorizer || ref.Name != authorizerName ||
		ref.APIVersion != apiVersion:
		return false
	}
	return authorizerUID == "" || ref.UID == authorizerUID
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
