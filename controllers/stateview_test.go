/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// secretReads counts the Secrets read through it, by name.
type secretReads struct {
	client.Reader
	mu    sync.Mutex
	reads map[string]int
}

func (s *secretReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok {
		s.mu.Lock()
		s.reads[key.Name]++
		s.mu.Unlock()
	}
	return s.Reader.Get(ctx, key, obj, opts...)
}

func (s *secretReads) of(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[name]
}

// readThroughManagerCache gives the world's authorizer controller a cache like the manager's
// (CacheOptions, its transform), started for the rest of the spec, and an uncached reader
// that counts Secret reads. inSync waits until the cache shows what the API server has of
// autoName and the Secrets named, as a reconcile woken by the last write would.
func (w *world) readThroughManagerCache() (cached client.Client, uncached *secretReads, inSync func(names ...string)) {
	options := CacheOptions("", nil)
	options.Scheme = scheme
	options.DefaultNamespaces = map[string]cache.Config{w.ns: {}}
	informers, err := cache.New(cfg, options)
	Expect(err).NotTo(HaveOccurred())
	cacheCtx, stopCache := context.WithCancel(ctx)
	DeferCleanup(stopCache)
	go func() {
		defer GinkgoRecover()
		Expect(informers.Start(cacheCtx)).To(Succeed())
	}()
	cached, err = client.New(cfg, client.Options{Scheme: scheme, Cache: &client.CacheOptions{Reader: informers}})
	Expect(err).NotTo(HaveOccurred())
	uncached = &secretReads{Reader: k8sClient, reads: map[string]int{}}
	w.authz.Client, w.authz.APIReader = cached, uncached
	inSync = func(names ...string) {
		a := &wechatv1alpha1.WeChatAuthorizer{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: autoName}, a)).To(Succeed())
		Eventually(func() string {
			c := &wechatv1alpha1.WeChatAuthorizer{}
			_ = cached.Get(ctx, client.ObjectKeyFromObject(a), c)
			return c.ResourceVersion
		}).Should(Equal(a.ResourceVersion))
		for _, name := range names {
			live := w.secret(name)
			Eventually(func() string {
				s := &corev1.Secret{}
				if err := cached.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: name}, s); apierrors.IsNotFound(err) {
					return ""
				}
				return s.ResourceVersion
			}).Should(Equal(live.ResourceVersion))
		}
	}
	return cached, uncached, inSync
}

// authorizedThroughManagerCache readies the platform, gives the authorizer controller the
// manager's cache and has an account authorize it (autoCreate makes autoName), up to its
// first token, with the cache in sync.
func (w *world) authorizedThroughManagerCache() (cached client.Client, uncached *secretReads, inSync func(names ...string)) {
	w.createComponent(func(c *wechatv1alpha1.WeChatComponent) { c.Spec.Authorizers.AutoCreate = true })
	w.reconcile()
	w.pushTicket()
	w.reconcile()
	By("giving the authorizer controller the manager's cache, with its transform")
	cached, uncached, inSync = w.readThroughManagerCache()
	By("authorizing: the component controller exchanges the code and creates the authorizer")
	_, err := w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID, AuthorizerAppID: testAuthorizerAppID})
	Expect(err).NotTo(HaveOccurred())
	w.reconcile()
	inSync(autoName + "-state")
	w.reconcileAuthorizer(autoName)
	inSync(autoName+"-state", autoName+"-token")
	return cached, uncached, inSync
}

