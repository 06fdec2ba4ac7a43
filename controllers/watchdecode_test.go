/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/watchdecode"
)

var _ = Describe("The manager's cache with its watch streams decoded by watchdecode", func() {
	It("decodes the authorizers', components' and Secrets' streams itself and holds what the API server has", func() {
		kinds := []string{"WeChatAuthorizer", "WeChatComponent", "Secret"}
		before := map[string]int64{}
		for _, kind := range kinds {
			before[kind] = watchdecode.DecodedStreams(kind)
		}
		w := newWorld()
		defer w.close()
		cached, _, inSync := w.authorizedThroughManagerCache()
		By("the cache's WeChatAuthorizer and WeChatComponent (JSON) and Secret (protobuf) watches decoded here, not by client-go")
		for _, kind := range kinds {
			Expect(watchdecode.DecodedStreams(kind)-before[kind]).To(BeNumerically(">=", 1), kind)
		}

		// What the cache holds is the API server's object through the cache's transform.
		expectCachedAsLive := func(live, got client.Object) {
			GinkgoHelper()
			Expect(cached.Get(ctx, client.ObjectKeyFromObject(live), got)).To(Succeed())
			want, err := compactCached(live)
			Expect(err).NotTo(HaveOccurred())
			for _, o := range []client.Object{want.(client.Object), got} {
				o.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
			}
			Expect(equality.Semantic.DeepEqual(got, want)).To(BeTrue(), "cached %#v\nlive %#v", got, want)
		}
		a := w.authorizer(autoName)
		Expect(a.Status.Info).NotTo(BeNil())
		Expect(a.Status.Conditions).NotTo(BeEmpty())
		expectCachedAsLive(a, &wechatv1alpha1.WeChatAuthorizer{})
		c := &wechatv1alpha1.WeChatComponent{}
		Expect(k8sClient.Get(ctx, w.key, c)).To(Succeed())
		expectCachedAsLive(c, &wechatv1alpha1.WeChatComponent{})
		for _, name := range []string{autoName + "-token", autoName + "-state"} {
			live := w.secret(name)
			Expect(live.ManagedFields).NotTo(BeEmpty(), "the API server's Secret has managedFields, which the decoder leaves out")
			expectCachedAsLive(live, &corev1.Secret{})
		}

		By("a change reaching the cache through the same stream")
		patch := client.MergeFrom(a.DeepCopy())
		a.Labels = map[string]string{"team": "growth"}
		a.Annotations = map[string]string{"example.com/owner": "ops"}
		Expect(k8sClient.Patch(ctx, a, patch)).To(Succeed())
		inSync()
		a = w.authorizer(autoName)
		Expect(a.Labels).To(HaveKeyWithValue("team", "growth"))
		expectCachedAsLive(a, &wechatv1alpha1.WeChatAuthorizer{})
	})
})
