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
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// errcodeCase is how one WeChat errcode from api_component_token is handled.
type errcodeCase struct {
	code   int
	reason string
	// human: only a human can fix it (Stalled, ConfigurationError backoff).
	human bool
}

// componentTokenErrcodes are the errcodes of DESIGN.md §1 as answers of api_component_token.
var componentTokenErrcodes = []errcodeCase{
	{wxapi.CodeBusy, wechatv1alpha1.ReasonWeChatBusy, false},
	{wxapi.CodeInvalidCredential, wechatv1alpha1.ReasonCredentialsRejected, true},
	{wxapi.CodeAccessTokenExpired, wechatv1alpha1.ReasonCredentialsRejected, true},
	{wxapi.CodeInvalidAccessToken, wechatv1alpha1.ReasonCredentialsRejected, true},
	{wxapi.CodeInvalidAppID, wechatv1alpha1.ReasonInvalidAppID, true},
	{wxapi.CodeInvalidAppSecret, wechatv1alpha1.ReasonInvalidAppSecret, true},
	{wxapi.CodeAppSecretMissing, wechatv1alpha1.ReasonInvalidAppSecret, true},
	{wxapi.CodeQuotaReached, wechatv1alpha1.ReasonQuotaExceeded, false},
	{wxapi.CodeDataFormatError, wechatv1alpha1.ReasonWeChatError, false},
	{wxapi.CodeUnauthorizedAPI, wechatv1alpha1.ReasonAPIUnauthorized, true},
	{wxapi.CodeIPNotWhitelisted, wechatv1alpha1.ReasonIPNotWhitelisted, true},
	{wxapi.CodeTicketExpired, wechatv1alpha1.ReasonTicketRejected, false},
	{wxapi.CodeTicketInvalid, wechatv1alpha1.ReasonTicketRejected, false},
	{wxapi.CodeInvalidComponent, wechatv1alpha1.ReasonInvalidAppID, true},
	{wxapi.CodeRefreshTokenInvalid, wechatv1alpha1.ReasonRefreshTokenInvalid, false},
}

// callsAllowed is the most calls a backoff allows in window, starting with a first failure:
// the ramp up to the cap, then one per cap (each wait may be 20% shorter with jitter).
func callsAllowed(b refresh.Backoff, window time.Duration) int {
	calls, elapsed := 1, time.Duration(0)
	for n := int32(1); ; n++ {
		elapsed += b.Delay(n, 0.999999)
		if elapsed > window {
			return calls
		}
		calls++
	}
}

func backoffOf(c errcodeCase) refresh.Backoff {
	if c.human {
		return refresh.ConfigurationError
	}
	return refresh.APIFailure
}

