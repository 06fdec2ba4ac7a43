/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// The request annotations a WeChatAuthorizer sets on its component (docs/operations.md).
const (
	annotationRefreshRequestedAt    = "platform.wechat-operator.dev/refresh-requested-at"
	annotationQuotaResetRequestedAt = "platform.wechat-operator.dev/quota-reset-requested-at"
)

// burst is one row of the errcode table: WeChat answers errcode to the next count calls of
// api naming the tenant's component (on "component") or account (on "authorizer").
type burst struct {
	name    string
	api     string
	errcode int
	count   int
	on      string
	// reason is what status.lastFailureReason and the Ready condition say while it lasts;
	// "" when the operator recovers within the same reconcile and records no failure.
	reason string
	// racesThePush: the failure may never reach status. After a 61006 the manager asks WeChat
	// for a push, the simulator pushes at once, and the receiver's ticket write makes the
	// manager's status update (of the same reconcile) conflict; the manager drops it and
	// reconciles again, now successfully. The failure is then only in its Warning Event.
	racesThePush bool
	// arm, if set, makes the fault happen instead of a scripted errcode.
	arm func(t *tenant)
	// check asserts what is particular to the row, after the common assertions.
	check func(t *tenant, armed time.Time)
}

// The busy errcode is retried by the WeChat client itself (three attempts per call), so a
// burst of three is what makes one reconcile fail.
var bursts = []burst{
	// First: its spec waits for the account's refresh to play the other caller, while the
	// scripted faults of the other rows play out.
	{name: "61023 on api_authorizer_token (another caller rotated the refresh token)", api: wxsim.APIAuthorizerToken, on: "authorizer",
		arm: rotateBehindTheOperatorsBack, check: func(t *tenant, armed time.Time) {
			Eventually(t.eventCount("RefreshTokenRecovered", armed)).WithTimeout(30 * time.Second).Should(BeNumerically(">=", 1))
			Expect(t.s.counters().ErrorsFor(wxsim.APIAuthorizerToken, t.authorizerAppID)).To(BeNumerically(">=", 1), "no 61023 answered")
			Expect(t.s.counters().CallsFor(wxsim.APIGetAuthorizerList, t.componentAppID)).To(BeNumerically(">=", 1))
		}},
	{name: "-1 (busy) on api_component_token", api: wxsim.APIComponentToken, errcode: -1, count: 3, on: "component",
		reason: wechatv1alpha1.ReasonWeChatBusy},
	{name: "-1 (busy) on api_authorizer_token", api: wxsim.APIAuthorizerToken, errcode: -1, count: 3, on: "authorizer",
		reason: wechatv1alpha1.ReasonWeChatBusy},
	{name: "45009 on api_authorizer_token without spec.quota.resetOnExhausted", api: wxsim.APIAuthorizerToken, errcode: 45009, count: 1,
		on: "authorizer", reason: wechatv1alpha1.ReasonQuotaExceeded, check: func(t *tenant, armed time.Time) {
			Expect(t.s.counters().CallsFor(wxsim.APIClearQuota, t.componentAppID)).To(BeZero(), "clear_quota was called without the opt-in")
			Expect(t.getComponent().Annotations).NotTo(HaveKey(annotationQuotaResetRequestedAt))
		}},
	{name: "40001 on api_authorizer_token", api: wxsim.APIAuthorizerToken, errcode: 40001, count: 1, on: "authorizer",
		reason: wechatv1alpha1.ReasonInvalidToken, check: func(t *tenant, armed time.Time) {
			// The authorizer asked for a new component token, which came at once.
			requested, err := time.Parse(time.RFC3339, t.getComponent().Annotations[annotationRefreshRequestedAt])
			Expect(err).NotTo(HaveOccurred(), "no refresh-requested-at annotation on the component")
			Expect(requested).To(BeTemporally(">=", armed.Truncate(time.Second)))
			fresh := t.tokens.ValuesSince(t.componentSecret(), requested.Add(-time.Second))
			Expect(fresh).NotTo(BeEmpty(), "the component token was not refreshed after the request")
			Expect(fresh[0].SeenAt).To(BeTemporally("<", requested.Add(6*time.Second)), "the component token was not refreshed at once")
		}},
	{name: "61006 on api_component_token", api: wxsim.APIComponentToken, errcode: 61006, count: 1, on: "component",
		reason: wechatv1alpha1.ReasonTicketRejected, racesThePush: true},
}

