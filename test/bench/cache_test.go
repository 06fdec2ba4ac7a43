/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package bench

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

// newReceiverCache starts an informer cache shaped like the receiver's: the CRs, and only
// the keyring Secret.
func newReceiverCache(ctx context.Context, namespace string) (cache.Cache, error) {
	options := receiver.CacheOptions(types.NamespacedName{Namespace: namespace, Name: keyringName})
	options.Scheme = scheme
	c, err := cache.New(cfg, options)
	if err != nil {
		return nil, err
	}
	for _, obj := range []client.Object{&wechatv1alpha1.WeChatComponent{}, &corev1.Secret{}} {
		if _, err := c.GetInformer(ctx, obj); err != nil {
			return nil, err
		}
	}
	go func() { _ = c.Start(ctx) }()
	c.WaitForCacheSync(ctx)
	return c, nil
}
