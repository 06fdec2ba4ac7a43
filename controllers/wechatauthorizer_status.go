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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// updateInfo refreshes status.info daily; a failure is logged, not fatal.
func (r *WeChatAuthorizerReconciler) updateInfo(ctx context.Context, run *authorizerRun, now time.Time) {
	a := run.a
	if !infoDue(a.Status.Info, now) {
		return
	}
	info, err := r.WeChat.GetAuthorizerInfo(ctx, run.componentToken, run.component.Spec.AppID, a.Spec.AppID)
	if err != nil {
		log.FromContext(ctx).Info("api_get_authorizer_info failed; keeping the previous info", "error", err.Error())
		_ = r.reportToComponent(ctx, run, err) // the info is optional: no failure of the authorizer's own
		return
	}
	a.Status.Info = authorizerInfoStatus(info, now)
}

// fail records a failure and backs off (failureRecorder). status.refreshAt says when the
// next attempt is; with a token still valid, a wake-up before then finds nothing due
// (keptRefreshTime keeps it), so WeChat is not called.
func (r *WeChatAuthorizerReconciler) fail(ctx context.Context, run *authorizerRun, err error) (reconcile.Result, error) {
	var f *failure
	if !errors.As(err, &f) {
		return reconcile.Result{}, err
	}
	run.failure = f
	wait, retryAt := r.failures().record(ctx, run.a, &run.a.Status.TokenStatus, f)
	if !retryAt.IsZero() {
		run.refreshAt = retryAt
	}
	return reconcile.Result{RequeueAfter: wait}, nil
}

func (r *WeChatAuthorizerReconciler) failures() failureRecorder {
	return failureRecorder{recorder: r.Recorder, clock: r.Clock, random: r.Random, backoffScale: r.BackoffScale, what: "authorizer"}
}

// recordStatus turns the run into conditions and status fields.
func (r *WeChatAuthorizerReconciler) recordStatus(run *authorizerRun) {
	a := run.a
	now := r.Clock.Now()
	s := &a.Status
	s.ObservedGeneration = a.Generation
	r.recordTickets(run, now)
	setStalled(&s.Conditions, a.Generation, run.failure)
	r.recordAccountSettings(run)
	if run.authorized != nil {
		c := *run.authorized
		setCondition(&s.Conditions, a.Generation, wechatv1alpha1.ConditionAuthorized, c.Status, c.Reason, c.Message)
	}
	token := run.served
	recordToken(&s.TokenStatus, authorizerTokenSecretName(a), token, run.refreshAt)
	if token == nil && run.waiting == wechatv1alpha1.ReasonUnauthorized {
		s.ExpiresAt = nil
	}
	if run.waiting == wechatv1alpha1.ReasonUnauthorized {
		setCondition(&s.Conditions, a.Generation, wechatv1alpha1.ConditionReady, metav1.ConditionFalse, run.waiting, run.waitingMsg)
		return
	}
	f := run.failure
	if f == nil && run.waiting != "" {
		f = &failure{reason: run.waiting, message: run.waitingMsg}
	}
	if token.validAt(now) && f == nil {
		setCondition(&s.Conditions, a.Generation, wechatv1alpha1.ConditionReady, metav1.ConditionTrue, wechatv1alpha1.ReasonTokenIssued,
			fmt.Sprintf(msgAuthorizerTokenIssued, s.TokenSecretName, token.expiresAt.UTC().Format(time.RFC3339), run.refreshAt.UTC().Format(time.RFC3339)))
		return
	}
	setReady(&s.Conditions, a.Generation, now, token, run.refreshAt, f, s.TokenSecretName, "", "")
}

func authorizerInfoStatus(info wxapi.AuthorizerInfo, now time.Time) *wechatv1alpha1.AuthorizerInfo {
	serviceType, verifyType := int32(info.ServiceType), int32(info.VerifyType)
	funcInfo := make([]int32, 0, len(info.FuncInfo))
	for _, id := range info.FuncInfo {
		funcInfo = append(funcInfo, int32(id))
	}
	b := info.BusinessInfo
	return &wechatv1alpha1.AuthorizerInfo{
		NickName: info.NickName, HeadImg: info.HeadImg, ServiceType: &serviceType, VerifyType: &verifyType,
		UserName: info.UserName, PrincipalName: info.PrincipalName, Alias: info.Alias, QRCodeURL: info.QRCodeURL,
		Signature: info.Signature, MiniProgram: info.MiniProgram,
		BusinessInfo: &wechatv1alpha1.BusinessInfo{
			OpenStore: b.OpenStore == 1, OpenScan: b.OpenScan == 1, OpenPay: b.OpenPay == 1,
			OpenCard: b.OpenCard == 1, OpenShake: b.OpenShake == 1,
		},
		FuncInfo:  funcInfo,
		UpdatedAt: timePtr(now),
	}
}

func authorizerTokenSecretName(a *wechatv1alpha1.WeChatAuthorizer) string {
	if a.Spec.TokenSecret.Name != "" {
		return a.Spec.TokenSecret.Name
	}
	return a.Name + "-token"
}

func authorizerLabels(a *wechatv1alpha1.WeChatAuthorizer) map[string]string {
	return shardLabels(a, map[string]string{wechatv1alpha1.LabelComponent: a.Spec.ComponentRef.Name, wechatv1alpha1.LabelAuthorizer: a.Name})
}

func (r *WeChatAuthorizerReconciler) tokenSecrets() *tokenSecretWriter {
	return &tokenSecretWriter{client: r.Client, reader: r.APIReader, scheme: r.Scheme}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
