/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

var _ = Describe("daily quotas and clear_quota (spec.quota.resetOnExhausted)", func() {
	var w *world
	AfterEach(func() { w.close() })

	clearCalls := func() int { return w.sim.Calls(wxapi.APIClearQuota, testComponentAppID) }
	ready := func() *metav1.Condition {
		return condition(w.component().Status.Conditions, wechatv1alpha1.ConditionReady)
	}
	drainEvents := func() []string {
		var recorded []string
		for len(w.recorder.Events) > 0 {
			recorded = append(recorded, <-w.recorder.Events)
		}
		return recorded
	}
	// restart replaces the component reconciler by one without memory, like a restarted manager.
	restart := func() {
		old := w.reconciler
		w.reconciler = &WeChatComponentReconciler{
			Client: old.Client, APIReader: old.APIReader, Scheme: old.Scheme, Recorder: old.Recorder,
			WeChat: old.WeChat, Clock: old.Clock, Random: old.Random,
			KeyringNamespace: old.KeyringNamespace, KeyringName: old.KeyringName,
		}
	}

	// start gives the world a component with its first token, and WeChat a daily quota of one
	// api_component_token call, which that first token used up.
	start := func(resetOnExhausted bool, simOpts ...func(*wxsim.Options)) {
		w = newWorld(func(c *worldConfig) {
			if len(simOpts) > 0 {
				c.simOptions = simOpts[0]
			}
		})
		w.sim.SetQuota(wxapi.APIComponentToken, 1)
		w.createComponent(func(c *wechatv1alpha1.WeChatComponent) { c.Spec.Quota.ResetOnExhausted = resetOnExhausted })
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		Expect(w.tokenSecret()).NotTo(BeNil())
		Expect(w.sim.Usage(testComponentAppID, wxapi.APIComponentToken)).To(Equal(1))
	}
	// beijingMidnight is the first midnight, Beijing time, after the simulation's start.
	beijingMidnight := func() time.Time { return nextBeijingMidnight(simStart) }

	It("backs off with QuotaExceeded and never calls clear_quota when not opted in", func() {
		start(false)
		good := string(w.tokenSecret().Data["access_token"])
		w.clock.SetTime(w.component().Status.RefreshAt.Time)
		var waits []time.Duration
		for i := 1; i <= 3; i++ {
			result := w.reconcile()
			c := w.component()
			Expect(c.Status.FailedAttempts).To(Equal(int32(i)))
			Expect(c.Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonQuotaExceeded))
			Expect(ready().Reason).To(Equal(wechatv1alpha1.ReasonQuotaExceeded))
			Expect(ready().Status).To(Equal(metav1.ConditionTrue), "the old token is still valid")
			waits = append(waits, result.RequeueAfter)
			w.clock.Step(result.RequeueAfter)
		}
		Expect(waits[0]).To(BeNumerically(">=", time.Second))
		Expect(waits[2]).To(BeNumerically(">", waits[1]), "backoff grows")
		Expect(clearCalls()).To(BeZero())
		Expect(w.component().Status.LastQuotaResetTime).To(BeNil())
		Expect(string(w.tokenSecret().Data["access_token"])).To(Equal(good))
	})

	It("resets once per Beijing day, retries at once, and may reset again after midnight", func() {
		start(true)
		good := string(w.tokenSecret().Data["access_token"])
		drainEvents()

		By("a 45009 at refresh time: one clear_quota, then the token")
		w.clock.SetTime(w.component().Status.RefreshAt.Time) // 17:45 in Beijing
		result := w.reconcile()
		c := w.component()
		Expect(clearCalls()).To(Equal(1))
		Expect(w.tokenCalls()).To(Equal(3), "the first token, the 45009, and the retry")
		Expect(c.Status.LastQuotaResetTime).NotTo(BeNil())
		Expect(c.Status.LastQuotaResetTime.Time).To(BeTemporally("==", w.clock.Now().Truncate(time.Second)))
		Expect(c.Status.FailedAttempts).To(BeZero())
		Expect(c.Status.LastFailureReason).To(BeEmpty())
		Expect(ready().Reason).To(Equal(wechatv1alpha1.ReasonTokenIssued))
		token := string(w.tokenSecret().Data["access_token"])
		Expect(token).NotTo(Equal(good))
		Expect(w.sim.TokenState(token)).To(Equal(0))
		Expect(result.RequeueAfter).To(Equal(2*time.Hour - 15*time.Minute))
		recorded := drainEvents()
		Expect(recorded).To(ContainElement(And(HavePrefix("Normal"), ContainSubstring(wechatv1alpha1.EventQuotaReset),
			ContainSubstring("api_component_token answered 45009"))))
		for _, secret := range []string{good, token, testAppSecret} {
			Expect(strings.Join(recorded, "\n")).NotTo(ContainSubstring(secret))
			Expect(w.logs.String()).NotTo(ContainSubstring(secret))
		}

		By("a second 45009 the same Beijing day, after a restart: no second reset")
		restart()
		w.clock.SetTime(c.Status.RefreshAt.Time) // 19:30 in Beijing
		for i := 1; i <= 2; i++ {
			result = w.reconcile()
			Expect(w.component().Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonQuotaExceeded))
			Expect(ready().Message).To(ContainSubstring("already reset with clear_quota today"))
			w.clock.Step(result.RequeueAfter)
		}
		Expect(clearCalls()).To(Equal(1))
		Expect(string(w.tokenSecret().Data["access_token"])).To(Equal(token), "the old token is kept")

		By("after midnight in Beijing: WeChat's quotas reset by themselves, and a reset is allowed again")
		w.clock.SetTime(beijingMidnight().Add(time.Minute))
		w.pushTicket()
		w.reconcile()
		Expect(w.component().Status.FailedAttempts).To(BeZero())
		Expect(clearCalls()).To(Equal(1), "the day's first call needed no reset")
		w.clock.SetTime(w.component().Status.RefreshAt.Time)
		w.reconcile()
		Expect(clearCalls()).To(Equal(2))
		c = w.component()
		Expect(c.Status.LastQuotaResetTime.Time).To(BeTemporally("==", w.clock.Now().Truncate(time.Second)))
		Expect(c.Status.FailedAttempts).To(BeZero())
		Expect(ready().Reason).To(Equal(wechatv1alpha1.ReasonTokenIssued))
	})

	It("records 48006 (resets used up for the month), backs off, and does not call clear_quota again", func() {
		start(true, func(o *wxsim.Options) { o.ClearQuotaPerMonth = 1 })

		By("using the month's one reset on the first day")
		w.clock.SetTime(w.component().Status.RefreshAt.Time)
		w.reconcile()
		Expect(clearCalls()).To(Equal(1))
		w.clock.SetTime(beijingMidnight().Add(time.Minute))
		w.pushTicket()
		w.reconcile()
		good := string(w.tokenSecret().Data["access_token"])
		drainEvents()

		By("a 45009 the next day: clear_quota answers 48006")
		w.clock.SetTime(w.component().Status.RefreshAt.Time)
		var waits []time.Duration
		for i := 1; i <= 4; i++ {
			result := w.reconcile()
			c := w.component()
			Expect(c.Status.FailedAttempts).To(Equal(int32(i)))
			Expect(c.Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonQuotaResetExhausted))
			r := ready()
			Expect(r.Status).To(Equal(metav1.ConditionTrue), "the old token is still valid")
			Expect(r.Reason).To(Equal(wechatv1alpha1.ReasonQuotaResetExhausted))
			Expect(r.Message).To(ContainSubstring("quota resets are used up"))
			Expect(r.Message).To(ContainSubstring("midnight Beijing time"))
			Expect(string(w.tokenSecret().Data["access_token"])).To(Equal(good))
			waits = append(waits, result.RequeueAfter)
			w.clock.Step(result.RequeueAfter)
		}
		Expect(clearCalls()).To(Equal(2), "one refused call, not one per retry")
		Expect(waits[1]).To(BeNumerically(">", waits[0]), "backoff grows")
		Expect(waits[3]).To(BeNumerically(">", waits[2]), "backoff grows")
		Expect(w.component().Status.LastQuotaResetTime.Time).To(BeTemporally("<", beijingMidnight()), "no reset is recorded")
		Expect(drainEvents()).To(ContainElement(And(HavePrefix("Warning"), ContainSubstring("48006"),
			ContainSubstring("quota resets are used up"))))
	})

	Describe("an authorizer's call answering 45009", func() {
		const second = "shop-2"
		secondAppID := "wx00000000000000b2"

		// setup: a platform whose api_authorizer_token quota (one call a day, counted per
		// platform) is used up by the first of two accounts imported from Git.
		setup := func(resetOnExhausted bool) {
			w = newWorld()
			w.createComponent(func(c *wechatv1alpha1.WeChatComponent) { c.Spec.Quota.ResetOnExhausted = resetOnExhausted })
			w.reconcile()
			w.pushTicket()
			w.reconcile()
			w.sim.SetQuota(wxapi.APIAuthorizerToken, 1)
			for name, appID := range map[string]string{"shop": testAuthorizerAppID, second: secondAppID} {
				Expect(w.sim.PutAuthorizer(wxsim.AuthorizerSeed{ComponentAppID: testComponentAppID, AppID: appID, Authorized: true})).To(Succeed())
				Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
					ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns},
					Spec: wechatv1alpha1.WeChatAuthorizerSpec{
						ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: appID,
					},
				})).To(Succeed())
			}
			w.reconcileAuthorizer("shop")
			Expect(condition(w.authorizer("shop").Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
			w.reconcileAuthorizer(second)
			a := w.authorizer(second)
			Expect(a.Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonQuotaExceeded))
			Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
		}

		It("asks the component, which resets, and the authorizer then gets its token", func() {
			setup(true)
			c := w.component()
			Expect(c.Annotations).To(HaveKeyWithValue(wechatv1alpha1.AnnotationQuotaResetRequestedAt, w.clock.Now().UTC().Format(time.RFC3339)))
			Expect(condition(w.authorizer(second).Status.Conditions, wechatv1alpha1.ConditionReady).Message).
				To(ContainSubstring(`asked WeChatComponent "platform" to reset the quota`))
			Expect(clearCalls()).To(BeZero(), "only the component controller calls clear_quota")
			drainEvents()

			By("the component controller, woken by the annotation, resetting the quotas")
			before := w.component()
			w.reconcile()
			c = w.component()
			Expect(clearCalls()).To(Equal(1))
			Expect(c.Status.LastQuotaResetTime).NotTo(BeNil())
			Expect(w.tokenCalls()).To(Equal(1), "the component's own token needed no refresh")
			Expect(drainEvents()).To(ContainElement(And(HavePrefix("Normal"), ContainSubstring(wechatv1alpha1.EventQuotaReset))))
			Expect(componentTokenChanged.Update(event.UpdateEvent{ObjectOld: before, ObjectNew: c})).To(BeTrue(), "the reset wakes the authorizers")

			By("the authorizer, woken by the reset, refreshing")
			w.reconcileAuthorizer(second)
			a := w.authorizer(second)
			Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
			Expect(a.Status.FailedAttempts).To(BeZero())
			Expect(w.sim.TokenState(string(w.secret(second + "-token").Data["access_token"]))).To(Equal(0))

			By("the same request, seen again, not resetting twice")
			w.reconcile()
			Expect(clearCalls()).To(Equal(1))

			By("another 45009 the same day: the authorizer no longer asks")
			w.sim.AddFault(wxsim.Fault{API: wxapi.APIAuthorizerToken, ErrCode: wxapi.CodeQuotaReached})
			w.clock.SetTime(w.authorizer("shop").Status.RefreshAt.Time)
			w.reconcileAuthorizer("shop")
			Expect(w.authorizer("shop").Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonQuotaExceeded))
			Expect(w.component().Annotations[wechatv1alpha1.AnnotationQuotaResetRequestedAt]).To(Equal(c.Annotations[wechatv1alpha1.AnnotationQuotaResetRequestedAt]))
			w.reconcile()
			Expect(clearCalls()).To(Equal(1))
		})

		It("does not ask a component that did not opt in", func() {
			setup(false)
			Expect(w.component().Annotations).NotTo(HaveKey(wechatv1alpha1.AnnotationQuotaResetRequestedAt))
			w.reconcile()
			Expect(clearCalls()).To(BeZero())
			Expect(w.component().Status.LastQuotaResetTime).To(BeNil())
		})
	})
})
