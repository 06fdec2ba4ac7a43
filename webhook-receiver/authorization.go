/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// Event reasons the receiver emits on a WeChatComponent.
const (
	EventAuthorizerCreated         = "AuthorizerCreated"
	EventAuthorizationNotRecorded  = "AuthorizationNotRecorded"
	EventAuthorizationRevoked      = "AuthorizationRevoked"
	msgAuthorizationWithoutTarget  = "account %s authorized this platform but no WeChatAuthorizer with spec.appID %s references it; create one (its refresh token is then recovered from WeChat) or set spec.authorizers.autoCreate"
	msgAuthorizerCreated           = "created WeChatAuthorizer %s for account %s"
	msgRevokedWithoutAuthorizer    = "account %s revoked its authorization; no WeChatAuthorizer references it"
	msgUnauthorizedConditionReason = "the account revoked its authorization of the platform (unauthorized push at %s); refreshing stopped. A new authorization resumes it"
)

// findAuthorizer returns the WeChatAuthorizer of componentName for appID, or nil.
func (s *Server) findAuthorizer(ctx context.Context, reader client.Reader, namespace, componentName, appID string) (*wechatv1alpha1.WeChatAuthorizer, error) {
	list := &wechatv1alpha1.WeChatAuthorizerList{}
	if err := reader.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	return wechatv1alpha1.PickAuthorizer(list.Items, componentName, appID), nil
}

// authorizerFor finds the account's WeChatAuthorizer, creating it when the component asks
// for that. It returns nil (and emits an Event) when there is none to record on.
func (s *Server) authorizerFor(ctx context.Context, component *wechatv1alpha1.WeChatComponent, appID string) (*wechatv1alpha1.WeChatAuthorizer, error) {
	a, err := s.findAuthorizer(ctx, s.reader, component.Namespace, component.Name, appID)
	if err != nil || a != nil {
		return a, err
	}
	// The cache may lag a creation by another replica: ask the API server before creating.
	if a, err = s.findAuthorizer(ctx, s.apiReader, component.Namespace, component.Name, appID); err != nil || a != nil {
		return a, err
	}
	if !component.Spec.Authorizers.AutoCreate {
		s.event(component, corev1.EventTypeWarning, EventAuthorizationNotRecorded, msgAuthorizationWithoutTarget, appID, appID)
		return nil, nil
	}
	a = wechatv1alpha1.NewAutoCreatedAuthorizer(component, appID)
	err = s.client.Create(ctx, a, client.FieldOwner(FieldManager))
	if apierrors.IsAlreadyExists(err) {
		existing := &wechatv1alpha1.WeChatAuthorizer{}
		err = s.apiReader.Get(ctx, client.ObjectKeyFromObject(a), existing)
		return existing, err
	}
	if err != nil {
		return nil, err
	}
	s.event(component, corev1.EventTypeNormal, EventAuthorizerCreated, msgAuthorizerCreated, a.Name, appID)
	return a, nil
}

// recordAuthorizationCode puts a pending authorization code on the account's
// WeChatAuthorizer. The same code twice is recorded once. It reports whether it wrote.
func (s *Server) recordAuthorizationCode(ctx context.Context, component *wechatv1alpha1.WeChatComponent, appID, code string, expiresAt time.Time) (bool, error) {
	a, err := s.authorizerFor(ctx, component, appID)
	if err != nil || a == nil {
		return false, err
	}
	return s.patchAuthorizerStatus(ctx, client.ObjectKeyFromObject(a), func(st *wechatv1alpha1.WeChatAuthorizerStatus) bool {
		if st.AuthorizationCode != nil && st.AuthorizationCode.Code == code {
			return false
		}
		now := metav1.NewTime(s.clock.Now().UTC().Truncate(time.Second))
		st.AuthorizationCode = &wechatv1alpha1.AuthorizationCode{
			Code: code, ExpiresAt: metav1.NewTime(expiresAt.UTC()), ReceivedAt: &now,
		}
		return true
	})
}

// recordRevocation marks the account's WeChatAuthorizer unauthorized. It reports whether it wrote.
func (s *Server) recordRevocation(ctx context.Context, component *wechatv1alpha1.WeChatComponent, appID string, at time.Time) (bool, error) {
	a, err := s.findAuthorizer(ctx, s.apiReader, component.Namespace, component.Name, appID)
	if err != nil {
		return false, err
	}
	if a == nil {
		s.event(component, corev1.EventTypeNormal, EventAuthorizationRevoked, msgRevokedWithoutAuthorizer, appID)
		return false, nil
	}
	revokedAt := metav1.NewTime(at.UTC())
	return s.patchAuthorizerStatus(ctx, client.ObjectKeyFromObject(a), func(st *wechatv1alpha1.WeChatAuthorizerStatus) bool {
		if st.UnauthorizedAt != nil && !revokedAt.After(st.UnauthorizedAt.Time) {
			return false
		}
		st.UnauthorizedAt = &revokedAt
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: wechatv1alpha1.ConditionAuthorized, Status: metav1.ConditionFalse,
			Reason:  wechatv1alpha1.ReasonUnauthorized,
			Message: fmt.Sprintf(msgUnauthorizedConditionReason, revokedAt.Format(time.RFC3339)),
		})
		return true
	})
}

// patchAuthorizerStatus applies change to a fresh copy of an authorizer's status and writes it.
func (s *Server) patchAuthorizerStatus(ctx context.Context, key types.NamespacedName, change func(*wechatv1alpha1.WeChatAuthorizerStatus) bool) (bool, error) {
	return patchStatus(ctx, s, key, newAuthorizer, func(a *wechatv1alpha1.WeChatAuthorizer) bool { return change(&a.Status) })
}

func (s *Server) event(obj client.Object, eventType, reason, format string, args ...any) {
	if s.recorder != nil {
		s.recorder.Eventf(obj, nil, eventType, reason, "Receive", format, args...)
	}
}
