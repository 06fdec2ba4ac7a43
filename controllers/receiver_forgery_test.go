/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// The receiver may patch a component's status (receiver_rbac_test.go), so whoever holds its
// credentials can write any status.pendingAuthorizationCodes, Source "Push" and an
// authorizerAppID of their choosing included. The manager must not take that as WeChat's word:
// it creates a WeChatAuthorizer only for the account api_query_auth names.
var _ = Describe("pending codes written by someone holding the receiver's credentials", func() {
	var w *world
	AfterEach(func() { w.close() })

	platformReady := func() {
		w = newWorld()
		w.createComponent(func(c *wechatv1alpha1.WeChatComponent) { c.Spec.Authorizers.AutoCreate = true })
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		Expect(w.tokenSecret()).NotTo(BeNil())
	}
	writePending := func(codes ...wechatv1alpha1.AuthorizationCode) {
		c := w.component()
		c.Status.PendingAuthorizationCodes = codes
		Expect(k8sClient.Status().Update(ctx, c)).To(Succeed())
	}
	authorizers := func() []string {
		list := &wechatv1alpha1.WeChatAuthorizerList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(w.ns))).To(Succeed())
		var names []string
		for _, a := range list.Items {
			names = append(names, a.Name)
		}
		return names
	}

	It("creates no WeChatAuthorizer for made-up accounts", func() {
		platformReady()
		expires := metav1.NewTime(w.clock.Now().Add(time.Hour).Truncate(time.Second))
		var forged []wechatv1alpha1.AuthorizationCode
		for i := range 16 {
			forged = append(forged, wechatv1alpha1.AuthorizationCode{
				Code: fmt.Sprintf("queryauthcode@@@forged%02d", i), ExpiresAt: expires,
				Source: wechatv1alpha1.AuthorizationCodeFromPush, AuthorizerAppID: fmt.Sprintf("wx%016x", 0xbad00+i)})
		}
		writePending(forged...)
		result := w.reconcile()
		Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(DefaultCodeBurst), "the code budget's burst first")
		// The rest as the budget refills, at the times the reconcile asks for.
		for i := 0; i < 20 && len(w.component().Status.PendingAuthorizationCodes) > 0; i++ {
			Expect(result.RequeueAfter).To(BeNumerically("<=", DefaultCodeInterval))
			w.clock.Step(result.RequeueAfter)
			result = w.reconcile()
		}

		Expect(authorizers()).To(BeEmpty(), "no object for an account WeChat did not confirm")
		Expect(w.component().Status.PendingAuthorizationCodes).To(BeEmpty(), "codes WeChat refuses are dropped")
		Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(16), "one exchange per code, no retry")
	})

	It("creates the authorizer of the account WeChat names, not the one the status claims", func() {
		platformReady()
		// A genuine code whose push did not get through.
		Expect(w.sim.SetReceiverURL(testComponentAppID, "http://127.0.0.1:1/unreachable")).To(Succeed())
		res, err := w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID, AuthorizerAppID: testAuthorizerAppID})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Push.Delivered).To(BeFalse())
		claimed := "wx00000000000bad01"
		writePending(wechatv1alpha1.AuthorizationCode{Code: res.AuthCode,
			ExpiresAt: metav1.NewTime(w.clock.Now().Add(time.Hour).Truncate(time.Second)),
			Source:    wechatv1alpha1.AuthorizationCodeFromPush, AuthorizerAppID: claimed})
		w.reconcile()

		Expect(authorizers()).To(ConsistOf(autoName))
		Expect(w.component().Status.PendingAuthorizationCodes).To(BeEmpty())
		w.reconcileAuthorizer(autoName)
		a := w.authorizer(autoName)
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		Expect(a.Status.AuthorizedAt).NotTo(BeNil())
		Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(1))
	})

	It("sends no customer-service message from a production account for a test reply it did not get from WeChat", func() {
		platformReady()
		res, err := w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID, AuthorizerAppID: testAuthorizerAppID})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Push.Delivered).To(BeTrue())
		w.reconcile() // the account's authorizer, with a valid access token in its state Secret
		w.reconcileAuthorizer(autoName)
		Expect(condition(w.authorizer(autoName).Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))

		By("status.pendingTestReplies naming the production account, a follower and a text of the writer's choosing")
		c := w.component()
		now := metav1.NewTime(w.clock.Now().Truncate(time.Second))
		c.Status.PendingTestReplies = []wechatv1alpha1.TestReply{{AuthorizerAppID: testAuthorizerAppID,
			ToUser: "oVictim0123456789abcdefghijk", Code: "Your account is locked, log in again at https://evil.example/",
			ReceivedAt: now, ExpiresAt: metav1.NewTime(now.Add(time.Hour))}}
		Expect(k8sClient.Status().Update(ctx, c)).To(Succeed())
		w.reconcile()
		Expect(w.sim.CustomMessages()).To(BeEmpty(), "the account's token was used to message a follower")
	})
})