var _ = Describe("WeChatAuthorizer controller reading through the manager's cache (state Secrets as views)", func() {
	It("caches no refresh token, reads the state Secret only when a refresh needs it, and still serves a newer token the state holds", func() {
		w := newWorld()
		defer w.close()
		cached, uncached, inSync := w.authorizedThroughManagerCache()
		stateName, tokenName := autoName+"-state", autoName+"-token"
		Expect(condition(w.authorizer(autoName).Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(BeEquivalentTo("True"))
		Expect(string(w.secret(stateName).Data[wechatv1alpha1.SecretKeyRefreshToken])).NotTo(BeEmpty())

		By("the cache holding the state Secret without its data")
		view := &corev1.Secret{}
		Expect(cached.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: stateName}, view)).To(Succeed())
		Expect(isStateView(view)).To(BeTrue(), "the cache holds a %q", view.Type)
		Expect(view.Data).To(BeEmpty(), "no refresh token, no access token in the cache")
		expiresAt, hasToken := stateViewExpiry(view)
		Expect(hasToken).To(BeTrue(), "the exchange stored a token in the state")
		Expect(expiresAt.Format(time.RFC3339)).To(Equal(string(w.secret(stateName).Data[stateKeyExpiresAt])))

		By("a reconcile with nothing due reading no Secret from the API server")
		reads := uncached.of(stateName)
		calls := w.sim.Calls(wxapi.APIAuthorizerToken, testAuthorizerAppID)
		w.clock.Step(time.Minute)
		w.reconcileAuthorizer(autoName)
		Expect(uncached.of(stateName)).To(Equal(reads))
		Expect(w.sim.Calls(wxapi.APIAuthorizerToken, testAuthorizerAppID)).To(Equal(calls))

		By("a due refresh reading the refresh token from the API server, once")
		inSync(stateName, tokenName)
		w.clock.SetTime(w.authorizer(autoName).Status.RefreshAt.Time)
		w.reconcileAuthorizer(autoName)
		Expect(uncached.of(stateName)).To(Equal(reads + 1))
		Expect(w.sim.Calls(wxapi.APIAuthorizerToken, testAuthorizerAppID)).To(Equal(calls + 1))
		served := string(w.secret(tokenName).Data[wechatv1alpha1.SecretKeyAccessToken])
		Expect(w.sim.TokenState(served)).To(Equal(0), "the refreshed token is valid")

		By("a newer token in the state than in the token Secret (a crash between the two writes) served without a call")
		inSync(stateName, tokenName)
		w.clock.Step(time.Minute) // a token issued later than the served one
		state := w.secret(stateName)
		componentToken := string(w.tokenSecret().Data[wechatv1alpha1.SecretKeyAccessToken])
		fresh, err := w.wechat.AuthorizerToken(ctx, componentToken, testComponentAppID, testAuthorizerAppID,
			string(state.Data[wechatv1alpha1.SecretKeyRefreshToken]))
		Expect(err).NotTo(HaveOccurred())
		now := w.clock.Now()
		token := newIssuedToken(fresh.AccessToken, testAuthorizerAppID, now, fresh.ExpiresIn)
		state.Data[stateKeyAccessToken] = []byte(token.accessToken)
		state.Data[stateKeyIssuedAt] = []byte(token.issuedAt.UTC().Format(time.RFC3339))
		state.Data[stateKeyExpiresAt] = []byte(token.expiresAt.UTC().Format(time.RFC3339))
		Expect(k8sClient.Update(ctx, state)).To(Succeed())
		inSync(stateName)
		calls = w.sim.Calls(wxapi.APIAuthorizerToken, testAuthorizerAppID)
		w.reconcileAuthorizer(autoName)
		Expect(string(w.secret(tokenName).Data[wechatv1alpha1.SecretKeyAccessToken])).To(Equal(fresh.AccessToken))
		Expect(w.sim.Calls(wxapi.APIAuthorizerToken, testAuthorizerAppID)).To(Equal(calls), "served from the state, not refreshed")

		By("a write given the view writing the Secret itself, its labels kept")
		inSync(stateName)
		view = &corev1.Secret{}
		Expect(cached.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: stateName}, view)).To(Succeed())
		Expect(isStateView(view)).To(BeTrue())
		_, err = writeState(ctx, k8sClient, uncached, w.authorizer(autoName), view, authorizerState{refreshToken: "rotated", token: token})
		Expect(err).NotTo(HaveOccurred())
		written := w.secret(stateName)
		Expect(string(written.Data[wechatv1alpha1.SecretKeyRefreshToken])).To(Equal("rotated"))
		Expect(written.Labels).To(HaveKeyWithValue(wechatv1alpha1.LabelManagedBy, wechatv1alpha1.ManagedByValue))
		Expect(written.Type).To(Equal(corev1.SecretTypeOpaque))

		By("the API server refusing a write of a view, which would empty the Secret")
		inSync(stateName)
		Expect(cached.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: stateName}, view)).To(Succeed())
		Expect(k8sClient.Update(ctx, view.DeepCopy())).NotTo(Succeed())
		Expect(string(w.secret(stateName).Data[wechatv1alpha1.SecretKeyRefreshToken])).To(Equal("rotated"))
	})
})
