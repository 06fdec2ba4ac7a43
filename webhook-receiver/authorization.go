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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// Event reasons the receiver emits on a WeChatComponent.
const (
	msgAuthorizationWithoutTarget  = "account %s authorized this platform but no WeChatAuthorizer with spec.appID %s references it; create one (its refresh token is then recovered from WeChat) or set spec.authorizers.autoCreate"
	msgRevokedWithoutAuthorizer    = "account %s revoked its authorization; no WeChatAuthorizer references it"
	msgUnauthorizedConditionReason = "the account revoked its authorization of the platform (unauthorized push at %s); refreshing stopped. A new authorization resumes it"
)

// AuthorizerIndex is the field index IndexAuthorizers adds to the receiver's cache: a
// WeChatAuthorizer's component and appid, "<componentRef.name>/<spec.appID>".
const AuthorizerIndex = "receiver.wechat-operator.dev/component-appid"

func authorizerIndexValue(component, appID string) string { return component + "/" + appID }

// IndexAuthorizers adds AuthorizerIndex to the cache behind Options.Reader (then set
// Options.AuthorizersIndexed). Without it, every message lists every WeChatAuthorizer of the
// namespace, a deep copy of each, to find its account's.
func IndexAuthorizers(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, &wechatv1alpha1.WeChatAuthorizer{}, AuthorizerIndex, authorizerIndexValues)
}

func authorizerIndexValues(obj client.Object) []string {
	a, ok := obj.(*wechatv1alpha1.WeChatAuthorizer)
	if !ok {
		return nil
	}
	return []string{authorizerIndexValue(a.Spec.ComponentRef.Name, a.Spec.AppID)}
}

// findAuthorizer returns the WeChatAuthorizer of componentName for appID, or nil, from the
// cache or, when fresh, from the API server (s.apiReader). From the cache it is a map read
// when WatchAuthorizers feeds one (the informer's own object); else, with
// Options.AuthorizersIndexed, it reads only the candidates, not deep-copied: the result is
// read, never written (writes go through patchAuthorizerStatus, which reads afresh). The
// choice among several is PickAuthorizer's either way.
func (s *Server) findAuthorizer(ctx context.Context, fresh bool, namespace, componentName, appID string) (*wechatv1alpha1.WeChatAuthorizer, error) {
	if m := s.authorizers.Load(); m != nil && !fresh {
		if a, ok := m.find(namespace, componentName, appID); ok {
			return a, nil
		}
	}
	list := &wechatv1alpha1.WeChatAuthorizerList{}
	opts := []client.ListOption{client.InNamespace(namespace)}
	reader := s.apiReader
	if !fresh {
		reader = s.reader
	}
	if s.indexed && !fresh {
		opts = append(opts, client.MatchingFields{AuthorizerIndex: authorizerIndexValue(componentName, appID)}, client.UnsafeDisableDeepCopy)
	}
	if err := reader.List(ctx, list, opts...); err != nil {
		return nil, err
	}
	return wechatv1alpha1.PickAuthorizer(list.Items, componentName, appID), nil
}

// recordAuthorizationCode records the code of a verified authorized / updateauthorized push:
// on the account's WeChatAuthorizer, whose controller exchanges it; else, when the component
// has autoCreate on, in its status.pendingAuthorizationCodes, whose controller exchanges it
// and creates the authorizer. The receiver itself creates nothing: its credentials must not
// be able to make an object that names a Secret or a URL. Without autoCreate an Event says
// what to do. The same code twice is recorded once. It reports whether it wrote.
func (s *Server) recordAuthorizationCode(ctx context.Context, component *wechatv1alpha1.WeChatComponent, appID, code string, expiresAt time.Time) (bool, error) {
	a, err := s.findAuthorizer(ctx, false, component.Namespace, component.Name, appID)
	if err == nil && a == nil {
		// The cache may lag a creation: ask the API server before recording elsewhere.
		a, err = s.findAuthorizer(ctx, true, component.Namespace, component.Name, appID)
	}
	if err != nil {
		return false, err
	}
	now := metav1.NewTime(s.clock.Now().UTC().Truncate(time.Second))
	entry := wechatv1alpha1.AuthorizationCode{Code: code, ExpiresAt: metav1.NewTime(expiresAt.UTC()), ReceivedAt: &now,
		Source: wechatv1alpha1.AuthorizationCodeFromPush}
	if a == nil {
		if !component.Spec.Authorizers.AutoCreate {
			s.event(component, corev1.EventTypeWarning, wechatv1alpha1.EventAuthorizationNotRecorded, msgAuthorizationWithoutTarget, appID, appID)
			return false, nil
		}
		entry.AuthorizerAppID = appID // the manager creates the authorizer and hands it the code
		return s.recordPendingCode(ctx, component, entry)
	}
	return s.patchAuthorizerStatus(ctx, client.ObjectKeyFromObject(a), func(st *wechatv1alpha1.WeChatAuthorizerStatus) bool {
		if st.AuthorizationCode != nil && st.AuthorizationCode.Code == code {
			return false
		}
		st.AuthorizationCode = &entry
		return true
	})
}

// recordRevocation marks the account's WeChatAuthorizer unauthorized. It reports whether it wrote.
func (s *Server) recordRevocation(ctx context.Context, component *wechatv1alpha1.WeChatComponent, appID string, at time.Time) (bool, error) {
	a, err := s.findAuthorizer(ctx, true, component.Namespace, component.Name, appID)
	if err != nil {
		return false, err
	}
	if a == nil {
		s.event(component, corev1.EventTypeNormal, wechatv1alpha1.EventAuthorizationRevoked, msgRevokedWithoutAuthorizer, appID)
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
