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

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// setTickets sets spec.tickets of an authorizer, as a user editing it would.
func (w *world) setTickets(name string, types ...wechatv1alpha1.TicketType) {
	a := w.authorizer(name)
	a.Spec.Tickets = nil
	for _, t := range types {
		a.Spec.Tickets = append(a.Spec.Tickets, wechatv1alpha1.TicketSpec{Type: t})
	}
	Expect(k8sClient.Update(ctx, a)).To(Succeed())
}

func (w *world) ticketCalls() int { return w.sim.Calls(wxapi.APIGetTicket, testAuthorizerAppID) }

func (w *world) authorizerTokenCalls() int {
	return w.sim.Calls(wxapi.APIAuthorizerToken, testAuthorizerAppID)
}

// driveAuthorizer runs the component and an authorizer through simulated time as the manager
// would: each at the requeue time it asked for, the authorizer also when the component's
// token changes, and a ticket push every 2 hours; with wakeEvery > 0, the authorizer also
// that often (the wake-ups of unrelated watch events, which must not call WeChat early).
// check runs after every step.
func (w *world) driveAuthorizer(name string, until time.Time, maxSteps int, wakeEvery time.Duration, check func()) {
	nextComponent := w.clock.Now().Add(w.reconcile().RequeueAfter)
	nextAuthorizer := w.clock.Now().Add(w.reconcileAuthorizer(name).RequeueAfter)
	nextPush := w.clock.Now().Add(2 * time.Hour)
	nextWake := until
	if wakeEvery > 0 {
		nextWake = w.clock.Now().Add(wakeEvery)
	}
	for i := 0; i < maxSteps && w.clock.Now().Before(until); i++ {
		step := minTime(minTime(minTime(nextComponent, nextAuthorizer), nextPush), nextWake)
		if step.After(until) {
			w.clock.SetTime(until) // nothing is due before until
			break
		}
		w.clock.SetTime(step)
		woken := !step.Before(nextAuthorizer) || !step.Before(nextWake)
		if wakeEvery > 0 && !step.Before(nextWake) {
			nextWake = nextWake.Add(wakeEvery)
		}
		if !step.Before(nextPush) {
			w.pushTicket()
			nextPush = nextPush.Add(2 * time.Hour)
		}
		if !step.Before(nextComponent) {
			expires := w.component().Status.ExpiresAt
			nextComponent = w.clock.Now().Add(w.reconcile().RequeueAfter)
			woken = woken || !w.component().Status.ExpiresAt.Equal(expires)
		}
		if woken {
			requeue := w.clock.Now().Add(w.reconcileAuthorizer(name).RequeueAfter)
			// The workqueue keeps the earliest pending requeue of a key.
			if !nextAuthorizer.After(w.clock.Now()) || requeue.Before(nextAuthorizer) {
				nextAuthorizer = requeue
			}
		}
		if check != nil {
			check()
		}
	}
	Expect(w.clock.Now()).To(BeTemporally(">=", until), "the simulation ran its course")
}

// jsapiTicket is the jsapi ticket in the authorizer's token Secret, and its expiry.
func (w *world) jsapiTicket(name string) (string, time.Time) {
	s := w.secret(name + "-token")
	Expect(s).NotTo(BeNil())
	expires, err := time.Parse(time.RFC3339, string(s.Data["jsapi_ticket_expires_at"]))
	Expect(err).NotTo(HaveOccurred(), "jsapi_ticket_expires_at is RFC 3339")
	return string(s.Data["jsapi_ticket"]), expires
}

