/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// How both kinds turn a reconcile's token and failure into status: the token fields
// (wechatv1alpha1.TokenStatus), the Ready and Stalled conditions, and the token Events.

// recordToken puts the served token and its refresh time into status; a nil token and a
// zero refresh time leave the fields as they are.
func recordToken(s *wechatv1alpha1.TokenStatus, secretName string, token *issuedToken, refreshAt time.Time) {
	if token != nil {
		s.TokenSecretName = secretName
		s.ExpiresAt = timePtr(token.expiresAt)
		s.LastRefreshTime = timePtr(token.issuedAt)
	}
	if !refreshAt.IsZero() {
		s.RefreshAt = timePtr(refreshAt)
	}
}

// setReady sets Ready: True while the Secret serves a valid token, whatever else fails.
func setReady(conds *[]metav1.Condition, generation int64, now time.Time, token *issuedToken, refreshAt time.Time,
	f *failure, secretName, waitingReason, waitingMsg string) {
	valid := token.validAt(now)
	switch {
	case valid && f == nil:
		setCondition(conds, generation, wechatv1alpha1.ConditionReady, metav1.ConditionTrue, wechatv1alpha1.ReasonTokenIssued,
			fmt.Sprintf(msgTokenIssued, secretName, token.expiresAt.UTC().Format(time.RFC3339), refreshAt.UTC().Format(time.RFC3339)))
	case valid:
		setCondition(conds, generation, wechatv1alpha1.ConditionReady, metav1.ConditionTrue, f.reason,
			fmt.Sprintf(msgTokenStillValid, f.message, secretName, token.expiresAt.UTC().Format(time.RFC3339)))
	case f != nil:
		setCondition(conds, generation, wechatv1alpha1.ConditionReady, metav1.ConditionFalse, f.reason, fmt.Sprintf(msgNoToken, f.message))
	case waitingReason != "" && waitingReason != wechatv1alpha1.ReasonTicketValid:
		setCondition(conds, generation, wechatv1alpha1.ConditionReady, metav1.ConditionFalse, waitingReason, fmt.Sprintf(msgNoToken, waitingMsg))
	default:
		setCondition(conds, generation, wechatv1alpha1.ConditionReady, metav1.ConditionFalse, wechatv1alpha1.ReasonTokenExpired,
			fmt.Sprintf(msgNoToken, "the token expired"))
	}
}

func setCondition(conds *[]metav1.Condition, generation int64, condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: condType, Status: status, Reason: reason, Message: message, ObservedGeneration: generation,
	})
}

// removeCondition removes condType from conds if it is there: meta.RemoveStatusCondition
// copies the conditions even when there is nothing to remove, and a reconcile removes
// several that are rarely there.
func removeCondition(conds *[]metav1.Condition, condType string) {
	if meta.FindStatusCondition(*conds, condType) != nil {
		meta.RemoveStatusCondition(conds, condType)
	}
}

func timePtr(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

// recordTokenEvent records a first token, and a refresh that ends a run of failures. A
// routine refresh records none: at 10,000 authorizers that would be 10,000 Events every two
// hours, a quarter of the operator's API writes, saying what status.lastRefreshTime and the
// metrics already say.
func recordTokenEvent(recorder events.EventRecorder, obj runtime.Object, what string, refreshed bool, failedBefore int32, token *issuedToken) {
	switch {
	case !refreshed:
		recorder.Eventf(obj, nil, corev1.EventTypeNormal, wechatv1alpha1.EventTokenIssued, "Refresh", "%s issued, valid until %s",
			what, token.expiresAt.UTC().Format(time.RFC3339))
	case failedBefore > 0:
		recorder.Eventf(obj, nil, corev1.EventTypeNormal, wechatv1alpha1.EventTokenRefreshed, "Refresh", "%s refreshed after %d failed attempts, valid until %s",
			what, failedBefore, token.expiresAt.UTC().Format(time.RFC3339))
	}
}

// keepBackedOffReady leaves Ready as the failure being backed off left it, unless the token
// it still called valid has expired meanwhile.
func keepBackedOffReady(conds *[]metav1.Condition, generation int64, now time.Time, token *issuedToken, reason string, retryAt time.Time) {
	ready := meta.FindStatusCondition(*conds, wechatv1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue || token.validAt(now) {
		return
	}
	setCondition(conds, generation, wechatv1alpha1.ConditionReady, metav1.ConditionFalse, reason,
		fmt.Sprintf(msgNoToken, fmt.Sprintf(msgRetryAt, reason, retryAt.UTC().Format(time.RFC3339))))
}

// setStalled sets Stalled while a failure needs a human, and removes it otherwise.
func setStalled(conds *[]metav1.Condition, generation int64, f *failure) {
	if !f.needsHuman() {
		removeCondition(conds, wechatv1alpha1.ConditionStalled)
		return
	}
	setCondition(conds, generation, wechatv1alpha1.ConditionStalled, metav1.ConditionTrue, f.reason, f.message)
}
