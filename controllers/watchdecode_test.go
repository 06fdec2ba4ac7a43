/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/watchdecode"
)

var _ = Describe("The manager's cache with the custom resources' watch streams decoded by watchdecode", func() {
	It("decodes the authorizers' and components' streams itself and holds what the API server has", func() {
		before := watchdecode.DecodedStreams()
		w := newWorld()
		defer w.close()
		cached, _, inSync := w.authorizedThroughManagerCache()
		By("the cache's WeChatAuthorizer and WeChatComponent watches decoded here, not by client-go")
		Expect(watchdecode.DecodedStreams() - before).To(BeNumerically(">=", 2))

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