var _ = Describe("classifying WeChat's errcodes", func() {
	for _, tc := range componentTokenErrcodes {
		It(fmt.Sprintf("maps %d from api_component_token to %s", tc.code, tc.reason), func() {
			err := &wxapi.APIError{API: wxapi.APIComponentToken, Code: tc.code, Msg: "test"}
			f := classifyComponentTokenError(err, "creds")
			Expect(f.reason).To(Equal(tc.reason))
			Expect(f.needsHuman()).To(Equal(tc.human))
			Expect(f.backoff).To(Equal(backoffOf(tc)))
			if tc.human {
				Expect(f.message).To(MatchRegexp(`errcode -?\d+: test; \w.{30,}`), "a problem for a human says what to do")
			}
		})
	}

	It("keeps 40001/42001/40014 from an API called with the component token a token problem, retried", func() {
		for _, code := range []int{wxapi.CodeInvalidCredential, wxapi.CodeAccessTokenExpired, wxapi.CodeInvalidAccessToken} {
			f := classifyAPIError(&wxapi.APIError{API: wxapi.APIAuthorizerToken, Code: code})
			Expect(f.reason).To(Equal(wechatv1alpha1.ReasonInvalidToken))
			Expect(f.needsHuman()).To(BeFalse())
		}
	})

	It("honours a refresh request at once, then at most once per API backoff", func() {
		r := &WeChatComponentReconciler{}
		c := &wechatv1alpha1.WeChatComponent{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
		now := simStart
		token := &issuedToken{accessToken: "t", issuedAt: now.Add(-time.Hour), expiresAt: now.Add(time.Hour)}
		request := func() {
			c.Annotations = map[string]string{wechatv1alpha1.AnnotationRefreshRequestedAt: now.UTC().Format(time.RFC3339)}
		}
		honoured := 0
		end := now.Add(time.Hour)
		for ; now.Before(end); now = now.Add(time.Second) {
			// Every second an authorizer's call is rejected and it asks again.
			request()
			ok, inARow, wait := r.refreshRequest(c, token, now.Add(time.Millisecond))
			if !ok {
				Expect(wait).To(BeNumerically(">", 0))
				continue
			}
			if honoured == 0 {
				Expect(now).To(Equal(simStart), "the first request is honoured at once")
			}
			honoured++
			r.retries.honourRequest(keyOf(c), inARow, now)
			token = &issuedToken{accessToken: "t", issuedAt: now, expiresAt: now.Add(2 * time.Hour)}
		}
		Expect(honoured).To(BeNumerically("<=", callsAllowed(refresh.APIFailure, time.Hour)))
		Expect(honoured).To(BeNumerically(">=", 12), "at the cap, once every 5 minutes")

		By("a token from a scheduled refresh starting a new run: its first rejection is honoured at once")
		now = now.Add(time.Second)
		token = &issuedToken{accessToken: "t", issuedAt: now, expiresAt: now.Add(2 * time.Hour)}
		now = now.Add(time.Second)
		request()
		ok, _, _ := r.refreshRequest(c, token, now)
		Expect(ok).To(BeTrue())
	})
})

// simEvents drives one component's reconciles through simulated time the way the manager
// would: at every requeue time it asked for, at every ticket push (10 minutes), and at every
// refresh request an authorizer makes (every minute): the wake-ups a persistent error sees.
func (w *world) driveComponent(until time.Time, maxReconciles int, onReconcile func()) {
	next := w.clock.Now().Add(w.reconcile().RequeueAfter)
	nextPush := w.clock.Now().Add(10 * time.Minute)
	nextRequest := w.clock.Now().Add(time.Minute)
	for i := 0; i < maxReconciles && w.clock.Now().Before(until); i++ {
		step := minTime(minTime(next, nextPush), nextRequest)
		w.clock.SetTime(step)
		if !step.Before(nextPush) {
			w.pushTicket()
			nextPush = nextPush.Add(10 * time.Minute)
		}
		if !step.Before(nextRequest) {
			c := w.component()
			patch := client.MergeFrom(c.DeepCopy())
			if c.Annotations == nil {
				c.Annotations = map[string]string{}
			}
			c.Annotations[wechatv1alpha1.AnnotationRefreshRequestedAt] = step.UTC().Format(time.RFC3339)
			Expect(k8sClient.Patch(ctx, c, patch)).To(Succeed())
			nextRequest = nextRequest.Add(time.Minute)
		}
		requeue := w.clock.Now().Add(w.reconcile().RequeueAfter)
		// The workqueue keeps the earliest pending requeue of a key.
		if !next.After(w.clock.Now()) || requeue.Before(next) {
			next = requeue
		}
		if onReconcile != nil {
			onReconcile()
		}
	}
}

var _ = Describe("bounded calls under a persistent error of api_component_token", func() {
	var w *world
	AfterEach(func() { w.close() })

	for _, tc := range componentTokenErrcodes {
		It(fmt.Sprintf("calls no more often than its backoff allows on %d (%s)", tc.code, tc.reason), func() {
			w = newWorld()
			w.createComponent()
			w.reconcile()
			w.sim.AddFault(wxsim.Fault{API: wxapi.APIComponentToken, ErrCode: tc.code, Count: 1 << 30})
			w.pushTicket()
			start := w.clock.Now()
			hours := 3 * time.Hour
			allowed := callsAllowed(backoffOf(tc), hours)
			w.driveComponent(start.Add(hours), 20*allowed+400, func() {
				Expect(w.tokenCalls()).To(BeNumerically("<=", allowed), "more calls than the backoff allows by %v", w.clock.Now().Sub(start))
			})
			Expect(w.clock.Now()).To(BeTemporally(">=", start.Add(hours)), "the simulation ran its course")
			Expect(w.tokenCalls()).To(BeNumerically(">=", allowed*8/10), "and kept trying")

			c := w.component()
			Expect(c.Status.LastFailureReason).To(Equal(tc.reason))
			ready := condition(c.Status.Conditions, wechatv1alpha1.ConditionReady)
			Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			Expect(ready.Reason).To(Equal(tc.reason))
			stalled := condition(c.Status.Conditions, wechatv1alpha1.ConditionStalled)
			if tc.human {
				Expect(stalled).NotTo(BeNil())
				Expect(stalled.Status).To(Equal(metav1.ConditionTrue))
				Expect(stalled.Reason).To(Equal(tc.reason))
			} else {
				Expect(stalled).To(BeNil())
			}
			Expect(c.Status.RefreshAt.Time).To(BeTemporally(">", w.clock.Now()), "status says when the next attempt is")
			if tc.reason == wechatv1alpha1.ReasonTicketRejected {
				Expect(w.sim.Calls(wxapi.APIStartPushTicket, testComponentAppID)).To(BeNumerically("<=", int(hours/startPushMinInterval)+1))
			}
		})
	}

	It("tries again at once when the credentials Secret changes, not before", func() {
		w = newWorld()
		w.createComponent()
		w.setAppSecret("a-wrong-app-secret-0123456789abc")
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		Expect(w.tokenCalls()).To(Equal(1))
		c := w.component()
		Expect(c.Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonInvalidAppSecret), "the simulator answers 40125 to a wrong AppSecret")
		Expect(condition(c.Status.Conditions, wechatv1alpha1.ConditionStalled).Message).To(ContainSubstring(`Secret "creds"`))

		By("not calling on wake-ups within the backoff")
		w.clock.Step(5 * time.Second)
		w.pushTicket()
		w.reconcile()
		Expect(w.tokenCalls()).To(Equal(1))

		By("calling at once after the Secret was fixed")
		w.setAppSecret(testAppSecret)
		w.reconcile()
		Expect(w.tokenCalls()).To(Equal(2))
		c = w.component()
		Expect(condition(c.Status.Conditions, wechatv1alpha1.ConditionReady).Reason).To(Equal(wechatv1alpha1.ReasonTokenIssued))
		Expect(condition(c.Status.Conditions, wechatv1alpha1.ConditionStalled)).To(BeNil())
		Expect(c.Status.FailedAttempts).To(BeZero())
	})

	It("says that 40001 from api_component_token means the credentials, with a valid token still served", func() {
		w = newWorld()
		w.createComponent()
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		served := string(w.tokenSecret().Data["access_token"])
		w.sim.AddFault(wxsim.Fault{API: wxapi.APIComponentToken, ErrCode: wxapi.CodeInvalidCredential, Count: 1 << 30})
		w.clock.SetTime(w.component().Status.RefreshAt.Time)
		// Ten minutes: the old token (refreshed 15 minutes before expiry) is still valid.
		w.driveComponent(w.clock.Now().Add(10*time.Minute), 2000, nil)
		Expect(w.tokenCalls()).To(BeNumerically("<=", 1+callsAllowed(refresh.ConfigurationError, 10*time.Minute)))
		c := w.component()
		ready := condition(c.Status.Conditions, wechatv1alpha1.ConditionReady)
		Expect(ready.Reason).To(Equal(wechatv1alpha1.ReasonCredentialsRejected))
		Expect(ready.Message).To(ContainSubstring("takes no access token"))
		Expect(ready.Message).To(ContainSubstring("AppSecret"))
		Expect(string(w.tokenSecret().Data["access_token"])).To(Equal(served), "the old token is served until it expires")
	})
})

