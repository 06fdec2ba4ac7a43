/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// A real 45009: the simulator's daily quota of api_authorizer_token runs out, and the platform
// opted in to spec.quota.resetOnExhausted. The quota is per API and platform for the whole
// simulator, hence a stack of its own.
var _ = Describe("45009 on api_authorizer_token with spec.quota.resetOnExhausted", Ordered, func() {
	var (
		s *stack
		t *tenant
	)

	BeforeAll(func() {
		s = newStack("quota", 1, tokenLifetime)
		s.startManager("manager", "")
		t = s.newTenant("quota")
		t.ready(func(c *wechatv1alpha1.WeChatComponent) { c.Spec.Quota.ResetOnExhausted = true })
	})

	It("resets the quota with exactly one clear_quota and recovers", func() {
		By("the quota is used up: the next refresh gets 45009")
		// A call with a refresh token WeChat does not know counts against the quota and changes
		// nothing else (61023): the quota is then used up with the limit at the calls so far.
		Expect(refreshWith(t, "refreshtoken@@@unknown-"+randomHex(8))).To(Equal(61023))
		used := s.counters().CallsFor(wxsim.APIAuthorizerToken, t.componentAppID)
		Expect(s.sim.SetQuota(ctx, wxsim.APIAuthorizerToken, used)).To(Succeed())
		start := time.Now()
		DeferCleanup(func() { Expect(s.sim.SetQuota(ctx, wxsim.APIAuthorizerToken, 0)).To(Succeed()) })

		Eventually(t.hist.sawFailure("WeChatAuthorizer", wechatv1alpha1.ReasonQuotaExceeded, start)).WithTimeout(tokenLifetime).
			Should(BeTrue(), func() string { return fmt.Sprintf("no QuotaExceeded; history:\n%s", t.hist.dump()) })

		By("the authorizer asks its component for a reset; the component calls clear_quota once")
		Eventually(s.calls(wxsim.APIClearQuota, t.componentAppID)).WithTimeout(20 * time.Second).Should(Equal(1))
		Eventually(t.eventCount("QuotaReset", start)).WithTimeout(10 * time.Second).Should(Equal(1))
		c := t.getComponent()
		Expect(c.Annotations).To(HaveKey(annotationQuotaResetRequestedAt))
		Expect(c.Status.LastQuotaResetTime).NotTo(BeNil())
		Expect(c.Status.LastQuotaResetTime.Time).To(BeTemporally(">=", start.Truncate(time.Second)))

		By("the authorizer retries at once and recovers")
		Eventually(t.refreshedSince(t.authorizerSecret(), start)).WithTimeout(20 * time.Second).Should(BeNumerically(">=", 1))
		t.expectHealthy(start)
		// The quota is lifted (as at midnight Beijing time) only now: the retry worked on the
		// reset alone.
		Expect(s.sim.SetQuota(ctx, wxsim.APIAuthorizerToken, 0)).To(Succeed())
		t.expectKeepsRefreshing(time.Now())
		Expect(s.counters().CallsFor(wxsim.APIClearQuota, t.componentAppID)).To(Equal(1), "clear_quota was called again")
	})
})
