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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// eventsWith drains the recorder and returns the Events whose text contains reason.
func (w *world) eventsWith(reason string) []string {
	var out []string
	for len(w.recorder.Events) > 0 {
		if e := <-w.recorder.Events; strings.Contains(e, " "+reason+" ") {
			out = append(out, e)
		}
	}
	return out
}

// createAuthorizer creates the seeded account's WeChatAuthorizer with mutate applied.
func (w *world) createAuthorizer(mutate func(*wechatv1alpha1.WeChatAuthorizerSpec)) {
	a := &wechatv1alpha1.WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Name: seededAuthorizer, Namespace: w.ns},
		Spec: wechatv1alpha1.WeChatAuthorizerSpec{
			ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: testAuthorizerAppID,
		},
	}
	mutate(&a.Spec)
	Expect(k8sClient.Create(ctx, a)).To(Succeed())
}

// updateAuthorizerSpec changes the spec, as a user applying a new manifest would.
func (w *world) updateAuthorizerSpec(mutate func(*wechatv1alpha1.WeChatAuthorizerSpec)) {
	a := w.authorizer(seededAuthorizer)
	patch := client.MergeFrom(a.DeepCopy())
	mutate(&a.Spec)
	Expect(k8sClient.Patch(ctx, a, patch)).To(Succeed())
}

func (w *world) simOption(name string) int {
	opts, err := w.sim.AuthorizerOptions(testComponentAppID, testAuthorizerAppID)
	Expect(err).NotTo(HaveOccurred())
	return opts[name]
}

func (w *world) optionCalls() (get, set int) {
	return w.sim.Calls(wxapi.APIGetAuthorizerOption, testAuthorizerAppID), w.sim.Calls(wxapi.APISetAuthorizerOption, testAuthorizerAppID)
}