var _ = Describe("API tickets of an authorizer (spec.tickets)", func() {
	var w *world
	AfterEach(func() { w.close() })

	// ready makes a platform with the seeded account and its authorizer, tickets optional:
	// asked for 40 minutes after the token was issued, so that the two are due apart.
	ready := func(types ...wechatv1alpha1.TicketType) {
		w = newWorld(withAccounts(seededAccount))
		w.readyPlatform()
		w.applyAuthorizer(seededAuthorizer, testAuthorizerAppID)
		if len(types) > 0 {
			w.clock.Step(40 * time.Minute)
			w.setTickets(seededAuthorizer, types...)
			w.reconcileAuthorizer(seededAuthorizer)
		}
	}

	It("writes a jsapi ticket beside the token, obtained with the account's token, and says so", func() {
		ready(wechatv1alpha1.TicketJSAPI)
		ticket, expires := w.jsapiTicket(seededAuthorizer)
		Expect(w.sim.APITicketValid(testComponentAppID, testAuthorizerAppID, "jsapi", ticket)).To(BeTrue())
		Expect(expires).To(Equal(w.clock.Now().Add(2 * time.Hour).Truncate(time.Second)))
		Expect(w.ticketCalls()).To(Equal(1))
		s := w.secret(seededAuthorizer + "-token")
		Expect(s.Data).To(HaveKey("access_token"), "the token is still there")
		Expect(s.Data).NotTo(HaveKey("wx_card_ticket"), "only the listed types")

		a := w.authorizer(seededAuthorizer)
		Expect(a.Status.Tickets).To(HaveLen(1))
		st := a.Status.Tickets[0]
		Expect(st.Type).To(Equal(wechatv1alpha1.TicketJSAPI))
		Expect(st.ExpiresAt.Time).To(BeTemporally("==", expires))
		Expect(st.LastRefreshTime.Time).To(BeTemporally("==", w.clock.Now().Truncate(time.Second)))
		Expect(st.RefreshAt.Time).To(BeTemporally("<", expires.Add(-10*time.Minute)))
		cond := condition(a.Status.Conditions, wechatv1alpha1.ConditionTicketsReady)
		Expect(cond).NotTo(BeNil())
		Expect(cond.Status).To(Equal(metav1.ConditionTrue))
		Expect(cond.Reason).To(Equal(wechatv1alpha1.ReasonTicketsIssued))
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionReady).Reason).To(Equal(wechatv1alpha1.ReasonTokenIssued))

		By("a reconcile with nothing due calls nothing")
		w.clock.Step(time.Minute)
		w.reconcileAuthorizer(seededAuthorizer)
		Expect(w.ticketCalls()).To(Equal(1))

		By("the ticket is nowhere but in the Secret")
		Expect(w.logs.String()).NotTo(ContainSubstring(ticket))
		for len(w.recorder.Events) > 0 {
			Expect(<-w.recorder.Events).NotTo(ContainSubstring(ticket))
		}
		Expect(fmt.Sprintf("%+v", a.Status)).NotTo(ContainSubstring(ticket))
	})

	It("refreshes the ticket before it expires with one getticket call per cycle, over a simulated day", func() {
		ready(wechatv1alpha1.TicketJSAPI)
		start := w.clock.Now()
		w.driveAuthorizer(seededAuthorizer, start.Add(24*time.Hour), 5000, 0, func() {
			ticket, expires := w.jsapiTicket(seededAuthorizer)
			Expect(w.clock.Now().Before(expires)).To(BeTrue(), "an expired ticket served at %v", w.clock.Now())
			Expect(w.sim.APITicketValid(testComponentAppID, testAuthorizerAppID, "jsapi", ticket)).To(BeTrue(), "at %v", w.clock.Now())
		})
		// A 7200 s ticket refreshed 12-18 minutes early: 24 h / (102 to 108 min) ≈ 13.3 to 14.1 cycles.
		Expect(w.ticketCalls()).To(And(BeNumerically(">=", 13), BeNumerically("<=", 15)))
		Expect(w.sim.Calls(wxapi.APIGetTicket, "-")).To(BeZero(), "never with a rejected token")
		a := w.authorizer(seededAuthorizer)
		Expect(a.Status.Tickets[0].FailedAttempts).To(BeZero())
	})

	It("does not refetch the ticket when only the access token is refreshed", func() {
		ready(wechatv1alpha1.TicketJSAPI)
		ticket, _ := w.jsapiTicket(seededAuthorizer)
		tokenCalls, ticketCalls := w.authorizerTokenCalls(), w.ticketCalls()
		Expect(ticketCalls).To(Equal(1))

		w.clock.SetTime(w.authorizer(seededAuthorizer).Status.RefreshAt.Time)
		w.reconcile()
		w.reconcileAuthorizer(seededAuthorizer)
		Expect(w.authorizerTokenCalls()).To(Equal(tokenCalls+1), "the token was refreshed")
		Expect(w.ticketCalls()).To(Equal(ticketCalls), "the ticket was not")
		again, _ := w.jsapiTicket(seededAuthorizer)
		Expect(again).To(Equal(ticket))
		Expect(w.sim.APITicketValid(testComponentAppID, testAuthorizerAppID, "jsapi", ticket)).To(BeTrue(), "a new token does not end the ticket")

		By("the ticket's own refresh time fetching it, and not the token")
		w.clock.SetTime(w.authorizer(seededAuthorizer).Status.Tickets[0].RefreshAt.Time)
		w.reconcileAuthorizer(seededAuthorizer)
		Expect(w.ticketCalls()).To(Equal(ticketCalls + 1))
		Expect(w.authorizerTokenCalls()).To(Equal(tokenCalls + 1))
	})

	It("gets a new access token once when getticket rejects the token (40001), then the ticket", func() {
		ready(wechatv1alpha1.TicketJSAPI)
		old, _ := w.jsapiTicket(seededAuthorizer)
		due := w.authorizer(seededAuthorizer).Status.Tickets[0].RefreshAt.Time
		// Up to just before the ticket is due; the token is refreshed on its own schedule meanwhile.
		w.driveAuthorizer(seededAuthorizer, due.Add(-time.Second), 1000, 0, nil)
		Expect(w.ticketCalls()).To(Equal(1))
		served := string(w.secret(seededAuthorizer + "-token").Data["access_token"])
		Expect(w.sim.TokenState(served)).To(BeZero(), "the served token is valid: only the fault rejects it")
		tokenCalls := w.authorizerTokenCalls()
		w.sim.AddFault(wxsim.Fault{API: wxapi.APIGetTicket, ErrCode: wxapi.CodeInvalidCredential})
		w.clock.SetTime(due)
		w.reconcileAuthorizer(seededAuthorizer)
		Expect(w.authorizerTokenCalls()).To(Equal(tokenCalls+1), "one new access token")
		Expect(w.ticketCalls()).To(Equal(3), "the first ticket, the rejected call, the retry")
		s := w.secret(seededAuthorizer + "-token")
		Expect(string(s.Data["access_token"])).NotTo(Equal(served))
		ticket, _ := w.jsapiTicket(seededAuthorizer)
		Expect(ticket).NotTo(Equal(old))
		Expect(w.sim.APITicketValid(testComponentAppID, testAuthorizerAppID, "jsapi", ticket)).To(BeTrue())
		a := w.authorizer(seededAuthorizer)
		Expect(a.Status.Tickets[0].FailedAttempts).To(BeZero())
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionTicketsReady).Reason).To(Equal(wechatv1alpha1.ReasonTicketsIssued))
		Expect(a.Status.ExpiresAt.Time).To(BeTemporally(">", w.clock.Now().Add(time.Hour)), "status shows the new token")
	})

	It("refreshes the access token at most once per backoff under a persistent 40001 from getticket", func() {
		ready(wechatv1alpha1.TicketJSAPI)
		lists := w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)
		w.sim.AddFault(wxsim.Fault{API: wxapi.APIGetTicket, ErrCode: wxapi.CodeInvalidCredential, Count: 1 << 30})
		w.clock.SetTime(w.authorizer(seededAuthorizer).Status.Tickets[0].RefreshAt.Time)
		start, tokenCalls, ticketCalls := w.clock.Now(), w.authorizerTokenCalls(), w.ticketCalls()
		allowed := callsAllowed(refresh.APIFailure, 3*time.Hour)
		w.driveAuthorizer(seededAuthorizer, start.Add(3*time.Hour), 20*allowed+400, time.Minute, func() {
			elapsed := w.clock.Now().Sub(start)
			// +1s: retry times are whole seconds (status), up to a second before the backoff's end.
			attempts := callsAllowed(refresh.APIFailure, elapsed+time.Second)
			// Each attempt: getticket, a new token, getticket again; plus the token's own schedule.
			Expect(w.ticketCalls()-ticketCalls).To(BeNumerically("<=", 2*attempts), "getticket calls after %v", elapsed)
			Expect(w.authorizerTokenCalls()-tokenCalls).To(BeNumerically("<=", attempts+int(elapsed/(100*time.Minute))+1), "token refreshes after %v", elapsed)
		})
		Expect(w.ticketCalls()-ticketCalls).To(BeNumerically(">=", allowed), "and kept trying")
		a := w.authorizer(seededAuthorizer)
		st := a.Status.Tickets[0]
		Expect(st.LastFailureReason).To(Equal(wechatv1alpha1.ReasonInvalidToken))
		Expect(st.RefreshAt.Time).To(BeTemporally(">", w.clock.Now()), "status says when the next attempt is")
		cond := condition(a.Status.Conditions, wechatv1alpha1.ConditionTicketsReady)
		Expect(cond.Status).To(Equal(metav1.ConditionFalse), "the ticket expired meanwhile")
		Expect(cond.Reason).To(Equal(wechatv1alpha1.ReasonInvalidToken))
		Expect(cond.Message).To(ContainSubstring("account's access token"))
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue), "the token itself is fine")
		Expect(w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)).To(Equal(lists), "the refresh token was never in doubt")
	})

	It("backs off on the account's used-up getticket quota (45009), says so, and keeps the token Ready", func() {
		w = newWorld(withAccounts(seededAccount), func(c *worldConfig) {
			inner := c.simOptions
			c.simOptions = func(o *wxsim.Options) {
				inner(o)
				o.Quotas = map[string]int{wxsim.APIGetTicket: 1}
			}
		})
		w.readyPlatform()
		w.applyAuthorizer(seededAuthorizer, testAuthorizerAppID)
		w.clock.Step(40 * time.Minute)
		w.setTickets(seededAuthorizer, wechatv1alpha1.TicketJSAPI)
		w.reconcileAuthorizer(seededAuthorizer)
		served, _ := w.jsapiTicket(seededAuthorizer)
		w.clock.SetTime(w.authorizer(seededAuthorizer).Status.Tickets[0].RefreshAt.Time)
		start, ticketCalls := w.clock.Now(), w.ticketCalls()
		allowed := callsAllowed(refresh.APIFailure, 3*time.Hour)
		sawStillValid := false
		w.driveAuthorizer(seededAuthorizer, start.Add(3*time.Hour), 20*allowed+400, time.Minute, func() {
			// +1s: retry times are whole seconds (status), up to a second before the backoff's end.
			Expect(w.ticketCalls()-ticketCalls).To(BeNumerically("<=", callsAllowed(refresh.APIFailure, w.clock.Now().Sub(start)+time.Second)),
				"getticket calls after %v", w.clock.Now().Sub(start))
			cond := condition(w.authorizer(seededAuthorizer).Status.Conditions, wechatv1alpha1.ConditionTicketsReady)
			if cond.Status == metav1.ConditionTrue {
				Expect(cond.Reason).To(Equal(wechatv1alpha1.ReasonQuotaExceeded), "a valid ticket still served, its refresh failing")
				sawStillValid = true
			}
		})
		Expect(sawStillValid).To(BeTrue())
		Expect(w.ticketCalls()-ticketCalls).To(BeNumerically(">=", allowed*8/10), "and kept trying")
		ticket, _ := w.jsapiTicket(seededAuthorizer)
		Expect(ticket).To(Equal(served), "the old ticket stays in the Secret")
		a := w.authorizer(seededAuthorizer)
		cond := condition(a.Status.Conditions, wechatv1alpha1.ConditionTicketsReady)
		Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		Expect(cond.Reason).To(Equal(wechatv1alpha1.ReasonQuotaExceeded))
		Expect(cond.Message).To(ContainSubstring("midnight Beijing time"))
		ready := condition(a.Status.Conditions, wechatv1alpha1.ConditionReady)
		Expect(ready.Status).To(Equal(metav1.ConditionTrue))
		Expect(ready.Reason).To(Equal(wechatv1alpha1.ReasonTokenIssued))
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionStalled)).To(BeNil())
		Expect(w.sim.Calls(wxapi.APIClearQuota, testComponentAppID)).To(BeZero(), "clear_quota resets the platform's quotas, not the account's")
	})

	It("removes a type's keys and status when it leaves spec.tickets, and keeps what others put on the Secret", func() {
		ready(wechatv1alpha1.TicketJSAPI, wechatv1alpha1.TicketWXCard)
		s := w.secret(seededAuthorizer + "-token")
		Expect(s.Data).To(HaveKey("jsapi_ticket"))
		Expect(s.Data).To(HaveKey("wx_card_ticket"))
		Expect(s.Data).To(HaveKey("wx_card_ticket_expires_at"))
		Expect(w.sim.APITicketValid(testComponentAppID, testAuthorizerAppID, "wx_card", string(s.Data["wx_card_ticket"]))).To(BeTrue())
		Expect(w.authorizer(seededAuthorizer).Status.Tickets).To(HaveLen(2))
		s.Labels["mirror.example.com/sync"] = "true"
		Expect(k8sClient.Update(ctx, s)).To(Succeed())
		jsapi := string(s.Data["jsapi_ticket"])

		w.setTickets(seededAuthorizer, wechatv1alpha1.TicketJSAPI)
		w.reconcileAuthorizer(seededAuthorizer)
		s = w.secret(seededAuthorizer + "-token")
		Expect(s.Data).NotTo(HaveKey("wx_card_ticket"))
		Expect(s.Data).NotTo(HaveKey("wx_card_ticket_expires_at"))
		Expect(string(s.Data["jsapi_ticket"])).To(Equal(jsapi), "the other ticket is kept, not refetched")
		Expect(s.Labels).To(HaveKeyWithValue("mirror.example.com/sync", "true"))
		a := w.authorizer(seededAuthorizer)
		Expect(a.Status.Tickets).To(HaveLen(1))
		Expect(a.Status.Tickets[0].Type).To(Equal(wechatv1alpha1.TicketJSAPI))

		w.setTickets(seededAuthorizer)
		w.reconcileAuthorizer(seededAuthorizer)
		s = w.secret(seededAuthorizer + "-token")
		Expect(s.Data).To(HaveLen(3), "access_token, expires_at and appid only")
		a = w.authorizer(seededAuthorizer)
		Expect(a.Status.Tickets).To(BeEmpty())
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionTicketsReady)).To(BeNil())
		Expect(w.ticketCalls()).To(Equal(2))
	})

	It("keeps the tickets when the token Secret is rewritten for a new token", func() {
		ready(wechatv1alpha1.TicketJSAPI)
		ticket, _ := w.jsapiTicket(seededAuthorizer)
		w.clock.SetTime(w.authorizer(seededAuthorizer).Status.RefreshAt.Time.Add(-time.Second))
		// Force the token alone due: its refresh time is a second away, the ticket's at the same time.
		a := w.authorizer(seededAuthorizer)
		a.Status.Tickets[0].RefreshAt = timePtr(w.clock.Now().Add(time.Hour))
		Expect(k8sClient.Status().Update(ctx, a)).To(Succeed())
		w.clock.Step(2 * time.Second)
		w.reconcile()
		tokenCalls := w.authorizerTokenCalls()
		w.reconcileAuthorizer(seededAuthorizer)
		Expect(w.authorizerTokenCalls()).To(Equal(tokenCalls + 1))
		again, _ := w.jsapiTicket(seededAuthorizer)
		Expect(again).To(Equal(ticket))
	})
})
