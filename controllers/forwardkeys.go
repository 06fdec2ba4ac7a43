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
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
)

// The receiver signs forwarded messages with an HMAC key the user keeps in a Secret of their
// own (spec.messages.forward.hmacKeySecretRef). The receiver may read only the keyring, so
// the manager copies the key there: "<ns>.<component>.forwardKey" for a component's default,
// "<ns>.<authorizer>.authorizerForwardKey" for an authorizer's own target. Without forwarding
// in spec, or without a usable key, the entry is removed and the receiver does not forward.
// The Secret must be released to the resource (usable-by annotation, secretaccess.go):
// whatever it holds ends up in the keyring, which an internet-facing process reads.

const (
	fieldForwardKey = "spec.messages.forward.hmacKeySecretRef"

	msgForwardKeyMissing = "spec.messages.forward.hmacKeySecretRef: Secret %q has no non-empty key %q; " +
		"messages are not forwarded until it does (then touch an annotation of this resource to apply it at once)"
	minForwardKeyBytes = 16
	msgForwardKeyShort = "spec.messages.forward.hmacKeySecretRef: the key %q of Secret %q is shorter than %d bytes; " +
		"messages are not forwarded until it is longer (then touch an annotation of this resource to apply it at once)"
)

// forwardKeyProblem is why a forwarding key is not used: an Event reason and a message safe to show.
type forwardKeyProblem struct{ reason, message string }

// readForwardKey reads the HMAC key that the forwarding of obj (kind/name) names, in obj's
// namespace, uncached (the user's Secret is outside the manager's cache). It returns nil and
// the problem when the Secret is not released to obj or the key is missing or too short; an
// error only when the Secret could not be read.
func readForwardKey(ctx context.Context, reader client.Reader, namespace, kind, name string,
	fw *wechatv1alpha1.MessageForwarding) ([]byte, *forwardKeyProblem, error) {
	ref := fw.HMACKeySecretRef
	key := keyOr(ref.Key, wechatv1alpha1.DefaultHMACKeyKey)
	missing := &forwardKeyProblem{wechatv1alpha1.EventForwardKeyMissing, fmt.Sprintf(msgForwardKeyMissing, ref.Name, key)}
	secret := &corev1.Secret{}
	err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, missing, nil
	case err != nil:
		return nil, nil, err
	case !usableBy(secret, kind, name):
		return nil, &forwardKeyProblem{wechatv1alpha1.EventForwardKeyNotOptedIn, notOptedIn(fieldForwardKey, secret, kind, name)}, nil
	}
	value := secret.Data[key]
	switch {
	case len(value) == 0:
		return nil, missing, nil
	case len(value) < minForwardKeyBytes:
		return nil, &forwardKeyProblem{wechatv1alpha1.EventForwardKeyMissing, fmt.Sprintf(msgForwardKeyShort, key, ref.Name, minForwardKeyBytes)}, nil
	}
	return value, nil, nil
}

// forwardKey is the keyring value for obj's forwarding: the HMAC key, or nil (no forwarding
// in spec, or no usable key, which is reported with a Warning Event rather than an error).
func forwardKey(ctx context.Context, reader client.Reader, recorder events.EventRecorder,
	obj client.Object, kind string, fw *wechatv1alpha1.MessageForwarding) ([]byte, error) {
	if fw == nil {
		return nil, nil
	}
	key, problem, err := readForwardKey(ctx, reader, obj.GetNamespace(), kind, obj.GetName(), fw)
	if err != nil {
		return nil, fmt.Errorf("reading the forwarding HMAC key: %w", err)
	}
	if problem != nil {
		recorder.Eventf(obj, nil, corev1.EventTypeWarning, problem.reason, "ProjectForwardKey", "%s", problem.message)
		log.FromContext(ctx).Info("forwarding HMAC key unusable; messages are not forwarded", "problem", problem.message)
	}
	return key, nil
}

// forwardKey is the component's default forwarding key, projected with its other keys.
func (r *WeChatComponentReconciler) forwardKey(ctx context.Context, c *wechatv1alpha1.WeChatComponent) ([]byte, error) {
	return forwardKey(ctx, r.APIReader, r.Recorder, c, wechatv1alpha1.KindWeChatComponent, c.Spec.Messages.Forward)
}

// keyring is the receiver keyring, or nil when the reconciler has none configured.
func (r *WeChatAuthorizerReconciler) keyring() *keyringWriter {
	if r.KeyringName == "" {
		return nil
	}
	return &keyringWriter{client: r.shared(), reader: r.APIReader, namespace: r.KeyringNamespace, name: r.KeyringName}
}

// projectForwardKey keeps the authorizer's forwarding key in the keyring.
func (r *WeChatAuthorizerReconciler) projectForwardKey(ctx context.Context, a *wechatv1alpha1.WeChatAuthorizer) error {
	k := r.keyring()
	if k == nil {
		return nil
	}
	value, err := forwardKey(ctx, r.APIReader, r.Recorder, a, wechatv1alpha1.KindWeChatAuthorizer, a.Spec.Messages.Forward)
	if err != nil {
		return err
	}
	if err := k.setEntry(ctx, keyring.AuthorizerForwardKeyKey(a.Namespace, a.Name), value); err != nil {
		return fmt.Errorf("updating the receiver keyring: %w", err)
	}
	return nil
}

// pruneForwardKeys drops the keyring entries of WeChatAuthorizers that no longer exist. The
// cache may not have seen a new authorizer yet, so an entry goes only when an uncached read
// confirms the authorizer is gone (or being deleted).
func (r *WeChatAuthorizerReconciler) pruneForwardKeys(ctx context.Context) error {
	k := r.keyring()
	if k == nil {
		return nil
	}
	live, err := liveObjects(ctx, r.Client, &wechatv1alpha1.WeChatAuthorizerList{})
	if err != nil {
		return err
	}
	var readErr error
	err = k.pruneAuthorizers(ctx, func(n types.NamespacedName) bool {
		if live[n] {
			return false
		}
		a := &wechatv1alpha1.WeChatAuthorizer{}
		err := r.APIReader.Get(ctx, n, a)
		// Forbidden: a namespace outside --watch-namespaces, which this manager (the keyring's
		// only writer) no longer serves.
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			return true
		}
		if err != nil {
			readErr = err
			return false
		}
		return !a.DeletionTimestamp.IsZero()
	})
	if err != nil {
		return err
	}
	return readErr
}
