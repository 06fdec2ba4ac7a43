/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
)

// keyringWriter projects each component's Token and EncodingAESKey (never the AppSecret)
// into the one Secret the receiver may read.
type keyringWriter struct {
	client    client.Client // the keyring carries the managed-by label, so it is in the cache
	namespace string
	name      string
}

func (k *keyringWriter) key() types.NamespacedName {
	return types.NamespacedName{Namespace: k.namespace, Name: k.name}
}

// update applies change to the keyring's data and writes it if anything changed.
func (k *keyringWriter) update(ctx context.Context, change func(data map[string][]byte)) error {
	secret := &corev1.Secret{}
	err := k.client.Get(ctx, k.key(), secret)
	if apierrors.IsNotFound(err) {
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:      k.name,
				Namespace: k.namespace,
				Labels:    map[string]string{wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{},
		}
		change(secret.Data)
		if len(secret.Data) == 0 {
			return nil
		}
		return k.client.Create(ctx, secret, fieldOwner)
	}
	if err != nil {
		return err
	}
	data := maps.Clone(secret.Data)
	if data == nil {
		data = map[string][]byte{}
	}
	change(data)
	if maps.EqualFunc(data, secret.Data, func(a, b []byte) bool { return string(a) == string(b) }) {
		return nil
	}
	secret.Data = data
	// Update carries the resourceVersion read above, so two writers cannot lose each other's
	// entries; a stale cache read fails with a conflict and the reconcile is retried.
	return k.client.Update(ctx, secret, fieldOwner)
}

// project records a component's receiver keys.
func (k *keyringWriter) project(ctx context.Context, component types.NamespacedName, token, encodingAESKey string) error {
	return k.update(ctx, func(data map[string][]byte) {
		data[keyring.TokenKey(component.Namespace, component.Name)] = []byte(token)
		data[keyring.AESKeyKey(component.Namespace, component.Name)] = []byte(encodingAESKey)
	})
}

// remove drops a component's entries, and those of any component that no longer exists.
func (k *keyringWriter) prune(ctx context.Context, exists func(types.NamespacedName) bool) error {
	return k.update(ctx, func(data map[string][]byte) {
		for entry := range data {
			ns, name, ok := keyring.ParseKey(entry)
			if !ok || !exists(types.NamespacedName{Namespace: ns, Name: name}) {
				delete(data, entry)
			}
		}
	})
}
