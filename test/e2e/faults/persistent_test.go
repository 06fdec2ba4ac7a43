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
	"k8s.io/apimachinery/pkg/api/meta"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// Persistent errors, compressed 60 times: the manager runs with --backoff-scale 1/60, so its
// backoffs (5 s … 5 min for WeChat errors, 30 s … 10 min for what a human must fix) and so
// the calls one hour of a persistent error allows fit in a minute. Every row is a tenant of
// its own, all failing at once against one manager.
const (
	backoffScale    = 1.0 / 60
	persistWindow   = time.Minute // one compressed hour
	apiBase, apiCap = 5 * time.Second, 5 * time.Minute
	cfgBase, cfgCap = 30 * time.Second, 10 * time.Minute
)

// persistent is one row: WeChat answers errcode to every call of api_component_token.
type persistent struct {
	errcode int
	reason  string
	// human: a problem only a human can fix: Stalled, the slower backoff.
	human bool
}

var persistentRows = []persistent{
	{-1, wechatv1alpha1.ReasonWeChatBusy, false},
	{40001, wechatv1alpha1.ReasonCredentialsRejected, true},
	{42001, wechatv1alpha1.ReasonCredentialsRejected, true},
	{40014, wechatv1alpha1.ReasonCredentialsRejected, true},
	{40013, wechatv1alpha1.ReasonInvalidAppID, true},
	{40125, wechatv1alpha1.ReasonInvalidAppSecret, true},
	{41004, wechatv1alpha1.ReasonInvalidAppSecret, true},
	{45009, wechatv1alpha1.ReasonQuotaExceeded, false},
	{47001, wechatv1alpha1.ReasonWeChatError, false},
	{48001, wechatv1alpha1.ReasonAPIUnauthorized, true},
	{61004, wechatv1alpha1.ReasonIPNotWhitelisted, true},
	{61005, wechatv1alpha1.ReasonTicketRejected, false},
	{61006, wechatv1alpha1.ReasonTicketRejected, false},
	{61011, wechatv1alpha1.ReasonInvalidAppID, true},
	{61023, wechatv1alpha1.ReasonRefreshTokenInvalid, false},
}

// allowedCalls is the most calls a backoff (base … limit, scaled, at least 1 s between
// attempts as the controllers wait, each wait up to 20% shorter with jitter) allows in
// window after a first failed call. Per real hour that is 12 (WeChat errors, cap 5 min) or 6
// (a human must fix it, cap 10 min) once the ramp is done.
func allowedCalls(base, limit time.Duration, window time.Duration) int {
	base, limit = time.Duration(float64(base)*backoffScale), time.Duration(float64(limit)*backoffScale)
	calls, elapsed, d := 1, time.Duration(0), base
	for {
		elapsed += max(d*8/10, time.Second)
		if elapsed > window {
			return calls
		}
		calls++
		d = min(2*d, limit)
	}
}

