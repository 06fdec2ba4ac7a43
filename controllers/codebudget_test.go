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
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

var _ = Describe("the code budget", func() {
	const burst, interval = 3, 10 * time.Second
	platform := types.NamespacedName{Namespace: "ns", Name: "platform"}
	other := types.NamespacedName{Namespace: "ns", Name: "other"}
	var clk *clocktesting.FakeClock
	var budget *CodeBudget
	BeforeEach(func() {
		clk = clocktesting.NewFakeClock(simStart)
		budget = NewCodeBudget(clk, burst, interval, refresh.APIFailure, func() float64 { return 0 })
	})
	// take makes n calls for distinct codes and returns how many were allowed and the last wait.
	take := func(component types.NamespacedName, n int) (int, time.Duration) {
		allowed, wait := 0, time.Duration(0)
		for i := range n {
			ok, w, _ := budget.allow(component, fmt.Sprintf("code-%d-%d", clk.Now().UnixNano(), i))
			if ok {
				allowed++
			} else {
				wait = w
			}
		}
		return allowed, wait
	}

	DescribeTable("a token bucket per component",
		func(steps []time.Duration, calls []int, wantAllowed []int, wantWait []time.Duration) {
			for i := range steps {
				clk.Step(steps[i])
				allowed, wait := take(platform, calls[i])
				Expect(allowed).To(Equal(wantAllowed[i]), "step %d", i)
				Expect(wait).To(Equal(wantWait[i]), "step %d: the requeue time is when the next call is allowed", i)
			}
		},
		Entry("a burst, then nothing until a call is refilled",
			[]time.Duration{0}, []int{5}, []int{3}, []time.Duration{interval}),
		Entry("refills one call per interval, and says how long is left",
			[]time.Duration{0, interval / 2, interval / 2, 0},
			[]int{3, 1, 1, 1}, []int{3, 0, 1, 0}, []time.Duration{0, interval / 2, 0, interval}),
		Entry("fills up to the burst, no more, however long it rested",
			[]time.Duration{0, 100 * interval}, []int{3, 10}, []int{3, 3}, []time.Duration{0, interval}),
		Entry("refills fractions across calls",
			[]time.Duration{0, 3 * interval / 2, interval / 2}, []int{3, 2, 1}, []int{3, 1, 1}, []time.Duration{0, interval / 2, 0}),
	)

	It("keeps components apart", func() {
		allowed, _ := take(platform, 5)
		Expect(allowed).To(Equal(burst))
		allowed, _ = take(other, 5)
		Expect(allowed).To(Equal(burst), "another component's burst is its own")
	})

	It("backs off a failed code without spending the budget on it", func() {
		expires := clk.Now().Add(time.Hour)
		Expect(budget.failed("c", expires)).To(Equal(refresh.APIFailure.Delay(1, 0)))
		for range 5 {
			ok, wait, overBudget := budget.allow(platform, "c")
			Expect(ok).To(BeFalse())
			Expect(overBudget).To(BeFalse())
			Expect(wait).To(Equal(5 * time.Second))
		}
		allowed, _ := take(platform, burst)
		Expect(allowed).To(Equal(burst), "the waits took nothing from the bucket")
		clk.Step(interval)
		ok, _, _ := budget.allow(platform, "c")
		Expect(ok).To(BeTrue(), "after its backoff")
		Expect(budget.failed("c", expires)).To(Equal(refresh.APIFailure.Delay(2, 0)), "a second failure waits twice as long")
		budget.succeeded("c")
		Expect(budget.waitFor("c")).To(BeZero())
	})

	It("warns at most once per window, the time an empty bucket takes to fill", func() {
		Expect(budget.warnDue(platform)).To(BeTrue())
		Expect(budget.warnDue(platform)).To(BeFalse())
		clk.Step(burst*interval - time.Second)
		Expect(budget.warnDue(platform)).To(BeFalse())
		Expect(budget.warnDue(other)).To(BeTrue())
		clk.Step(time.Second)
		Expect(budget.warnDue(platform)).To(BeTrue())
	})
})

func throttledCount(component types.NamespacedName) float64 {
	m := &dto.Metric{}
	Expect(codeExchangesThrottled.WithLabelValues(component.Namespace, component.Name).Write(m)).To(Succeed())
	return m.GetCounter().GetValue()
}