var _ = Describe("account options as desired state", func() {
	var w *world
	AfterEach(func() { w.close() })

	optionsApplied := func() *metav1.Condition {
		return condition(w.authorizer(seededAuthorizer).Status.Conditions, wechatv1alpha1.ConditionOptionsApplied)
	}

	It("sets only the options that differ, once, leaves unset ones alone, and puts back a change made in WeChat", func() {
		w = newWorld(withAccounts(seededAccount))
		w.readyPlatform()
		// Someone set location_report in the console; spec does not manage it.
		Expect(w.sim.SetAuthorizerOption(testComponentAppID, testAuthorizerAppID, wxapi.OptionLocationReport, 2)).To(Succeed())
		w.createAuthorizer(func(s *wechatv1alpha1.WeChatAuthorizerSpec) {
			s.Options = &wechatv1alpha1.AuthorizerOptions{CustomerService: ptr.To[int32](1), VoiceRecognize: ptr.To[int32](0)}
		})
		result := w.reconcileAuthorizer(seededAuthorizer)

		By("reading both managed options and setting the one that differs")
		get, set := w.optionCalls()
		Expect(get).To(Equal(2))
		Expect(set).To(Equal(1), "voice_recognize is 0 already: not set")
		Expect(w.simOption(wxapi.OptionCustomerService)).To(Equal(1))
		Expect(w.simOption(wxapi.OptionLocationReport)).To(Equal(2), "an option spec does not set is not managed")
		a := w.authorizer(seededAuthorizer)
		Expect(a.Status.Options.CustomerService).To(Equal(ptr.To[int32](1)))
		Expect(a.Status.Options.VoiceRecognize).To(Equal(ptr.To[int32](0)))
		Expect(a.Status.Options.LocationReport).To(BeNil(), "status shows only managed options")
		Expect(a.Status.Options.NextCheckAt.Time).To(BeTemporally("==", w.clock.Now().Add(optionsCheckInterval).Truncate(time.Second)))
		c := optionsApplied()
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Reason).To(Equal(wechatv1alpha1.ReasonOptionsInSync))
		Expect(c.ObservedGeneration).To(Equal(a.Generation))
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		Expect(w.eventsWith(wechatv1alpha1.EventOptionSet)).To(ConsistOf(ContainSubstring("customer_service set to 1 (WeChat had 0)")))
		Expect(result.RequeueAfter).To(BeNumerically("<=", optionsCheckInterval))

		By("not calling again on wake-ups before the next check")
		w.reconcileAuthorizer(seededAuthorizer)
		w.clock.Step(time.Hour)
		w.reconcileAuthorizer(seededAuthorizer)
		get, set = w.optionCalls()
		Expect([]int{get, set}).To(Equal([]int{2, 1}), "no calls before nextCheckAt")

		By("putting back a change made in WeChat at the next check")
		Expect(w.sim.SetAuthorizerOption(testComponentAppID, testAuthorizerAppID, wxapi.OptionCustomerService, 0)).To(Succeed())
		w.clock.SetTime(a.Status.Options.NextCheckAt.Time)
		w.reconcile() // the component's token has been refreshed meanwhile
		w.reconcileAuthorizer(seededAuthorizer)
		Expect(w.simOption(wxapi.OptionCustomerService)).To(Equal(1), "drift corrected")
		get, set = w.optionCalls()
		Expect([]int{get, set}).To(Equal([]int{4, 2}))
		Expect(w.eventsWith(wechatv1alpha1.EventOptionSet)).To(ConsistOf(ContainSubstring("customer_service set to 1 (WeChat had 0)")))

		By("acting on a spec change at once")
		w.clock.Step(time.Minute)
		w.updateAuthorizerSpec(func(s *wechatv1alpha1.WeChatAuthorizerSpec) { s.Options.VoiceRecognize = ptr.To[int32](1) })
		w.reconcileAuthorizer(seededAuthorizer)
		Expect(w.simOption(wxapi.OptionVoiceRecognize)).To(Equal(1))
		Expect(optionsApplied().ObservedGeneration).To(Equal(w.authorizer(seededAuthorizer).Generation))

		By("dropping the condition and status.options when spec stops managing options, and calling no more")
		w.updateAuthorizerSpec(func(s *wechatv1alpha1.WeChatAuthorizerSpec) { s.Options = nil })
		get, set = w.optionCalls()
		w.clock.Step(7 * time.Hour)
		w.pushTicket()
		w.reconcile()
		w.reconcileAuthorizer(seededAuthorizer)
		a = w.authorizer(seededAuthorizer)
		Expect(a.Status.Options).To(BeNil())
		Expect(optionsApplied()).To(BeNil())
		getAfter, setAfter := w.optionCalls()
		Expect([]int{getAfter, setAfter}).To(Equal([]int{get, set}))
	})

	It("says OptionsPending until the account has a token", func() {
		w = newWorld(withAccounts(seededAccount))
		w.createComponent() // no ticket yet: no component token
		w.reconcile()
		w.createAuthorizer(func(s *wechatv1alpha1.WeChatAuthorizerSpec) {
			s.Options = &wechatv1alpha1.AuthorizerOptions{CustomerService: ptr.To[int32](1)}
		})
		w.reconcileAuthorizer(seededAuthorizer)
		c := optionsApplied()
		Expect(c.Status).To(Equal(metav1.ConditionUnknown))
		Expect(c.Reason).To(Equal(wechatv1alpha1.ReasonOptionsPending))
		get, set := w.optionCalls()
		Expect([]int{get, set}).To(Equal([]int{0, 0}))
	})

	type optionErrcode struct {
		api    string
		code   int
		reason string
		human  bool
	}
	for _, tc := range []optionErrcode{
		{wxapi.APIGetAuthorizerOption, wxapi.CodeUnauthorizedAPI, wechatv1alpha1.ReasonAPIUnauthorized, true},
		{wxapi.APISetAuthorizerOption, wxapi.CodeAPISetUnauthorized, wechatv1alpha1.ReasonAPISetUnauthorized, true},
		{wxapi.APISetAuthorizerOption, wxapi.CodeInvalidArgs, wechatv1alpha1.ReasonOptionRejected, true},
		{wxapi.APIGetAuthorizerOption, wxapi.CodeBusy, wechatv1alpha1.ReasonWeChatBusy, false},
	} {
		It(fmt.Sprintf("surfaces %d from %s as %s and calls no more often than the backoff allows", tc.code, tc.api, tc.reason), func() {
			w = newWorld(withAccounts(seededAccount))
			w.readyPlatform()
			w.sim.AddFault(wxsim.Fault{API: tc.api, AppID: testAuthorizerAppID, ErrCode: tc.code, Count: 1 << 30})
			w.createAuthorizer(func(s *wechatv1alpha1.WeChatAuthorizerSpec) {
				s.Options = &wechatv1alpha1.AuthorizerOptions{CustomerService: ptr.To[int32](1)}
			})
			calls := func() int {
				return w.sim.Calls(tc.api, testAuthorizerAppID)
			}
			base := refresh.APIFailure
			if tc.human {
				base = refresh.ConfigurationError
			}
			backoff := refresh.Backoff{Base: base.Base, Cap: optionsRetryCap}
			hours := 3 * time.Hour
			allowed := callsAllowed(backoff, hours)
			start := w.clock.Now()
			nextC := start
			// Wake-ups every minute (token refreshes, pushes, other events), on top of the
			// requeues the reconciler asks for, which are sooner or later than a minute.
			for w.clock.Now().Before(start.Add(hours)) {
				if !w.clock.Now().Before(nextC) {
					w.pushTicket()
					nextC = w.clock.Now().Add(w.reconcile().RequeueAfter)
				}
				requeue := w.reconcileAuthorizer(seededAuthorizer).RequeueAfter
				Expect(requeue).To(BeNumerically(">", 0))
				Expect(calls()).To(BeNumerically("<=", allowed), "more calls than the backoff allows by %v", w.clock.Now().Sub(start))
				w.clock.Step(min(requeue, time.Minute))
			}
			Expect(calls()).To(BeNumerically(">=", allowed/2), "and kept trying")

			a := w.authorizer(seededAuthorizer)
			c := condition(a.Status.Conditions, wechatv1alpha1.ConditionOptionsApplied)
			Expect(c.Status).To(Equal(metav1.ConditionFalse))
			Expect(c.Reason).To(Equal(tc.reason))
			Expect(c.Message).To(ContainSubstring(fmt.Sprintf("errcode %d", tc.code)))
			Expect(c.Message).To(ContainSubstring("next attempt at"))
			Expect(a.Status.Options.FailedAttempts).To(BeNumerically(">=", 2))
			Expect(a.Status.Options.NextCheckAt.Time).To(BeTemporally(">", w.clock.Now()))
			By("leaving the token alone: Ready True, not Stalled, kstatus Current")
			ready := condition(a.Status.Conditions, wechatv1alpha1.ConditionReady)
			Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			Expect(ready.Reason).To(Equal(wechatv1alpha1.ReasonTokenIssued))
			Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionStalled)).To(BeNil())
			Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionReconciling)).To(BeNil())
			Expect(w.eventsWith(wechatv1alpha1.EventOptionsFailed)).To(HaveLen(1), "one Event per run of failures")

			By("trying again at once when the spec changes")
			before := calls()
			w.sim.ClearFaults()
			w.updateAuthorizerSpec(func(s *wechatv1alpha1.WeChatAuthorizerSpec) { s.Options.VoiceRecognize = ptr.To[int32](1) })
			w.reconcileAuthorizer(seededAuthorizer)
			Expect(calls()).To(BeNumerically(">", before))
			c = condition(w.authorizer(seededAuthorizer).Status.Conditions, wechatv1alpha1.ConditionOptionsApplied)
			Expect(c.Status).To(Equal(metav1.ConditionTrue))
			Expect(w.authorizer(seededAuthorizer).Status.Options.FailedAttempts).To(BeZero())
		})
	}
})

