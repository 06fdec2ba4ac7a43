/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// Keys of the operator-private state Secret, besides refresh_token.
const (
	stateKeyAccessToken = "access_token"
	stateKeyExpiresAt   = "expires_at"
	stateKeyIssuedAt    = "issued_at"
	stateKeyAppID       = "appid"
)

// authorizerState is what the operator keeps privately for an authorizer: the refresh
// token (the only way to mint tokens without a new authorization) and the last access token.
type authorizerState struct {
	refreshToken string
	token        *issuedToken
}

func stateSecretName(a *wechatv1alpha1.WeChatAuthorizer) string {
	return wechatv1alpha1.StateSecretName(a.Name)
}

// The manager's cache holds a state Secret as a view: what says whose it is and when its
// access token (if it holds one) expires, nothing secret. A refresh token is read from the
// API server when a refresh, an exchange or a recovery needs it, once per refresh; the
// cache then does not hold 100,000 refresh tokens, and a heap dump of the manager none.
// The view's expiry is what tells a reconcile that the state holds a newer token than the
// token Secret (a crash between the two writes) without a read per reconcile.

// stateViewType is a view's Secret type; "/" and the expiry of the access token the state
// holds follow when it holds one. The API server refuses to change a Secret's type, so a write
// of a view (which has no data and no labels) fails instead of emptying the Secret. The expiry
// is kept in the type rather than in an annotation: one string instead of a map, about 250
// bytes less for each authorizer the cache holds.
const stateViewType = "platform.wechat-operator.dev/cached-state-view"

// isStateSecret reports an authorizer's state Secret: named <authorizer>-state after the
// authorizer its label names, and without the component label every token Secret has.
func isStateSecret(s *corev1.Secret) bool {
	name := s.Labels[wechatv1alpha1.LabelAuthorizer]
	return name != "" && s.Name == wechatv1alpha1.StateSecretName(name) && s.Labels[wechatv1alpha1.LabelComponent] == ""
}

// isStateView reports a state Secret as the cache holds it (stateView), never one read from
// the API server.
func isStateView(s *corev1.Secret) bool {
	if s == nil {
		return false
	}
	rest, ok := strings.CutPrefix(string(s.Type), stateViewType)
	return ok && (rest == "" || rest[0] == '/')
}

// stateView is what the cache keeps of a state Secret: its identity, its owner (ownership,
// and the watch that wakes the owner) and, if it holds an access token, the token's expiry
// in its type (stateViewExpiry).
func stateView(s *corev1.Secret) *corev1.Secret {
	view := &corev1.Secret{TypeMeta: s.TypeMeta, Type: stateViewType}
	view.ObjectMeta = metav1.ObjectMeta{
		Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion,
		CreationTimestamp: s.CreationTimestamp, DeletionTimestamp: s.DeletionTimestamp,
		OwnerReferences: s.OwnerReferences,
	}
	if len(s.Data[stateKeyAccessToken]) > 0 && len(s.Data[stateKeyExpiresAt]) > 0 {
		view.Type = corev1.SecretType(stateViewType + "/" + string(s.Data[stateKeyExpiresAt]))
	}
	return view
}

// stateViewExpiry is the expiry of the access token a state view says its state holds; false
// if it holds none (or view is not a view).
func stateViewExpiry(view *corev1.Secret) (time.Time, bool) {
	if view == nil {
		return time.Time{}, false
	}
	at, ok := strings.CutPrefix(string(view.Type), stateViewType+"/")
	if !ok {
		return time.Time{}, false
	}
	expiresAt, err := time.Parse(time.RFC3339, at)
	return expiresAt, err == nil
}

// stateMayBeNewer reports a state whose access token, as its view says, expires after the
// token Secret's (served; nil when it has none): only the Secret itself shows whether that
// token is for this appid and still valid.
func stateMayBeNewer(view *corev1.Secret, served *issuedToken) bool {
	expiresAt, ok := stateViewExpiry(view)
	return ok && (served == nil || expiresAt.After(served.expiresAt))
}

