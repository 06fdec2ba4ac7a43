/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

var _ = Describe("WeChatAuthorizer controller reading its Secrets as the cache's own objects", func() {
	It("leaves the cached token and state Secrets as they were through a refresh that writes both", func() {
		// WeChat rotating the refresh token, so that the refresh writes the state Secret too.
		w := newWorld(func(c *worldConfig) {
			c.simOptions = func(o *wxsim.Options) { o.RotateRefreshTokens = true }
		})
		defer w.close()
		cached, _, inSync := w.authorizedThroughManagerCache()
		stateName, tokenName := autoName+"-state", autoName+"-token"
		inSync(stateName, tokenName)
		// A read without a copy shares the cache's maps and slices: a write through them
		// would show here.
		shared, held := map[string]*corev1.Secret{}, map[string]*corev1.Secret{}
		for _, name := range []string{stateName, tokenName} {
			s := &corev1.Secret{}
			Expect(cached.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: name}, s, client.UnsafeDisableDeepCopy)).To(Succeed())
			Expect(len(s.Labels)+len(s.Annotations)+len(s.Data)+len(s.OwnerReferences)).NotTo(BeZero(), "%s shares nothing", name)
			shared[name], held[name] = s, s.DeepCopy()
		}

		By("a due refresh writing the state and the token Secret")
		w.clock.SetTime(w.authorizer(autoName).Status.RefreshAt.Time)
		w.reconcileAuthorizer(autoName)
		for _, name := range []string{stateName, tokenName} {
			Expect(w.secret(name).ResourceVersion).NotTo(Equal(held[name].ResourceVersion), "%s was written", name)
			Expect(shared[name]).To(Equal(held[name]), "the cache's %s was changed by the reconcile", name)
		}
	})
})