func keyOf(c *wechatv1alpha1.WeChatComponent) client.ObjectKey { return client.ObjectKeyFromObject(c) }

var _ = Describe("bounded calls when WeChat rejects the component token in an authorizer's call", func() {
	var w *world
	AfterEach(func() { w.close() })

	for _, code := range []int{wxapi.CodeInvalidCredential, wxapi.CodeAccessTokenExpired} {
		It(fmt.Sprintf("refreshes the component token at once on %d, then at most once per backoff", code), func() {
			w = newWorld(withAccounts(seededAccount))
			w.readyPlatform()
			w.applyAuthorizer(seededAuthorizer, testAuthorizerAppID)
			w.sim.AddFault(wxsim.Fault{API: wxapi.APIAuthorizerToken, ErrCode: code, Count: 1 << 30})
			w.clock.SetTime(w.authorizer(seededAuthorizer).Status.RefreshAt.Time)
			w.reconcile() // the component's own refresh is due about then too
			w.clock.Step(time.Minute)
			start, first := w.clock.Now(), w.tokenCalls()

			// The manager's wake-ups: each at its requeue time, the authorizer when the
			// component's token changes, the component when an authorizer annotates it.
			nextA, nextC := start, w.component().Status.RefreshAt.Time
			wakeC := func() {
				expires := w.component().Status.ExpiresAt
				nextC = w.clock.Now().Add(w.reconcile().RequeueAfter)
				if !w.component().Status.ExpiresAt.Equal(expires) {
					nextA = w.clock.Now()
				}
			}
			for i := 0; i < 2000 && w.clock.Now().Before(start.Add(time.Hour)); i++ {
				w.clock.SetTime(minTime(nextA, nextC))
				if i > 0 {
					// A wake-up takes a moment: the authorizer's next request then differs
					// (annotations are whole seconds) and wakes the component again.
					w.clock.Step(time.Second)
				}
				if !w.clock.Now().Before(nextA) {
					annotated := w.component().Annotations[wechatv1alpha1.AnnotationRefreshRequestedAt]
					nextA = w.clock.Now().Add(w.reconcileAuthorizer(seededAuthorizer).RequeueAfter)
					if w.component().Annotations[wechatv1alpha1.AnnotationRefreshRequestedAt] != annotated {
						requestsBefore := w.tokenCalls()
						wakeC()
						if i == 0 {
							Expect(w.tokenCalls()).To(Equal(requestsBefore+1), "the first request is honoured at once")
						}
					}
				}
				if !w.clock.Now().Before(nextC) {
					wakeC()
				}
				// +1: the component's own scheduled refresh may fall into the hour.
				Expect(w.tokenCalls()-first).To(BeNumerically("<=", 1+callsAllowed(refresh.APIFailure, w.clock.Now().Sub(start))),
					"more component token refreshes than the backoff allows after %v", w.clock.Now().Sub(start))
			}
			Expect(w.clock.Now()).To(BeTemporally(">=", start.Add(time.Hour)))
			Expect(w.tokenCalls()-first).To(BeNumerically(">=", 12), "requests were still honoured, once per backoff")
			a := w.authorizer(seededAuthorizer)
			Expect(a.Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonInvalidToken))
			Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionStalled)).To(BeNil())
			Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionReady).Reason).To(Equal(wechatv1alpha1.ReasonInvalidToken))
		})
	}
})
