/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

var _ = Describe("WeChatAuthorizer controller reading through the manager's cache (token Secrets as views)", func() {
	It("caches no access token, serves and refreshes without reading the token Secret, and keeps what others put on it", func() {
		w := newWorld()
		defer w.close()
		cached, uncached, inSync := w.authorizedThroughManagerCache()
		stateName, tokenName := autoName+"-state", autoName+"-token"
		cachedToken := func() *corev1.Secret {
			s := &corev1.Secret{}
			Expect(cached.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: tokenName}, s)).To(Succeed())
			return s
		}
		tokenCalls := func() int { return w.sim.Calls(wxapi.APIAuthorizerToken, testAuthorizerAppID) }

		By("another tool labelling and annotating the token Secret")
		// Another tool's edit, a merge patch: the operator's labels and annotations stay.
		Expect(k8sClient.Patch(ctx, w.secret(tokenName), client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"backup.example.com/tier":"gold"},"annotations":{"reloader.example.com/match":"true"}}}`)))).To(Succeed())
		inSync(stateName, tokenName)
		first := string(w.secret(tokenName).Data[wechatv1alpha1.SecretKeyAccessToken])
		Expect(w.sim.TokenState(first)).To(Equal(0))

		By("the cache holding the token Secret without its data, labels and annotations kept")
		view := cachedToken()
		Expect(isTokenView(view)).To(BeTrue(), "type %q", view.Type)
		Expect(view.Data).To(BeEmpty(), "no access token in the cache")
		Expect(view.Labels).To(HaveKeyWithValue("backup.example.com/tier", "gold"))
		Expect(view.Annotations).To(Equal(map[string]string{"reloader.example.com/match": "true"}),
			"another tool's annotation kept, the token's in the view's type")
		viewed, _ := viewedTokenOf(view)
		Expect(viewed.hash).To(Equal(tokenHash(first)))
		Expect(viewed.annotations(view)).To(Equal(w.secret(tokenName).Annotations), "the view stands for the Secret's annotations")
		served := readTokenSecret(view, testAuthorizerAppID)
		Expect(served.validAt(w.clock.Now())).To(BeTrue())
		Expect(served.known()).To(BeFalse())
		Expect(readTokenSecret(view, "wx00000000000000ff")).To(BeNil(), "a view is for its appid only")

		By("a reconcile with nothing due reading and writing no token Secret")
		reads, version, calls := uncached.of(tokenName), view.ResourceVersion, tokenCalls()
		w.clock.Step(time.Minute)
		w.reconcileAuthorizer(autoName)
		Expect(uncached.of(tokenName)).To(Equal(reads))
		Expect(w.secret(tokenName).ResourceVersion).To(Equal(version))
		Expect(tokenCalls()).To(Equal(calls))

		By("a due refresh writing the new token from the view, without reading the token Secret")
		inSync(stateName, tokenName)
		w.clock.SetTime(w.authorizer(autoName).Status.RefreshAt.Time)
		w.reconcileAuthorizer(autoName)
		Expect(tokenCalls()).To(Equal(calls + 1))
		Expect(uncached.of(tokenName)).To(Equal(reads), "the view is all the write needs")
		refreshed := w.secret(tokenName)
		second := string(refreshed.Data[wechatv1alpha1.SecretKeyAccessToken])
		Expect(second).NotTo(Equal(first))
		Expect(w.sim.TokenState(second)).To(Equal(0))
		Expect(refreshed.Type).To(Equal(corev1.SecretTypeOpaque))
		Expect(refreshed.Data).To(HaveKeyWithValue(wechatv1alpha1.SecretKeyAppID, []byte(testAuthorizerAppID)))
		Expect(refreshed.Annotations).To(HaveKeyWithValue(wechatv1alpha1.AnnotationTokenHash, tokenHash(second)))
		Expect(refreshed.Labels).To(HaveKeyWithValue("backup.example.com/tier", "gold"), "others' labels survive")
		Expect(refreshed.Annotations).To(HaveKeyWithValue("reloader.example.com/match", "true"), "others' annotations survive")

		By("a template change with nothing due reading the Secret once, for the token it keeps")
		inSync(stateName, tokenName)
		a := w.authorizer(autoName)
		patch := client.MergeFrom(a.DeepCopy())
		a.Spec.TokenSecret.Labels = map[string]string{"app": "shop"}
		Expect(k8sClient.Patch(ctx, a, patch)).To(Succeed())
		inSync(stateName, tokenName)
		calls = tokenCalls()
		w.reconcileAuthorizer(autoName)
		Expect(uncached.of(tokenName)).To(Equal(reads + 1))
		Expect(tokenCalls()).To(Equal(calls))
		relabelled := w.secret(tokenName)
		Expect(relabelled.Labels).To(HaveKeyWithValue("app", "shop"))
		Expect(relabelled.Labels).To(HaveKeyWithValue("backup.example.com/tier", "gold"))
		Expect(string(relabelled.Data[wechatv1alpha1.SecretKeyAccessToken])).To(Equal(second), "the served token, as it was")

		By("the API server refusing a write of a view as it is, which would empty the Secret")
		inSync(stateName, tokenName)
		stale := cachedToken()
		Expect(isTokenView(stale)).To(BeTrue())
		err := k8sClient.Update(ctx, stale.DeepCopy())
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "a Secret's type cannot change: %v", err)
		Expect(string(w.secret(tokenName).Data[wechatv1alpha1.SecretKeyAccessToken])).To(Equal(second))

		By("a Secret changed since the cache saw it being left alone, with an error that asks for a retry")
		edited := w.secret(tokenName)
		edited.Data[wechatv1alpha1.SecretKeyAccessToken] = []byte("edited-by-hand")
		Expect(k8sClient.Update(ctx, edited)).To(Succeed())
		writer := &tokenSecretWriter{client: k8sClient, reader: uncached, scheme: scheme}
		_, err = writer.ensure(ctx, w.authorizer(autoName), stale, tokenName, wechatv1alpha1.TokenSecretTemplate{},
			authorizerLabels(w.authorizer(autoName)), readTokenSecret(stale, testAuthorizerAppID))
		Expect(errors.Is(err, errTokenSecretChanged)).To(BeTrue(), "%v", err)
		Expect(string(w.secret(tokenName).Data[wechatv1alpha1.SecretKeyAccessToken])).To(Equal("edited-by-hand"))

		By("the cache holding a Secret whose data no longer matches its annotations whole")
		inSync(tokenName)
		Expect(isTokenView(cachedToken())).To(BeFalse())
		Expect(string(cachedToken().Data[wechatv1alpha1.SecretKeyAccessToken])).To(Equal("edited-by-hand"))

		By("API tickets asked for with the token itself, read from the API server, while the cache holds a view")
		restored := w.secret(tokenName)
		restored.Data[wechatv1alpha1.SecretKeyAccessToken] = []byte(second)
		Expect(k8sClient.Update(ctx, restored)).To(Succeed())
		w.setTickets(autoName, wechatv1alpha1.TicketJSAPI)
		inSync(stateName, tokenName)
		Expect(isTokenView(cachedToken())).To(BeTrue())
		tickets, calls := w.ticketCalls(), tokenCalls()
		w.reconcileAuthorizer(autoName)
		Expect(w.ticketCalls()).To(Equal(tickets+1), "one getticket, with a token WeChat accepts")
		Expect(tokenCalls()).To(Equal(calls), "not a refresh: getticket took the served token")
		withTicket := w.secret(tokenName)
		Expect(withTicket.Data).To(HaveKey("jsapi_ticket"))
		Expect(string(withTicket.Data[wechatv1alpha1.SecretKeyAccessToken])).To(Equal(second))
		Expect(withTicket.Labels).To(HaveKeyWithValue("backup.example.com/tier", "gold"))
		inSync(tokenName)
		Expect(isTokenView(cachedToken())).To(BeFalse(), "a Secret with tickets is cached whole")

	})
})