var _ = Describe("code exchanges paid for by status writes", func() {
	var w *world
	AfterEach(func() { w.close() })
	queryAuthCalls := func() int { return w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID) }
	madeUp := func(write, i int) string { return fmt.Sprintf("queryauthcode@@@made-up-%02d-%02d", write, i) }

	It("calls api_query_auth no more than the budget allows, whoever writes the codes how often", func() {
		w = newWorld()
		w.readyPlatform()
		Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: w.ns},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{
				ComponentRef: wechatv1alpha1.LocalObjectReference{Name: w.key.Name}, AppID: "wx00000000000000a1",
			},
		})).To(Succeed())
		applyReceiverRBAC(w.ns)
		asReceiver := rest.CopyConfig(cfg)
		asReceiver.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + w.ns + ":webhook-receiver"}
		stolen, err := client.New(asReceiver, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		throttledBefore := throttledCount(w.key)
		before := queryAuthCalls()
		expires := metav1.NewTime(w.clock.Now().Add(time.Hour))

		By("writing 16 made-up codes with the receiver's credentials, 10 times over, each write reconciled")
		var codes []string
		for write := range 10 {
			c := &wechatv1alpha1.WeChatComponent{}
			Expect(stolen.Get(ctx, w.key, c)).To(Succeed())
			patch := client.MergeFrom(c.DeepCopy())
			c.Status.PendingAuthorizationCodes = nil
			for i := range 16 {
				codes = append(codes, madeUp(write, i))
				c.Status.PendingAuthorizationCodes = append(c.Status.PendingAuthorizationCodes,
					wechatv1alpha1.AuthorizationCode{Code: madeUp(write, i), ExpiresAt: expires})
			}
			Expect(stolen.Status().Patch(ctx, c, patch)).To(Succeed())
			result := w.reconcile()
			Expect(result.RequeueAfter).To(BeNumerically(">", 0))
			Expect(result.RequeueAfter).To(BeNumerically("<=", DefaultCodeInterval), "back when the budget allows, not at the token's refresh")

			a := &wechatv1alpha1.WeChatAuthorizer{}
			Expect(stolen.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: "shop"}, a)).To(Succeed())
			apatch := client.MergeFrom(a.DeepCopy())
			code := madeUp(write, 99)
			codes = append(codes, code)
			a.Status.AuthorizationCode = &wechatv1alpha1.AuthorizationCode{Code: code, ExpiresAt: expires}
			Expect(stolen.Status().Patch(ctx, a, apatch)).To(Succeed())
			w.reconcileAuthorizer("shop")
		}
		Expect(queryAuthCalls()-before).To(Equal(DefaultCodeBurst), "the burst, shared by both controllers, and not one call more")
		Expect(w.component().Status.PendingAuthorizationCodes).To(HaveLen(16), "codes over budget stay pending")
		Expect(w.authorizer("shop").Status.AuthorizationCode).NotTo(BeNil(), "so does the authorizer's")

		By("saying so: a metric, one Warning per window, a log line without the codes")
		Expect(throttledCount(w.key) - throttledBefore).To(BeNumerically(">=", 10))
		var warnings int
		for len(w.recorder.Events) > 0 {
			e := <-w.recorder.Events
			if strings.Contains(e, wechatv1alpha1.EventCodeExchangesThrottled) {
				warnings++
			}
			for _, code := range codes {
				Expect(e).NotTo(ContainSubstring(code))
			}
		}
		Expect(warnings).To(Equal(1))
		Expect(w.logs.String()).To(ContainSubstring("code exchanges are over the component's budget"))
		for _, code := range codes {
			Expect(w.logs.String()).NotTo(ContainSubstring(code))
		}

		By("refilling one call per interval")
		w.clock.Step(DefaultCodeInterval)
		w.reconcile()
		Expect(queryAuthCalls() - before).To(Equal(DefaultCodeBurst + 1))
	})

	for _, errcode := range []int{-1, 45009} {
		It(fmt.Sprintf("backs off a pending code under a persistent %d on api_query_auth, however often the component is woken", errcode), func() {
			w = newWorld()
			w.readyPlatform()
			w.sim.AddFault(wxsim.Fault{API: wxapi.APIQueryAuth, ErrCode: errcode, Count: 1 << 30})
			start := w.clock.Now()
			c := w.component()
			patch := client.MergeFrom(c.DeepCopy())
			c.Status.PendingAuthorizationCodes = []wechatv1alpha1.AuthorizationCode{
				{Code: "queryauthcode@@@persistent", ExpiresAt: metav1.NewTime(start.Add(2 * time.Hour))}}
			Expect(k8sClient.Status().Patch(ctx, c, patch)).To(Succeed())

			// Woken at every requeue it asks for and every 20 s besides (status writes).
			hour := time.Hour
			allowed := callsAllowed(refresh.APIFailure, hour)
			next := w.clock.Now()
			nextWake := w.clock.Now()
			for i := 0; i < 2000 && w.clock.Now().Before(start.Add(hour)); i++ {
				w.clock.SetTime(minTime(next, nextWake))
				if !w.clock.Now().Before(nextWake) {
					nextWake = nextWake.Add(20 * time.Second)
				}
				next = w.clock.Now().Add(w.reconcile().RequeueAfter)
				Expect(queryAuthCalls()).To(BeNumerically("<=", allowed), "more calls than the backoff allows by %v", w.clock.Now().Sub(start))
			}
			Expect(w.clock.Now()).To(BeTemporally(">=", start.Add(hour)), "the simulation ran its course")
			Expect(queryAuthCalls()).To(BeNumerically(">=", allowed*8/10), "and kept trying")
			Expect(w.component().Status.PendingAuthorizationCodes).To(HaveLen(1), "a code that failed for a passing reason stays pending")
		})
	}
})
