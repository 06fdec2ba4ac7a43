/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// Two receiver processes behind a tap that hands each of WeChat's pushes to both at the
// same moment. The platform auto-creates its WeChatAuthorizers. The flood of forged pushes
// (flood_test.go) runs against the same receivers afterwards.
var _ = Describe("Webhook receivers racing and flooded", Ordered, func() {
	var (
		s  *stack
		t  *tenant
		tp *tap
	)

	BeforeAll(func() {
		s = newStack("receivers", 2, tokenLifetime)
		tp = newTap(s.receivers)
		DeferCleanup(tp.close)
		s.pushTo = tp.eventsURL
		s.startManager("manager", "")
		t = s.newTenant("receivers")
		t.create(false, func(c *wechatv1alpha1.WeChatComponent) { c.Spec.Authorizers.AutoCreate = true })
		t.waitComponentReady()
		// The scenario pushes tickets itself from here on.
		Expect(s.sim.SetTicketPushing(ctx, t.componentAppID, false)).To(Succeed())
	})

	It("both receivers answer the same ticket push; one of them applies it", func() {
		before := pushResults(s.receivers, wxcrypto.InfoTypeComponentVerifyTicket)
		Expect(s.sim.PushTicket(ctx, t.componentAppID)).To(Succeed())
		Expect(tp.lastAnswers()).To(Equal([]int{http.StatusOK, http.StatusOK}))
		after := pushResults(s.receivers, wxcrypto.InfoTypeComponentVerifyTicket)
		Expect(after["applied"]-before["applied"]).To(Equal(1), "the push should be applied once: %v -> %v", before, after)
		Expect(after["applied"] + after["stale"] + after["duplicate"] - before["applied"] - before["stale"] - before["duplicate"]).To(Equal(2))
		Expect(t.getComponent().Status.VerifyTicket.CreateTime.Unix()).To(BeNumerically(">=", time.Now().Add(-5*time.Second).Unix()))
	})

	It("the newest of competing tickets wins, whichever receiver gets it", func() {
		tp.setCapture(true)
		var pushes []capturedPush
		for range 3 {
			// Two tickets a second apart (CreateTime has a resolution of one second).
			for range 2 {
				second := time.Now().Unix()
				Eventually(func() int64 { return time.Now().Unix() }).WithTimeout(2 * time.Second).WithPolling(20 * time.Millisecond).Should(BeNumerically(">", second))
				Expect(s.sim.PushTicket(ctx, t.componentAppID)).To(Succeed())
			}
			captured := tp.takeCaptured()
			Expect(captured).To(HaveLen(2))
			pushes = append(pushes, captured...)
		}
		tp.setCapture(false)
		for i := 0; i < len(pushes); i += 2 {
			older, newer := openTicket(t, pushes[i]), openTicket(t, pushes[i+1])
			Expect(newer.Created).To(BeNumerically(">", older.Created))
			a, b := s.receivers[0], s.receivers[1]
			// Round one: the older to one replica, the newer to the other, at once; round
			// two: the other way round. Every answer is success, the newer ticket stays.
			for round := range 2 {
				statuses := race(func(j int) int {
					return send([]*harness.Receiver{a, b}[j], []capturedPush{pushes[i], pushes[i+1]}[(j+round)%2])
				}, 2)
				Expect(statuses).To(Equal([]int{http.StatusOK, http.StatusOK}), "pair %d round %d", i/2, round)
				vt := t.getComponent().Status.VerifyTicket
				Expect(vt.CreateTime.Unix()).To(Equal(newer.Created), "pair %d round %d: an older ticket won", i/2, round)
				Expect(harness.TokenHash(vt.Ticket)).To(Equal(harness.TokenHash(newer.Ticket)))
			}
		}
	})

	It("the same authorized push to both: one WeChatAuthorizer, the code exchanged once", func() {
		Expect(s.sim.SetTicketPushing(ctx, t.componentAppID, true)).To(Succeed())
		name := t.component + "-" + t.authorizerAppID
		t.authorizer = name
		t.tokens.Track(t.authorizerSecret(), harness.AuthorizerToken, t.componentAppID)
		since := time.Now()
		t.authorize()
		Expect(tp.lastAnswers()).To(Equal([]int{http.StatusOK, http.StatusOK}))

		// The manager creates the authorizer when it exchanges the code the receivers recorded,
		// which may come just after the push was answered.
		authorizers := func() []string {
			list := &wechatv1alpha1.WeChatAuthorizerList{}
			Expect(k8s.List(ctx, list, client.InNamespace(t.ns))).To(Succeed())
			names := []string{}
			for _, a := range list.Items {
				names = append(names, a.Name)
			}
			return names
		}
		Eventually(authorizers).Should(Equal([]string{name}))
		Eventually(t.eventCount("AuthorizerCreated", since)).Should(Equal(1))
		t.waitAuthorizerReady()
		c := s.counters()
		exchanges, rejected := c.CallsFor(wxsim.APIQueryAuth, t.componentAppID), c.ErrorsFor(wxsim.APIQueryAuth, t.componentAppID)
		Expect(exchanges-rejected).To(Equal(1), "the code should be exchanged once (%d calls, %d rejected)", exchanges, rejected)
		Expect(rejected).To(BeNumerically("<=", 1), "a second exchange is answered 61009, at most once")
		Consistently(t.eventCount("AuthorizerCreated", since)).WithTimeout(2 * time.Second).Should(Equal(1))
		Expect(authorizers()).To(Equal([]string{name}))
		t.expectKeepsRefreshing(time.Now())
		t.expectHealthy(since)
	})

	It("records what it cannot apply as an Event, a repeat as its series", func() {
		stranger := "wx" + randomHex(8)
		revoke := func(created time.Time) {
			status, answer := postPush(t, s.receivers[0], wxcrypto.UnauthorizedPush{AppID: t.componentAppID,
				Created: created.Unix(), AuthorizerAppID: stranger}.XML(), created, "")
			Expect(status).To(Equal(http.StatusOK), answer)
		}
		revoked := func() []corev1.Event {
			list := &corev1.EventList{}
			Expect(k8s.List(ctx, list, client.InNamespace(t.ns))).To(Succeed())
			return slices.DeleteFunc(list.Items, func(e corev1.Event) bool {
				return e.Reason != wechatv1alpha1.EventAuthorizationRevoked || !strings.Contains(e.Message, stranger)
			})
		}
		// A revocation for an account no WeChatAuthorizer references: nothing to mark, so the
		// receiver says so on the component.
		revoke(time.Now())
		Eventually(revoked).WithTimeout(10 * time.Second).Should(HaveLen(1))
		e := revoked()[0]
		Expect(e.ReportingController).To(Equal("wechat-webhook-receiver"))
		Expect(e.InvolvedObject.Kind).To(Equal("WeChatComponent"))
		Expect(e.InvolvedObject.Name).To(Equal(t.component))
		revoke(time.Now().Add(time.Second))
		Eventually(func(g Gomega) {
			events := revoked()
			g.Expect(events).To(HaveLen(1), "a repeat is counted on the first Event, not written anew")
			g.Expect(events[0].Series).NotTo(BeNil())
			g.Expect(events[0].Series.Count).To(BeEquivalentTo(2))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	It("keeps accepting valid pushes while flooded with forged ones", func() {
		since := time.Now()
		flood(t, tp, s.receivers)
		t.expectHealthy(since)
	})
})

// openTicket decrypts a captured ticket push with the tenant's keys.
func openTicket(t *tenant, p capturedPush) wxcrypto.TicketPush {
	GinkgoHelper()
	q, err := url.ParseQuery(p.query)
	Expect(err).NotTo(HaveOccurred())
	cr, err := wxcrypto.NewCrypter(t.verifyToken, t.encodingAESKey, t.componentAppID)
	Expect(err).NotTo(HaveOccurred())
	push, err := cr.OpenPush(p.body, q.Get("timestamp"), q.Get("nonce"), q.Get("msg_signature"))
	Expect(err).NotTo(HaveOccurred())
	tp, ok := push.(wxcrypto.TicketPush)
	Expect(ok).To(BeTrue(), "not a ticket push: %s", push.InfoType())
	return tp
}

var pushMetric = regexp.MustCompile(`(?m)^wechat_receiver_pushes_total\{([^}]*)\} ([0-9.e+]+)$`)

// pushResults sums wechat_receiver_pushes_total of infoType over the receivers, by result.
func pushResults(receivers []*harness.Receiver, infoType string) map[string]int {
	out := map[string]int{}
	for _, r := range receivers {
		for _, m := range pushMetric.FindAllStringSubmatch(scrape(r.MetricsURL), -1) {
			labels := m[1]
			if !regexp.MustCompile(`infotype="` + regexp.QuoteMeta(infoType) + `"`).MatchString(labels) {
				continue
			}
			result := regexp.MustCompile(`result="([^"]*)"`).FindStringSubmatch(labels)
			v, err := strconv.ParseFloat(m[2], 64)
			if result == nil || err != nil {
				continue
			}
			out[result[1]] += int(v)
		}
	}
	return out
}