var _ = Describe("persistent errors", Ordered, func() {
	var (
		s       *stack
		tenants = map[int]*tenant{}
		// firstCall is a time just before each row's first failed call.
		firstCall = map[int]time.Time{}
		authz     *tenant
		authzAt   time.Time
	)

	BeforeAll(func() {
		s = newStack("persistent", 1, tokenLifetime)
		s.startManager("manager", "", "--backoff-scale", fmt.Sprint(backoffScale))
		authz = s.newTenant("persist-authorizer")
		authz.ready(nil)
		s.arm(harness.Fault{API: wxsim.APIAuthorizerToken, AppID: authz.authorizerAppID, ErrCode: 40001, Count: 1 << 30})
		authzAt = time.Now()
		for i, row := range persistentRows {
			t := s.newTenant(fmt.Sprintf("persist-%d", i))
			tenants[row.errcode] = t
			// Armed before the first call: the component never gets a token.
			s.arm(harness.Fault{API: wxsim.APIComponentToken, AppID: t.componentAppID, ErrCode: row.errcode, Count: 1 << 30})
			// The first call comes after this, so a window from here allows at least as many.
			firstCall[row.errcode] = time.Now()
			t.create(false, nil)
		}

		By("every row's first failed call")
		Eventually(func() []int {
			c := s.counters()
			var waiting []int
			for _, row := range persistentRows {
				t := tenants[row.errcode]
				if c.CallsFor(wxsim.APIComponentToken, t.componentAppID) > 0 {
					continue
				}
				waiting = append(waiting, row.errcode)
				if t.getComponent().Status.VerifyTicket == nil {
					_ = s.sim.PushTicket(ctx, t.componentAppID) // 404 until the receiver has the keys
				}
			}
			return waiting
		}).WithTimeout(time.Minute).WithPolling(time.Second).Should(BeEmpty(), "rows without a first api_component_token call")
		By("one compressed hour of the errors, the calls within every row's backoff all along")
		Consistently(func(g Gomega) {
			c := s.counters()
			for _, row := range persistentRows {
				base, limit := rowBackoff(row)
				calls := operatorCalls(row, c.CallsFor(wxsim.APIComponentToken, tenants[row.errcode].componentAppID))
				g.Expect(calls).To(BeNumerically("<=", allowedCalls(base, limit, time.Since(firstCall[row.errcode]))),
					"%d: more calls of api_component_token than the backoff allows (before: one a second)", row.errcode)
			}
		}).WithTimeout(persistWindow).WithPolling(time.Second).Should(Succeed())
	})

	for _, row := range persistentRows {
		It(fmt.Sprintf("%d on api_component_token: %s, calls within the backoff", row.errcode, row.reason), func() {
			t := tenants[row.errcode]
			base, limit := rowBackoff(row)
			elapsed := time.Since(firstCall[row.errcode])
			calls := operatorCalls(row, s.counters().CallsFor(wxsim.APIComponentToken, t.componentAppID))
			GinkgoWriter.Printf("%d: %d calls of api_component_token in %s\n", row.errcode, calls, elapsed.Round(time.Second))
			Expect(calls).To(BeNumerically("<=", allowedCalls(base, limit, elapsed)))
			Expect(calls).To(BeNumerically(">=", 3), "it kept trying")

			c := t.getComponent()
			Expect(c.Status.LastFailureReason).To(Equal(row.reason))
			Expect(readyReason(c.Status.Conditions)).To(Equal("False/" + row.reason))
			stalled := meta.FindStatusCondition(c.Status.Conditions, wechatv1alpha1.ConditionStalled)
			if row.human {
				Expect(stalled).NotTo(BeNil(), "a problem for a human is Stalled")
				Expect(stalled.Reason).To(Equal(row.reason))
			} else {
				Expect(stalled).To(BeNil())
			}
			if row.errcode == 61005 || row.errcode == 61006 {
				Expect(s.counters().CallsFor(wxsim.APIStartPushTicket, t.componentAppID)).To(BeNumerically("<=", 2),
					"api_start_push_ticket at most once per 10 minutes (plus the first ticket's)")
			}
		})
	}

	It("40001 on api_authorizer_token: the component token refreshed at once, then within the backoff", func() {
		elapsed := time.Since(authzAt)
		// Scheduled refreshes of the 40 s component token (about one per 16-20 s), plus the
		// requested ones: at once, then at most one per API backoff.
		scheduled := int(elapsed/(16*time.Second)) + 1
		component := s.counters().CallsFor(wxsim.APIComponentToken, authz.componentAppID)
		authorizer := s.counters().CallsFor(wxsim.APIAuthorizerToken, authz.authorizerAppID)
		GinkgoWriter.Printf("40001 from api_authorizer_token: %d component token calls, %d authorizer token calls in %s\n",
			component, authorizer, elapsed.Round(time.Second))
		requested := allowedCalls(apiBase, apiCap, elapsed)
		Expect(component).To(BeNumerically("<=", 1+scheduled+requested)) // +1: the first token
		// The authorizer retries on its own backoff and on every new component token.
		Expect(authorizer).To(BeNumerically("<=", 2+allowedCalls(apiBase, apiCap, elapsed)+scheduled+requested))
		a := authz.getAuthorizer()
		Expect(a.Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonInvalidToken))
		Expect(meta.FindStatusCondition(a.Status.Conditions, wechatv1alpha1.ConditionStalled)).To(BeNil())
	})

	It("recovers from every row once WeChat answers again, within the backoff's cap", func() {
		Expect(s.sim.ClearFaults(ctx)).To(Succeed())
		cleared := time.Now()
		for _, row := range persistentRows {
			t := tenants[row.errcode]
			Eventually(func() string { return readyReason(t.getComponent().Status.Conditions) }).
				WithTimeout(cfgCap/60+30*time.Second).WithPolling(time.Second).
				Should(Equal("True/"+wechatv1alpha1.ReasonTokenIssued), "%d never recovered", row.errcode)
			Expect(meta.FindStatusCondition(t.getComponent().Status.Conditions, wechatv1alpha1.ConditionStalled)).To(BeNil())
		}
		// Its 40 s token expired during the hour of 40001s (nothing the operator could do);
		// the refresh token was kept: the authorizer recovers with it, without a human.
		Eventually(func(g Gomega) {
			a := authz.getAuthorizer()
			g.Expect(readyReason(a.Status.Conditions)).To(Equal("True/" + wechatv1alpha1.ReasonTokenIssued))
			g.Expect(a.Status.FailedAttempts).To(BeZero())
		}).WithTimeout(apiCap/60 + 30*time.Second).Should(Succeed())
		authz.expectKeepsRefreshing(cleared)
	})
})

// operatorCalls is how many calls the operator began, from the requests WeChat saw: the
// WeChat client itself tries a busy (-1) answer three times (wxapi.DefaultMaxAttempts),
// within a second and a half, before the controller backs off.
func operatorCalls(row persistent, requests int) int {
	if row.errcode == -1 {
		return (requests + 2) / 3
	}
	return requests
}

func rowBackoff(row persistent) (base, limit time.Duration) {
	if row.human {
		return cfgBase, cfgCap
	}
	return apiBase, apiCap
}
