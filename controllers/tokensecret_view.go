/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// tokenViewTypePrefix starts a view's Secret type; the token's appid, expiry, issue time and
// hash follow (viewedToken.secretType). The API server refuses to change a Secret's type, so
// a write of a view as it is fails instead of emptying the Secret; ensure, the one writer of
// token Secrets, writes what it stands for.
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

// viewedToken is what a view says of its token: the appid (the data's) and the token's three
// annotations (tokenAnnotations). They are kept in the view's type rather than in its
// annotations, which then hold only what others and templates put there, most often nothing:
// one string instead of a map, about 350 bytes less for each authorizer the cache holds.
type viewedToken struct {
	appID, expiresAt, issuedAt, hash string
}

func (v viewedToken) secretType() corev1.SecretType {
	return corev1.SecretType(tokenViewTypePrefix + v.appID + "/" + v.expiresAt + "/" + v.issuedAt + "/" + v.hash)
}

// viewedTokenOf reads a view's type; false if s is not a view.
func viewedTokenOf(s *corev1.Secret) (viewedToken, bool) {
	if s == nil {
		return viewedToken{}, false
	}
	rest, ok := strings.CutPrefix(string(s.Type), tokenViewTypePrefix)
	if !ok {
		return viewedToken{}, false
	}
	var v viewedToken
	var ok1, ok2, ok3 bool
	v.appID, rest, ok1 = strings.Cut(rest, "/")
	v.expiresAt, rest, ok2 = strings.Cut(rest, "/")
	v.issuedAt, v.hash, ok3 = strings.Cut(rest, "/")
	return v, ok1 && ok2 && ok3
}

// annotations are the view's Secret's annotations: the view's own and the token's.
func (v viewedToken) annotations(view *corev1.Secret) map[string]string {
	a := make(map[string]string, len(view.Annotations)+3)
	maps.Copy(a, view.Annotations)
	a[wechatv1alpha1.AnnotationExpiresAt], a[wechatv1alpha1.AnnotationTokenHash] = v.expiresAt, v.hash
	if v.issuedAt != "" {
		a[wechatv1alpha1.AnnotationIssuedAt] = v.issuedAt
	}
	return a
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
	issuedAt, hasIssuedAt := s.Annotations[wechatv1alpha1.AnnotationIssuedAt]
	if len(token) == 0 || len(appID) == 0 || !ok || string(expiresAt) != s.Annotations[wechatv1alpha1.AnnotationExpiresAt] ||
		s.Annotations[wechatv1alpha1.AnnotationTokenHash] != tokenHash(string(token)) ||
		(hasIssuedAt && issuedAt == "") || strings.Contains(string(appID)+string(expiresAt)+issuedAt, "/") {
		return s // what the type cannot say unambiguously stays in the Secret
	}
	s.Type = viewedToken{appID: string(appID), expiresAt: string(expiresAt), issuedAt: issuedAt,
		hash: s.Annotations[wechatv1alpha1.AnnotationTokenHash]}.secretType()
	s.Data = nil
	for _, k := range tokenAnnotations {
		delete(s.Annotations, k)
	}
	if len(s.Annotations) == 0 {
		s.Annotations = nil
	}
	return s
}

// isTokenView reports a token Secret as the cache holds it (tokenView), never one read from
// the API server.
func isTokenView(s *corev1.Secret) bool {
	return s != nil && strings.HasPrefix(string(s.Type), tokenViewTypePrefix)
}

// tokenInView is the token a view stands for: its value unknown, its hash and times from the
// view's type; nil if the view is for another appid.
func tokenInView(view *corev1.Secret, appID string) *issuedToken {
	v, ok := viewedTokenOf(view)
	if !ok || v.appID != appID {
		return nil
	}
	expiresAt, err := time.Parse(time.RFC3339, v.expiresAt)
	if err != nil {
		return nil
	}
	return &issuedToken{appID: appID, valueHash: v.hash, issuedAt: issuedAtOr(v.issuedAt, expiresAt), expiresAt: expiresAt}
}

// viewCurrent reports a view that already shows token with the labels and annotations own
// wants: the data agrees with the annotations (tokenView), so nothing needs writing.
func viewCurrent(view *corev1.Secret, own metadata, token *issuedToken, extraData map[string][]byte) bool {
	v, ok := viewedTokenOf(view)
	if token == nil || len(extraData) > 0 || !ok || v.appID != token.appID {
		return false
	}
	return own.applied(view.Labels, v.annotations(view), previousTemplateKeys(view))
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
		if v, ok := viewedTokenOf(view); ok {
			s.Annotations = v.annotations(view)
		}
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