var _ = Describe("WeChat errcode bursts", Ordered, func() {
	var (
		s       *stack
		tenants = map[string]*tenant{}
		armed   = map[string]time.Time{}
		starts  = map[string]int{}
	)

	BeforeAll(func() {
		// Refresh tokens rotate on every refresh, as WeChat may do: the 61023 row needs it, and
		// every other row then also proves no rotated refresh token is lost.
		s = newStack("bursts", 1, tokenLifetime, "--rotate-refresh-tokens")
		m := s.startManager("manager", "")
		for i, b := range bursts {
			tenants[b.name] = s.newTenant(fmt.Sprintf("burst-%d", i))
		}
		parallel(len(bursts), func(i int) { tenants[bursts[i].name].ready(nil) })

		// A manager asks WeChat for a ticket push (api_start_push_ticket) at most every 10
		// minutes per platform, and every tenant's first reconcile just did; a restart, as
		// after a rollout, lets the 61006 row see the request its fault causes.
		m.Stop(10 * time.Second)
		s.startManager("manager-2", "")

		for _, b := range bursts {
			t := tenants[b.name]
			armed[b.name] = time.Now()
			starts[b.name] = s.counters().CallsFor(wxsim.APIStartPushTicket, t.componentAppID)
			if b.arm != nil {
				continue // armed by its spec, at the right moment
			}
			appID := t.componentAppID
			if b.on == "authorizer" {
				appID = t.authorizerAppID
			}
			s.arm(harness.Fault{API: b.api, AppID: appID, ErrCode: b.errcode, Count: b.count})
		}
	})

	for _, b := range bursts {
		It(b.name, func() {
			t := tenants[b.name]
			if b.arm != nil {
				b.arm(t)
				armed[b.name] = time.Now()
			}
			at := armed[b.name]
			kind := map[string]string{"component": "WeChatComponent", "authorizer": "WeChatAuthorizer"}[b.on]
			appID := map[string]string{"component": t.componentAppID, "authorizer": t.authorizerAppID}[b.on]

			By("WeChat's answers reach the operator at its next refresh")
			Eventually(s.faultsLeft(appID)).WithTimeout(tokenLifetime).Should(BeZero(), "the fault was never hit")
			switch {
			case b.racesThePush:
				Eventually(func() []string { return t.events("RefreshFailed", at) }).WithTimeout(20 * time.Second).Should(
					ContainElement(And(HavePrefix(kind+":"), ContainSubstring(fmt.Sprintf("errcode %d", b.errcode)))))
				GinkgoWriter.Printf("%s: status showed %s: %v\n", b.name, b.reason, t.hist.sawFailure(kind, b.reason, at)())
			case b.reason != "":
				Eventually(t.hist.sawFailure(kind, b.reason, at)).WithTimeout(20*time.Second).Should(BeTrue(),
					func() string {
						return fmt.Sprintf("%s never reported %s with failedAttempts > 0; history:\n%s", kind, b.reason, t.hist.dump())
					})
			}
			if b.errcode == 61006 {
				Eventually(s.calls(wxsim.APIStartPushTicket, t.componentAppID)).WithTimeout(20*time.Second).
					Should(BeNumerically(">", starts[b.name]), "no api_start_push_ticket after the ticket was rejected")
			}

			By("recovery without a human, and no token or refresh token lost")
			t.expectHealthy(at)
			if b.check != nil {
				b.check(t, at)
			}
			if b.reason == "" {
				Expect(t.hist.failures(kind, at)).To(BeEmpty(), "a failure was recorded; history:\n%s", t.hist.dump())
			}
			t.expectKeepsRefreshing(t.recoveredAt(kind, at))
		})
	}
})

// parallel runs f(0..n-1) at once and waits; a failed assertion in one fails the spec.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer GinkgoRecover()
			f(i)
		})
	}
	wg.Wait()
}

// rotateBehindTheOperatorsBack plays another system refreshing the account's token with the
// refresh token it shares with the operator, just before the operator's own refresh: WeChat
// rotates the refresh token, so the operator's next api_authorizer_token gets 61023 and must
// recover the new one from api_get_authorizer_list. The other system's new access token
// replaces the operator's; WeChat keeps the old one valid for the overlap, longer than the
// wait for the operator's refresh.
func rotateBehindTheOperatorsBack(t *tenant) {
	Eventually(func() time.Duration {
		a := t.getAuthorizer()
		if a.Status.RefreshAt == nil {
			return 0
		}
		return time.Until(a.Status.RefreshAt.Time)
	}).WithTimeout(tokenLifetime).WithPolling(100 * time.Millisecond).Should(
		And(BeNumerically(">", 1500*time.Millisecond), BeNumerically("<", 5*time.Second)))
	Expect(refreshWith(t, stateRefreshToken(t))).To(BeZero(), "the other caller's refresh failed")
}