// readState reads a state Secret; an empty state if it is missing or for another appid.
func readState(secret *corev1.Secret, appID string) authorizerState {
	if secret == nil || string(secret.Data[stateKeyAppID]) != appID {
		return authorizerState{}
	}
	st := authorizerState{refreshToken: string(secret.Data[wechatv1alpha1.SecretKeyRefreshToken])}
	expiresAt, err1 := time.Parse(time.RFC3339, string(secret.Data[stateKeyExpiresAt]))
	issuedAt, err2 := time.Parse(time.RFC3339, string(secret.Data[stateKeyIssuedAt]))
	if token := string(secret.Data[stateKeyAccessToken]); token != "" && err1 == nil && err2 == nil {
		st.token = &issuedToken{accessToken: token, appID: appID, issuedAt: issuedAt, expiresAt: expiresAt}
	}
	return st
}

// writeState persists st into the authorizer's state Secret, creating it if needed, and
// returns the Secret as it now is. It is always written before the app-facing token Secret,
// so a crash in between loses nothing.
func writeState(ctx context.Context, c client.Client, reader client.Reader, owner *wechatv1alpha1.WeChatAuthorizer, existing *corev1.Secret, st authorizerState) (*corev1.Secret, error) {
	data := map[string][]byte{
		wechatv1alpha1.SecretKeyRefreshToken: []byte(st.refreshToken),
		stateKeyAppID:                        []byte(owner.Spec.AppID),
	}
	if st.token.known() { // a token known by its hash only (a cached view's) is the token Secret's already
		data[stateKeyAccessToken] = []byte(st.token.accessToken)
		data[stateKeyExpiresAt] = []byte(st.token.expiresAt.UTC().Format(time.RFC3339))
		data[stateKeyIssuedAt] = []byte(st.token.issuedAt.UTC().Format(time.RFC3339))
	}
	if isStateView(existing) {
		// What the cache holds has no data to compare and no labels to keep: the Secret itself.
		live, err := getManagedSecret(ctx, reader, owner.Namespace, existing.Name)
		if err != nil {
			return nil, err
		}
		if isStateView(live) {
			return nil, errors.New("writeState was given the cache as its reader")
		}
		return writeState(ctx, c, reader, owner, live, st)
	}
	if existing != nil {
		owned := metav1.IsControlledBy(existing, owner)
		if !owned && !stateAdoptable(existing, owner) {
			return nil, errSecretNotOurs{name: existing.Name}
		}
		if owned && maps.EqualFunc(existing.Data, data, func(a, b []byte) bool { return string(a) == string(b) }) {
			return existing, nil
		}
		updated := existing.DeepCopy()
		updated.Data = data
		if !owned {
			// A WeChatAuthorizer deleted and applied again under the same name: adopt the
			// state (and its refresh token) before the garbage collector takes it.
			updated.OwnerReferences = nil
			if err := controllerutil.SetControllerReference(owner, updated, c.Scheme()); err != nil {
				return nil, err
			}
		}
		return updated, c.Update(ctx, updated, fieldOwner)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: stateSecretName(owner), Namespace: owner.Namespace,
			Labels: shardLabels(owner, map[string]string{
				wechatv1alpha1.LabelManagedBy:  wechatv1alpha1.ManagedByValue,
				wechatv1alpha1.LabelAuthorizer: owner.Name,
			}),
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	if err := controllerutil.SetControllerReference(owner, secret, c.Scheme()); err != nil {
		return nil, err
	}
	err := c.Create(ctx, secret, fieldOwner)
	if !apierrors.IsAlreadyExists(err) {
		return secret, err
	}
	// Our own earlier write that the cache has not caught up with, or not ours at all.
	existing = &corev1.Secret{}
	if err := reader.Get(ctx, client.ObjectKeyFromObject(secret), existing); err != nil {
		return nil, err
	}
	return writeState(ctx, c, reader, owner, existing, st)
}

// getLiveManagedSecret reads a Secret from the API server (reader is uncached) as the
// label-filtered cache would show it: nil unless it exists and the operator manages it.
func getLiveManagedSecret(ctx context.Context, reader client.Reader, namespace, name string) (*corev1.Secret, error) {
	secret, err := getManagedSecret(ctx, reader, namespace, name)
	if err != nil || secret == nil || secret.Labels[wechatv1alpha1.LabelManagedBy] != wechatv1alpha1.ManagedByValue {
		return nil, err
	}
	return secret, nil
}

// getManagedSecret reads a Secret through r (the manager's cache holds only managed
// Secrets); nil if it does not exist.
func getManagedSecret(ctx context.Context, r client.Reader, namespace, name string, opts ...client.GetOption) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, secret, opts...)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return secret, err
}
