/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"bytes"
	"context"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
)

// keyringWriter projects each component's Token and EncodingAESKey (never the AppSecret)
// into the one Secret the receiver may read.
type keyringWriter struct {
	client client.Client // the keyring carries the managed-by label, so it is in the cache
	// reader reads the latest keyring after a lost race (uncached; nil: client).
	reader    client.Reader
	namespace string
	name      string
}

// keyringRetry spaces the attempts of a keyring write that lost a race: every component and
// every authorizer forwarding messages writes the one Secret, so with many workers writes
// collide. 8 attempts, 10 ms doubling with full jitter: about 2.5 s at most.
var keyringRetry = wait.Backoff{Steps: 8, Duration: 10 * time.Millisecond, Factor: 2, Jitter: 1}

func (k *keyringWriter) key() types.NamespacedName {
	return types.NamespacedName{Namespace: k.namespace, Name: k.name}
}

// update applies change to the keyring's data and writes it if anything changed. A write that
// lost a race (a conflict, or a create another writer got in first) reads the latest keyring
// from the API server and applies change to it again, instead of failing the reconcile into
// its backoff: 100 components created at once with 16 workers did not all get their keys in
// within 2 minutes that way. change may run more than once.
func (k *keyringWriter) update(ctx context.Context, change func(data map[string][]byte)) error {
	reader := client.Reader(k.client)
	lostRace := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	return retry.OnError(keyringRetry, lostRace, func() error {
		err := k.write(ctx, reader, change)
		if k.reader != nil {
			reader = k.reader
		}
		return err
	})
}

// write is one attempt of update, reading the keyring with reader.
func (k *keyringWriter) write(ctx context.Context, reader client.Reader, change func(data map[string][]byte)) error {
	// Every authorizer reconcile comes here (its forwarding key, usually none) and most change
	// nothing: read the cache's own object, not a copy of the whole keyring, and copy only to
	// write. The API reader ignores the option.
	secret := &corev1.Secret{}
	err := reader.Get(ctx, k.key(), secret, client.UnsafeDisableDeepCopy)
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
	// change sets and deletes entries, never a value's bytes: a clone of the map is enough.
	data := maps.Clone(secret.Data)
	if data == nil {
		data = map[string][]byte{}
	}
	change(data)
	if maps.EqualFunc(data, secret.Data, func(a, b []byte) bool { return string(a) == string(b) }) {
		return nil
	}
	updated := secret.DeepCopy()
	updated.Data = data
	// Update carries the resourceVersion read above, so two writers cannot lose each other's
	// entries; a stale read fails with a conflict and update tries again.
	return k.client.Update(ctx, updated, fieldOwner)
}

// project records a component's receiver keys, and the HMAC key of its default message
// forwarding (nil: none), in one write. keysChanged reports that the receiver keys were new
// or different: receivers cannot verify the component's pushes until their caches have them.
func (k *keyringWriter) project(ctx context.Context, component types.NamespacedName, token, encodingAESKey string, forwardKey []byte) (keysChanged bool, err error) {
	err = k.update(ctx, func(data map[string][]byte) {
		tokenKey, aesKey := keyring.TokenKey(component.Namespace, component.Name), keyring.AESKeyKey(component.Namespace, component.Name)
		keysChanged = string(data[tokenKey]) != token || string(data[aesKey]) != encodingAESKey
		data[tokenKey] = []byte(token)
		data[aesKey] = []byte(encodingAESKey)
		if forwardKey == nil {
			delete(data, keyring.ForwardKeyKey(component.Namespace, component.Name))
		} else {
			data[keyring.ForwardKeyKey(component.Namespace, component.Name)] = forwardKey
		}
	})
	return keysChanged, err
}

// prune drops the entries of components that no longer exist, and entries it cannot parse.
// WeChatAuthorizers' entries are theirs to prune (pruneAuthorizers).
func (k *keyringWriter) prune(ctx context.Context, exists func(types.NamespacedName) bool) error {
	return k.update(ctx, func(data map[string][]byte) {
		for entry := range data {
			if _, _, ok := keyring.ParseAuthorizerKey(entry); ok {
				continue
			}
			ns, name, ok := keyring.ParseKey(entry)
			if !ok || !exists(types.NamespacedName{Namespace: ns, Name: name}) {
				delete(data, entry)
			}
		}
	})
}

// setEntry writes one entry, or removes it when value is nil.
func (k *keyringWriter) setEntry(ctx context.Context, entry string, value []byte) error {
	// Every authorizer reconcile comes here and nearly all find the entry right already (most
	// forward nothing): one look at the cache's keyring decides that, where update clones its
	// map of every component's keys (7 % of a 100,000-authorizer restart's CPU).
	cached := &corev1.Secret{}
	if err := k.client.Get(ctx, k.key(), cached, client.UnsafeDisableDeepCopy); err == nil {
		current, ok := cached.Data[entry]
		if ok == (value != nil) && bytes.Equal(current, value) {
			return nil
		}
	}
	return k.update(ctx, func(data map[string][]byte) {
		if value == nil {
			delete(data, entry)
			return
		}
		data[entry] = value
	})
}

// pruneAuthorizers drops the entries of WeChatAuthorizers for which gone reports true.
func (k *keyringWriter) pruneAuthorizers(ctx context.Context, gone func(types.NamespacedName) bool) error {
	return k.update(ctx, func(data map[string][]byte) {
		for entry := range data {
			if ns, name, ok := keyring.ParseAuthorizerKey(entry); ok && gone(types.NamespacedName{Namespace: ns, Name: name}) {
				delete(data, entry)
			}
		}
	})
}

// liveObjects lists the objects of list's kind (from the cache) and returns those that are
// not being deleted: a keyring entry of any other is pruned.
func liveObjects(ctx context.Context, c client.Reader, list client.ObjectList) (map[types.NamespacedName]bool, error) {
	if err := c.List(ctx, list); err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	live := map[types.NamespacedName]bool{}
	for _, item := range items {
		if o, ok := item.(client.Object); ok && o.GetDeletionTimestamp().IsZero() {
			live[client.ObjectKeyFromObject(o)] = true
		}
	}
	return live, nil
}