var _ = Describe("required permission sets", func() {
	var w *world
	AfterEach(func() { w.close() })

	permissions := func() *metav1.Condition {
		return condition(w.authorizer(seededAuthorizer).Status.Conditions, wechatv1alpha1.ConditionPermissionsGranted)
	}

	It("says which sets went missing and what to do, once, and when they are granted again", func() {
		w = newWorld(withAccounts(seededAccount)) // func_info 1, 15, 4
		w.readyPlatform()
		w.createAuthorizer(func(s *wechatv1alpha1.WeChatAuthorizerSpec) { s.RequiredFuncInfo = []int32{1, 15} })
		w.reconcileAuthorizer(seededAuthorizer)
		c := permissions()
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Reason).To(Equal(wechatv1alpha1.ReasonPermissionsGranted))
		Expect(w.eventsWith(wechatv1alpha1.EventPermissionsRestored)).To(BeEmpty(), "nothing was restored")

		By("another platform taking the message management set: found at the daily info refresh")
		Expect(w.sim.SetFuncInfo(testComponentAppID, testAuthorizerAppID, []int{15, 4})).To(Succeed())
		w.clock.SetTime(w.authorizer(seededAuthorizer).Status.Info.UpdatedAt.Add(infoRefreshInterval))
		w.pushTicket()
		w.reconcile()
		w.reconcileAuthorizer(seededAuthorizer)
		a := w.authorizer(seededAuthorizer)
		Expect(a.Status.Info.FuncInfo).To(ConsistOf(int32(15), int32(4)))
		c = permissions()
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(wechatv1alpha1.ReasonPermissionsMissing))
		Expect(c.Message).To(ContainSubstring("permission sets 1 (message management) that"))
		Expect(c.Message).To(ContainSubstring("must authorize the platform again"))
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue), "the token still works")
		Expect(w.eventsWith(wechatv1alpha1.EventPermissionsMissing)).To(ConsistOf(HavePrefix("Warning PermissionsMissing")))

		By("recording no second Event while nothing changes")
		w.clock.Step(time.Minute)
		w.reconcileAuthorizer(seededAuthorizer)
		Expect(w.eventsWith(wechatv1alpha1.EventPermissionsMissing)).To(BeEmpty())

		By("the account's administrator authorizing again: the updateauthorized push restores it")
		res, err := w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID,
			AuthorizerAppID: testAuthorizerAppID, FuncInfo: []int{1, 4, 15}})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.InfoType).To(Equal("updateauthorized"))
		Expect(res.Push.Delivered).To(BeTrue())
		w.reconcile() // the component controller hands the code to the authorizer
		w.reconcileAuthorizer(seededAuthorizer)
		a = w.authorizer(seededAuthorizer)
		Expect(a.Status.Info.FuncInfo).To(ConsistOf(int32(1), int32(4), int32(15)))
		Expect(permissions().Status).To(Equal(metav1.ConditionTrue))
		Expect(w.eventsWith(wechatv1alpha1.EventPermissionsRestored)).To(ConsistOf(HavePrefix("Normal PermissionsRestored")))

		By("no condition once spec requires nothing")
		w.updateAuthorizerSpec(func(s *wechatv1alpha1.WeChatAuthorizerSpec) { s.RequiredFuncInfo = nil })
		w.reconcileAuthorizer(seededAuthorizer)
		Expect(permissions()).To(BeNil())
	})

	It("re-evaluates a changed requirement at once, without calling WeChat", func() {
		w = newWorld(withAccounts(seededAccount))
		w.readyPlatform()
		w.createAuthorizer(func(s *wechatv1alpha1.WeChatAuthorizerSpec) { s.RequiredFuncInfo = []int32{1} })
		w.reconcileAuthorizer(seededAuthorizer)
		Expect(permissions().Status).To(Equal(metav1.ConditionTrue))
		infoCalls := w.sim.Calls(wxapi.APIGetAuthorizerInfo, testAuthorizerAppID)
		w.updateAuthorizerSpec(func(s *wechatv1alpha1.WeChatAuthorizerSpec) { s.RequiredFuncInfo = []int32{1, 7} })
		w.reconcileAuthorizer(seededAuthorizer)
		c := permissions()
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Message).To(ContainSubstring("sets 7 (mass messages and notifications) that"))
		Expect(w.sim.Calls(wxapi.APIGetAuthorizerInfo, testAuthorizerAppID)).To(Equal(infoCalls))
	})
})
