/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
)

// fieldOwner is the manager's field manager name for everything it writes.
const fieldOwner = client.FieldOwner("wechat-operator-manager")

// issuedToken is an access token as stored in an app-facing token Secret.
type issuedToken struct {
	accessToken string
	// valueHash stands for accessToken when it is not known here: the token a token
	// Secret's cached view shows (tokenInView), its tokenHash.
	valueHash string
	appID     string
	issuedAt  time.Time
	expiresAt time.Time
}

// newIssuedToken is a token WeChat issued at now for expiresIn, its times in whole seconds
// so that what is stored and what is recomputed agree.
func newIssuedToken(accessToken, appID string, now time.Time, expiresIn time.Duration) *issuedToken {
	return &issuedToken{accessToken: accessToken, appID: appID,
		issuedAt: now.Truncate(time.Second), expiresAt: now.Add(expiresIn).Truncate(time.Second)}
}

// validAt reports whether the token can still be served at now.
func (t *issuedToken) validAt(now time.Time) bool {
	return t != nil && (t.accessToken != "" || t.valueHash != "") && now.Before(t.expiresAt)
}

// known reports a token whose value is here, not only its hash.
func (t *issuedToken) known() bool { return t != nil && t.accessToken != "" }

// hash is the token's tokenHash.
func (t *issuedToken) hash() string {
	if t.known() {
		return tokenHash(t.accessToken)
	}
	return t.valueHash
}

// readTokenSecret returns the token in secret, or nil if the Secret is missing, incomplete
// or belongs to another appid. Of a cached view it returns the token known by its hash.
func readTokenSecret(secret *corev1.Secret, appID string) *issuedToken {
	if isTokenView(secret) {
		return tokenInView(secret, appID)
	}
	if secret == nil || string(secret.Data[wechatv1alpha1.SecretKeyAppID]) != appID {
		return nil
	}
	expiresAt, err := time.Parse(time.RFC3339, string(secret.Data[wechatv1alpha1.SecretKeyExpiresAt]))
	if err != nil {
		return nil
	}
	token := string(secret.Data[wechatv1alpha1.SecretKeyAccessToken])
	if token == "" {
		return nil
	}
	return &issuedToken{accessToken: token, appID: appID, issuedAt: issuedAtOr(secret.Annotations[wechatv1alpha1.AnnotationIssuedAt], expiresAt), expiresAt: expiresAt}
}

// issuedAtOr is the token's issue time from its annotation's value; for a Secret written by
// hand or by an older version, without one, a 2-hour token is assumed.
func issuedAtOr(annotation string, expiresAt time.Time) time.Time {
	issuedAt, err := time.Parse(time.RFC3339, annotation)
	if err != nil {
		return expiresAt.Add(-2 * time.Hour)
	}
	return issuedAt
}

// keptRefreshTime keeps the refresh time in status when it belongs to token (status expiry
// equals the token's), so a restart does not roll the jitter again; otherwise it computes one.
func keptRefreshTime(refreshAt, expiresAt *metav1.Time, policy refresh.Policy, token *issuedToken, jitter float64) time.Time {
	if refreshAt != nil && expiresAt != nil && expiresAt.Time.Equal(token.expiresAt) {
		return refreshAt.Time
	}
	return policy.RefreshAt(token.issuedAt, token.expiresAt, jitter)
}

// tokenHash changes exactly when the token changes; consumers restart on it, never on a
// rewrite of the same value. It is a truncated SHA-256, which reveals nothing usable.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// tokenSecretWriter writes app-facing token Secrets.
type tokenSecretWriter struct {
	client client.Client
	reader client.Reader // uncached
	scheme *runtime.Scheme
	// extraData is written beside a token (an authorizer's API tickets); not without one.
	extraData map[string][]byte
}

// errSecretNotOurs is returned when the token Secret's name is taken by a Secret the
// operator does not manage; it is never overwritten.
type errSecretNotOurs struct{ name string }

func (e errSecretNotOurs) Error() string {
	return fmt.Sprintf("Secret %q exists and is not managed by wechat-operator; "+
		"choose another spec.tokenSecret.name or delete that Secret", e.name)
}

// ensure makes the Secret hold token (or no token data when token is nil, after an
// authorization was revoked and spec asked to delete it), with the template's labels and
// annotations, owned by owner. Only the operator's own metadata keys are written (see
// ownedMetadata): labels and annotations others put on the Secret survive. It writes only
// when something changed, and returns the Secret as it now is.
func (w *tokenSecretWriter) ensure(ctx context.Context, owner client.Object, existing *corev1.Secret,
	name string, tmpl wechatv1alpha1.TokenSecretTemplate, labels map[string]string, token *issuedToken) (*corev1.Secret, error) {
	if token != nil && !token.known() && !isTokenView(existing) {
		// Only a view stands for a token known by its hash; without it there is no value to write.
		return nil, fmt.Errorf("token Secret %q: %w", name, errTokenSecretChanged)
	}
	own := ownedMetadata(tmpl, labels, token)
	if isTokenView(existing) {
		if !metav1.IsControlledBy(existing, owner) {
			return nil, errSecretNotOurs{name: name}
		}
		if viewCurrent(existing, own, token, w.extraData) {
			return existing, nil
		}
		var err error
		if existing, token, err = w.resolveView(ctx, existing, token); err != nil {
			return nil, err
		}
	}
	desired := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: owner.GetNamespace()},
		Type:       corev1.SecretTypeOpaque,
	}
	desired.Labels, desired.Annotations = own.apply(nil, nil, templateKeys{})
	if token != nil {
		desired.Data = map[string][]byte{
			wechatv1alpha1.SecretKeyAccessToken: []byte(token.accessToken),
			wechatv1alpha1.SecretKeyExpiresAt:   []byte(token.expiresAt.UTC().Format(time.RFC3339)),
			wechatv1alpha1.SecretKeyAppID:       []byte(token.appID),
		}
		maps.Copy(desired.Data, w.extraData)
	}
	if err := controllerutil.SetControllerReference(owner, desired, w.scheme); err != nil {
		return nil, err
	}

	if existing == nil {
		err := w.client.Create(ctx, desired, fieldOwner)
		if !apierrors.IsAlreadyExists(err) {
			if err != nil {
				return nil, err
			}
			return desired, nil
		}
		// Either our own write the cache has not caught up with, or a Secret we do not
		// manage (not in the label-filtered cache at all): ask the API server which.
		existing = &corev1.Secret{}
		if err := w.reader.Get(ctx, client.ObjectKeyFromObject(desired), existing); err != nil {
			return nil, err
		}
	}
	if !metav1.IsControlledBy(existing, owner) {
		return nil, errSecretNotOurs{name: name}
	}
	updated := existing.DeepCopy()
	updated.Labels, updated.Annotations = own.apply(existing.Labels, existing.Annotations, previousTemplateKeys(existing))
	updated.Data = desired.Data
	updated.StringData = nil
	updated.Type = existing.Type
	if equality.Semantic.DeepEqual(existing.Labels, updated.Labels) &&
		equality.Semantic.DeepEqual(existing.Annotations, updated.Annotations) &&
		equality.Semantic.DeepEqual(existing.Data, updated.Data) {
		return existing, nil
	}
	if err := w.client.Update(ctx, updated, fieldOwner); err != nil {
		return nil, err
	}
	return updated, nil
}
