/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

var _ = Describe("spec.authorizers.discover with the simulator", func() {
	var w *world
	AfterEach(func() { w.close() })

	platformReady := func() {
		w = newWorld()
		w.createComponent()
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		Expect(w.tokenSecret()).NotTo(BeNil())
	}
	// seed makes n accounts that authorized the platform before the operator existed.
	seed := func(first, n int) []string {
		ids := make([]string, n)
		for i := range n {
			ids[i] = fmt.Sprintf("wx%016x", 0xd000+first+i)
			Expect(w.sim.PutAuthorizer(wxsim.AuthorizerSeed{ComponentAppID: testComponentAppID, AppID: ids[i], Authorized: true})).To(Succeed())
		}
		return ids
	}
	discover := func(pass string) {
		c := w.component()
		patch := client.MergeFrom(c.DeepCopy())
		c.Spec.Authorizers.Discover = pass
		Expect(k8sClient.Patch(ctx, c, patch)).To(Succeed())
	}
	// runPass reconciles the component, as its requeues would, until the pass completes.
	runPass := func() *wechatv1alpha1.DiscoveryStatus {
		for range 10 {
			w.reconcile()
			if d := w.component().Status.Discovery; d != nil && d.CompletedAt != nil {
				return d
			}
			w.clock.Step(discoveryPagePause) // the pause between two pages
		}
		Fail("the discovery pass did not complete in 10 reconciles")
		return nil
	}
	listCalls := func() int { return w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID) }
	discovered := func() *metav1.Condition {
		return condition(w.component().Status.Conditions, wechatv1alpha1.ConditionDiscovered)
	}

	It("creates an authorizer for every listed account in one pass of ceil(N/500) pages, refresh tokens kept, existing ones untouched", func() {
		platformReady()
		var recorded []string // every Event, searched for refresh tokens at the end
		drain := func() []string {
			e := drainEvents(w)
			recorded = append(recorded, e...)
			return e
		}
		const n = 501 // two pages
		ids := seed(0, n)
		existing := &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: w.ns, Labels: map[string]string{"team": "shop"}},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{
				ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: ids[0],
			},
		}
		Expect(k8sClient.Create(ctx, existing)).To(Succeed())

		discover("initial")
		d := runPass()
		Expect(listCalls()).To(Equal(2), "one pass over 501 accounts is two pages")
		Expect(d.Pass).To(Equal("initial"))
		Expect(d.Found).To(BeEquivalentTo(n))
		Expect(d.Created).To(BeEquivalentTo(n - 1))
		Expect(d.Existing).To(BeEquivalentTo(1))
		Expect(d.RefreshTokensMissing).To(BeEquivalentTo(0))
		Expect(d.NextOffset).To(BeEquivalentTo(0))
		Expect(discovered().Status).To(Equal(metav1.ConditionTrue))
		Expect(discovered().Reason).To(Equal(wechatv1alpha1.ReasonDiscoveryCompleted))

		By("naming them as autoCreate does, with each refresh token in a state Secret the authorizer owns")
		for _, id := range []string{ids[1], ids[250], ids[n-1]} {
			name := wechatv1alpha1.AutoCreatedAuthorizerName("platform", id)
			a := w.authorizer(name)
			Expect(a.Spec.AppID).To(Equal(id))
			Expect(a.Labels).To(HaveKeyWithValue(wechatv1alpha1.LabelComponent, "platform"))
			Expect(a.Annotations).NotTo(HaveKey(wechatv1alpha1.AnnotationRefreshTokenMissing))
			rt, _ := w.sim.RefreshToken(testComponentAppID, id)
			state := w.secret(name + "-state")
			Expect(string(state.Data[wechatv1alpha1.SecretKeyRefreshToken])).To(Equal(rt))
			Expect(metav1.IsControlledBy(state, a)).To(BeTrue(), "the state Secret goes with its authorizer")
		}
		all := &wechatv1alpha1.WeChatAuthorizerList{}
		Expect(k8sClient.List(ctx, all, client.InNamespace(w.ns))).To(Succeed())
		Expect(all.Items).To(HaveLen(n), "one per account, none for the account that had one")

		By("leaving the existing authorizer as it was")
		after := w.authorizer("shop")
		Expect(after.ResourceVersion).To(Equal(existing.ResourceVersion))
		Expect(w.secret(wechatv1alpha1.AutoCreatedAuthorizerName("platform", ids[0]) + "-state")).To(BeNil())

		By("getting tokens for the discovered authorizers without reading the list again, and without an Event each")
		Expect(drain()).To(ContainElement(ContainSubstring(wechatv1alpha1.EventAuthorizersDiscovered)), "the pass reports them all at once")
		for _, id := range []string{ids[1], ids[n-1]} {
			name := wechatv1alpha1.AutoCreatedAuthorizerName("platform", id)
			w.reconcileAuthorizer(name)
			ready := condition(w.authorizer(name).Status.Conditions, wechatv1alpha1.ConditionReady)
			Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			Expect(ready.Reason).To(Equal(wechatv1alpha1.ReasonTokenIssued))
			Expect(w.sim.TokenState(string(w.secret(name + "-token").Data["access_token"]))).To(Equal(0))
		}
		Expect(listCalls()).To(Equal(2))
		Expect(drain()).NotTo(ContainElement(ContainSubstring(wechatv1alpha1.EventTokenIssued)))

		By("not listing again over a simulated day")
		for range 24 {
			w.clock.Step(time.Hour)
			w.pushTicket()
			w.reconcile()
		}
		Expect(listCalls()).To(Equal(2))

		By("running another pass when the value changes")
		late := seed(n, 1)
		discover("second")
		d = runPass()
		Expect(listCalls()).To(Equal(4))
		Expect(d.Pass).To(Equal("second"))
		Expect(d.Found).To(BeEquivalentTo(n + 1))
		Expect(d.Created).To(BeEquivalentTo(1))
		Expect(d.Existing).To(BeEquivalentTo(n))
		Expect(w.authorizer(wechatv1alpha1.AutoCreatedAuthorizerName("platform", late[0])).Spec.AppID).To(Equal(late[0]))

		By("recording the first token of an authorizer someone applied")
		drain()
		w.reconcileAuthorizer("shop")
		Expect(drain()).To(ContainElement(ContainSubstring(wechatv1alpha1.EventTokenIssued)))

		By("keeping every refresh token out of logs, Events and the component's status")
		events := strings.Join(append(recorded, drain()...), "\n")
		status := fmt.Sprintf("%+v", w.component().Status)
		for _, id := range []string{ids[1], ids[n-1], late[0]} {
			rt, _ := w.sim.RefreshToken(testComponentAppID, id)
			Expect(w.logs.String()).NotTo(ContainSubstring(rt))
			Expect(events).NotTo(ContainSubstring(rt))
			Expect(status).NotTo(ContainSubstring(rt))
		}
	})

	It("says when the list omits refresh tokens, and does not read it again for them", func() {
		platformReady()
		Expect(w.sim.SetListRefreshTokens(testComponentAppID, false)).To(Succeed())
		ids := seed(0, 3)
		discover("initial")
		d := runPass()
		Expect(d.Created).To(BeEquivalentTo(3))
		Expect(d.RefreshTokensMissing).To(BeEquivalentTo(3))
		cond := discovered()
		Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		Expect(cond.Reason).To(Equal(wechatv1alpha1.ReasonRefreshTokensMissing))
		Expect(cond.Message).To(ContainSubstring("3 of them without a refresh token"))
		Expect(cond.Message).To(ContainSubstring("kubectl wechat import"))
		Expect(listCalls()).To(Equal(1))

		name := wechatv1alpha1.AutoCreatedAuthorizerName("platform", ids[0])
		Expect(w.authorizer(name).Annotations).To(HaveKey(wechatv1alpha1.AnnotationRefreshTokenMissing))
		Expect(w.secret(name + "-state")).To(BeNil())
		result := w.reconcileAuthorizer(name)
		Expect(result.RequeueAfter).To(BeZero(), "it waits for an import or an authorization, not for a timer")
		r := condition(w.authorizer(name).Status.Conditions, wechatv1alpha1.ConditionReady)
		Expect(r.Status).To(Equal(metav1.ConditionFalse))
		Expect(r.Reason).To(Equal(wechatv1alpha1.ReasonRefreshTokenMissing))
		Expect(r.Message).To(ContainSubstring("kubectl wechat import"))
		Expect(condition(w.authorizer(name).Status.Conditions, wechatv1alpha1.ConditionAuthorized).Reason).To(Equal(wechatv1alpha1.ReasonRefreshTokenMissing))

		By("not looping: the list call count stays flat over simulated hours")
		for range 6 {
			w.clock.Step(time.Hour)
			w.pushTicket()
			w.reconcile()
			for _, id := range ids {
				w.reconcileAuthorizer(wechatv1alpha1.AutoCreatedAuthorizerName("platform", id))
			}
		}
		Expect(listCalls()).To(Equal(1))

		By("becoming Ready once the refresh token is imported")
		rt, _ := w.sim.RefreshToken(testComponentAppID, ids[0])
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "imported", Namespace: w.ns,
				Annotations: releasedTo(wechatv1alpha1.KindWeChatAuthorizer + "/" + name)},
			StringData: map[string]string{"refresh_token": rt},
		})).To(Succeed())
		a := w.authorizer(name)
		patch := client.MergeFrom(a.DeepCopy())
		a.Spec.RefreshTokenSecretRef = &wechatv1alpha1.SecretKeyReference{Name: "imported"}
		Expect(k8sClient.Patch(ctx, a, patch)).To(Succeed())
		w.reconcileAuthorizer(name)
		Expect(condition(w.authorizer(name).Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		Expect(listCalls()).To(Equal(1))
	})

	It("backs off a failing page read and resumes the pass where it was", func() {
		platformReady()
		seed(0, 2)
		w.sim.AddFault(wxsim.Fault{API: wxapi.APIGetAuthorizerList, ErrCode: 45009, Count: 2})
		discover("initial")
		w.reconcile()
		Expect(listCalls()).To(Equal(1))
		cond := discovered()
		Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		Expect(cond.Reason).To(Equal(wechatv1alpha1.ReasonQuotaExceeded))
		d := w.component().Status.Discovery
		Expect(d.FailedAttempts).To(BeEquivalentTo(1))
		Expect(d.RetryAt).NotTo(BeNil())
		first := d.RetryAt.Sub(w.clock.Now())

		By("calling nothing before the retry time, whatever wakes the component")
		w.pushTicket()
		w.reconcile()
		w.reconcile()
		Expect(listCalls()).To(Equal(1))

		By("doubling the wait after a second failure")
		w.clock.Step(first + time.Second)
		w.reconcile()
		Expect(listCalls()).To(Equal(2))
		d = w.component().Status.Discovery
		Expect(d.FailedAttempts).To(BeEquivalentTo(2))
		Expect(d.RetryAt.Sub(w.clock.Now())).To(BeNumerically(">", first))

		By("completing once WeChat answers")
		w.clock.Step(d.RetryAt.Sub(w.clock.Now()) + time.Second)
		d = runPass()
		Expect(listCalls()).To(Equal(3))
		Expect(d.Created).To(BeEquivalentTo(2))
		Expect(d.FailedAttempts).To(BeEquivalentTo(0))
		Expect(discovered().Status).To(Equal(metav1.ConditionTrue))
	})
})

// drainEvents returns the Events the fake recorder holds.
func drainEvents(w *world) []string {
	var out []string
	for {
		select {
		case e := <-w.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}
