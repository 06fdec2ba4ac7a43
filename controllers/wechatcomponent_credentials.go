/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// credentials are a component's secrets from its credentials Secret.
type credentials struct {
	appSecret      string
	token          string
	encodingAESKey string
	// version is the Secret's resourceVersion: a failure is retried at once when it changes.
	version string
}

// loadCredentials reads and validates the credentials Secret. It is read uncached: it is the
// user's Secret, outside the manager's label-filtered cache. Its token and encodingAESKey go
// to the receiver keyring and its key names are free, so it must be released to the
// component (secretaccess.go).
func (r *WeChatComponentReconciler) loadCredentials(ctx context.Context, c *wechatv1alpha1.WeChatComponent) (credentials, error) {
	ref := c.Spec.CredentialsSecretRef
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: ref.Name}, secret)
	if apierrors.IsNotFound(err) {
		return credentials{}, configurationFailure(wechatv1alpha1.ReasonCredentialsSecretNotFound,
			fmt.Sprintf("credentials Secret %q not found in namespace %q; create it with the keys %q, %q and %q",
				ref.Name, c.Namespace, keyOr(ref.AppSecretKey, wechatv1alpha1.DefaultAppSecretKey),
				keyOr(ref.TokenKey, wechatv1alpha1.DefaultTokenKey),
				keyOr(ref.EncodingAESKeyKey, wechatv1alpha1.DefaultEncodingAESKeyKey)))
	}
	if err != nil {
		return credentials{}, err
	}
	if !usableBy(secret, wechatv1alpha1.KindWeChatComponent, c.Name) {
		return credentials{}, configurationFailure(wechatv1alpha1.ReasonSecretNotOptedIn,
			notOptedIn("spec.credentialsSecretRef", secret, wechatv1alpha1.KindWeChatComponent, c.Name))
	}
	var missing []string
	value := func(key, def string) string {
		k := keyOr(key, def)
		v := string(secret.Data[k])
		if v == "" {
			missing = append(missing, k)
		}
		return v
	}
	creds := credentials{
		appSecret:      value(ref.AppSecretKey, wechatv1alpha1.DefaultAppSecretKey),
		token:          value(ref.TokenKey, wechatv1alpha1.DefaultTokenKey),
		encodingAESKey: value(ref.EncodingAESKeyKey, wechatv1alpha1.DefaultEncodingAESKeyKey),
		version:        secret.ResourceVersion,
	}
	if len(missing) > 0 {
		return credentials{}, configurationFailure(wechatv1alpha1.ReasonCredentialsInvalid,
			fmt.Sprintf("credentials Secret %q lacks the key(s) %q", ref.Name, missing))
	}
	if _, err := wxcrypto.ParseEncodingAESKey(creds.encodingAESKey); err != nil {
		// The parse error says what is wrong with the key's shape, never the key itself.
		return credentials{}, configurationFailure(wechatv1alpha1.ReasonCredentialsInvalid,
			fmt.Sprintf("credentials Secret %q: key %q is not a valid EncodingAESKey (%v); copy the 43-character "+
				"消息加解密Key from the platform's settings", ref.Name,
				keyOr(ref.EncodingAESKeyKey, wechatv1alpha1.DefaultEncodingAESKeyKey), err))
	}
	return creds, nil
}

func keyOr(key, def string) string {
	if key == "" {
		return def
	}
	return key
}
