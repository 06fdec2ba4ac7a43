/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// The manager's cache holds an authorizer's token Secret as a view without its data when the
// data says nothing its annotations do not: the operator writes the token's expiry and a hash
// of it beside the token (ownedMetadata), and the view keeps those, the labels, the owner and
// the appid. A reconcile that serves the token then reads no Secret, and the cache holds no
// access tokens (~600 B each). Each write still carries the token: a refresh writes the one
// WeChat just issued; the rare write that keeps the served token (a changed template) reads
// the Secret first. A token Secret with more (API tickets, keys someone added) or whose
// annotations do not match its data is cached whole.

// tokenViewTypePrefix starts a view's Secret type; the appid of the token follows. The API
// server refuses to change a Secret's type, so a write of a view as it is fails instead of
// emptying the Secret; ensure, the one writer of token Secrets, writes what it stands for.
const tokenViewTypePrefix = "platform.wechat-operator.dev/cached-token-view/"

// apiVersion is the custom resources' apiVersion, built once: the transform compares it for
// every Secret the cache receives.
var apiVersion = wechatv1alpha1.GroupVersion.String()

// errTokenSecretChanged: the Secret is not what the cache showed; the next reconcile sees it.
var errTokenSecretChanged = errors.New("changed since the cache saw it; it is read again on the next attempt")

// isAuthorizerTokenSecret reports an authorizer's token Secret: controlled by a
// WeChatAuthorizer, with the component label a state Secret lacks.
func isAuthorizerTokenSecret(s *corev1.Secret) bool {
	if s.Labels[wechatv1alpha1.LabelComponent] == "" || isStateSecret(s) {
		return false
	}
	ref := metav1.GetControllerOfNoCopy(s)
	return ref != nil && ref.Kind == wechatv1alpha1.KindWeChatAuthorizer && ref.APIVersion == apiVersion
}

// tokenView turns s into a view if it is an authorizer's token Secret as the operator writes
// it: Opaque, exactly the token's three keys, and annotations that agree with them. Anything
// else is left whole, and ensure then compares it as it is.
func tokenView(s *corev1.Secret) *corev1.Secret {
	if s.Type != corev1.SecretTypeOpaque || len(s.Data) != 3 || !isAuthorizerTokenSecret(s) {
		return s
	}
	token, appID := s.Data[wechatv1alpha1.SecretKeyAccessToken], s.Data[wechatv1alpha1.SecretKeyAppID]
	expiresAt, ok := s.Data[wechatv1alpha1.SecretKeyExpiresAt]
	if len(token) == 0 || len(appID) == 0 || !ok || string(expiresAt) != s.Annotations[wechatv1alpha1.AnnotationExpiresAt] ||
		s.Annotations[wechatv1alpha1.AnnotationTokenHash] != tokenHash(string(token)) {
		return s
	}
	s.Type = corev1.SecretType(tokenViewTypePrefix + string(appID))
	s.Data = nil
	return s
}

// isTokenView reports a token Secret as the cache holds it (tokenView), never one read from
// the API server.
func isTokenView(s *corev1.Secret) bool {
	return s != nil && strings.HasPrefix(string(s.Type), tokenViewTypePrefix)
}

// tokenInView is the token a view stands for: its value unknown, its hash and times from the
// annotations; nil if the view is for another appid.
func tokenInView(view *corev1.Secret, appID string) *issuedToken {
	if strings.TrimPrefix(string(view.Type), tokenViewTypePrefix) != appID {
		return nil
	}
	expiresAt, err := time.Parse(time.RFC3339, view.Annotations[wechatv1alpha1.AnnotationExpiresAt])
	if err != nil {
		return nil
	}
	return &issuedToken{appID: appID, valueHash: view.Annotations[wechatv1alpha1.AnnotationTokenHash],
		issuedAt: issuedAtOr(view.Annotations, expiresAt), expiresAt: expiresAt}
}

// viewCurrent reports a view that already shows token with the labels and annotations own
// wants: the data agrees with the annotations (tokenView), so nothing needs writing.
func viewCurrent(view *corev1.Secret, own metadata, token *issuedToken, extraData map[string][]byte) bool {
	if token == nil || len(extraData) > 0 || strings.TrimPrefix(string(view.Type), tokenViewTypePrefix) != token.appID {
		return false
	}
	return own.applied(view.Labels, view.Annotations, previousTemplateKeys(view))
}

// resolveView returns what ensure compares and updates in place of a view. For a token
// whose value the caller knows (a refresh), that is the view as the Secret it stands for, its
// data left out: ensure writes the data whole, and the update carries the view's
// resourceVersion, so a Secret changed meanwhile is a conflict, not overwritten. Otherwise
// (the served token, known by its hash only, or none) it is the Secret read from the API
// server, with the served token's value from it; nil if it is gone or no longer ours.
func (w *tokenSecretWriter) resolveView(ctx context.Context, view *corev1.Secret, token *issuedToken) (*corev1.Secret, *issuedToken, error) {
	if token.known() {
		s := view.DeepCopy()
		s.Type, s.Data = corev1.SecretTypeOpaque, nil
		return s, token, nil
	}
	live, err := getLiveManagedSecret(ctx, w.reader, view.Namespace, view.Name)
	if err != nil || token == nil {
		return live, token, err
	}
	held := readTokenSecret(live, token.appID)
	if held == nil || !held.expiresAt.Equal(token.expiresAt) || held.hash() != token.valueHash {
		return nil, nil, fmt.Errorf("token Secret %q: %w", view.Name, errTokenSecretChanged)
	}
	return live, held, nil
}
