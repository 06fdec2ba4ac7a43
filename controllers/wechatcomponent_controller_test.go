/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

var _ = Describe("WeChatComponent controller with the receiver and the simulator", func() {
	var w *world
	AfterEach(func() { w.close() })

	// issueFirstToken runs the first reconcile (which projects the keys and waits for a
	// ticket), pushes a ticket through the receiver, and reconciles again.
	issueFirstToken := func() {
		w.createComponent()
		w.reconcile()
		w.pushTicket()
		w.reconcile()
	}

	It("turns a ticket push into a token Secret and status", func() {
		w = newWorld()
		w.createComponent()

		result := w.reconcile()
		c := w.component()
		Expect(condition(c.Status.Conditions, wechatv1alpha1.ConditionTicketReceived).Reason).To(Equal(wechatv1alpha1.ReasonWaitingForTicket))
		Expect(condition(c.Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
		Expect(result.RequeueAfter).To(Equal(keyringSettleTime), "new keys get a moment to reach the receivers")
		Expect(w.sim.Calls(wxapi.APIStartPushTicket, testComponentAppID)).To(Equal(0), "no push asked for before the receivers can verify it")

		w.clock.Step(keyringSettleTime)
		issuedAt := simStart.Add(keyringSettleTime)
		result = w.reconcile()
		Expect(result.RequeueAfter).To(BeNumerically(">", 0))
		Expect(w.sim.Calls(wxapi.APIStartPushTicket, testComponentAppID)).To(Equal(1), "asks WeChat to push a ticket")
		Expect(w.tokenSecret()).To(BeNil())

		// The keyring now has the receiver's keys, and never the AppSecret.
		ring := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: testKeyringName}, ring)).To(Succeed())
		Expect(string(ring.Data[keyring.TokenKey(w.ns, "platform")])).To(Equal(testVerifyToken))
		Expect(string(ring.Data[keyring.AESKeyKey(w.ns, "platform")])).To(Equal(testEncodingAESKey))
		for _, v := range ring.Data {
			Expect(string(v)).NotTo(Equal(testAppSecret))
		}

		ticket := w.pushTicket()
		c = w.component()
		Expect(c.Status.VerifyTicket).NotTo(BeNil())
		Expect(c.Status.VerifyTicket.Ticket).To(Equal(ticket))
		Expect(c.Status.VerifyTicket.CreateTime.Time).To(BeTemporally("==", w.clock.Now().Truncate(time.Second)))

		result = w.reconcile()
		secret := w.tokenSecret()
		Expect(secret).NotTo(BeNil())
		token := string(secret.Data["access_token"])
		Expect(token).NotTo(BeEmpty())
		Expect(w.sim.TokenState(token)).To(Equal(0), "the simulator accepts the token in the Secret")
		Expect(string(secret.Data["appid"])).To(Equal(testComponentAppID))
		expires := issuedAt.Add(2 * time.Hour).UTC().Format(time.RFC3339)
		Expect(string(secret.Data["expires_at"])).To(Equal(expires))
		Expect(secret.Annotations).To(HaveKeyWithValue(wechatv1alpha1.AnnotationExpiresAt, expires))
		Expect(secret.Annotations).To(HaveKey(wechatv1alpha1.AnnotationTokenHash))
		Expect(secret.Labels).To(HaveKeyWithValue(wechatv1alpha1.LabelManagedBy, wechatv1alpha1.ManagedByValue))
		Expect(metav1.IsControlledBy(secret, w.component())).To(BeTrue())

		c = w.component()
		Expect(c.Status.TokenSecretName).To(Equal("platform-component-token"))
		Expect(c.Status.ExpiresAt.Time).To(BeTemporally("==", issuedAt.Add(2*time.Hour)))
		Expect(c.Status.LastRefreshTime.Time).To(BeTemporally("==", issuedAt))
		// 7200 s: refresh 12 minutes before expiry, minus half of the 6-minute jitter.
		Expect(c.Status.RefreshAt.Time).To(BeTemporally("==", issuedAt.Add(2*time.Hour-15*time.Minute)))
		Expect(result.RequeueAfter).To(Equal(2*time.Hour - 15*time.Minute))
		ready := condition(c.Status.Conditions, wechatv1alpha1.ConditionReady)
		Expect(ready.Status).To(Equal(metav1.ConditionTrue))
		Expect(ready.Reason).To(Equal(wechatv1alpha1.ReasonTokenIssued))
		Expect(ready.ObservedGeneration).To(Equal(c.Generation))
		Expect(condition(c.Status.Conditions, wechatv1alpha1.ConditionTicketReceived).Status).To(Equal(metav1.ConditionTrue))
		Expect(w.tokenCalls()).To(Equal(1))

		By("finding no secret in the logs, Events or status")
		var recorded []string
		for len(w.recorder.Events) > 0 {
			recorded = append(recorded, <-w.recorder.Events)
		}
		Expect(recorded).To(ContainElement(ContainSubstring(wechatv1alpha1.EventTokenIssued)))
		conds := fmt.Sprintf("%v", c.Status.Conditions)
		for _, secretValue := range []string{token, ticket, testAppSecret, testVerifyToken, testEncodingAESKey} {
			Expect(w.logs.String()).NotTo(ContainSubstring(secretValue))
			Expect(strings.Join(recorded, "\n")).NotTo(ContainSubstring(secretValue))
			Expect(conds).NotTo(ContainSubstring(secretValue))
		}
		Expect(w.logs.String()).To(ContainSubstring("component_access_token refreshed"), "the logs were captured")
	})

	It("refreshes exactly once per cycle over 24 simulated hours, never serving an expired token", func() {
		w = newWorld()
		issueFirstToken()
		Expect(w.tokenCalls()).To(Equal(1))

		// Walk the day in 10-minute steps, as WeChat pushes tickets, and also stop exactly
		// at every requeue time the controller asks for.
		end := simStart.Add(24 * time.Hour)
		next := w.clock.Now().Add(w.reconcile().RequeueAfter)
		nextPush := simStart.Add(10 * time.Minute)
		for w.clock.Now().Before(end) {
			step := nextPush
			if next.Before(step) {
				step = next
			}
			w.clock.SetTime(step)
			if !step.Before(nextPush) {
				w.pushTicket()
				nextPush = nextPush.Add(10 * time.Minute)
			}
			result := w.reconcile()
			next = w.clock.Now().Add(result.RequeueAfter)

			secret := w.tokenSecret()
			expiresAt, err := time.Parse(time.RFC3339, string(secret.Data["expires_at"]))
			Expect(err).NotTo(HaveOccurred())
			Expect(w.clock.Now().Before(expiresAt)).To(BeTrue(), "the Secret holds an expired token at %v", w.clock.Now())
			Expect(w.sim.TokenState(string(secret.Data["access_token"]))).To(Equal(0),
				"WeChat rejects the Secret's token at %v", w.clock.Now())
		}
		// The first call was at the start; 13 or 14 more happen within the day.
		calls := w.tokenCalls() - 1
		Expect(calls).To(And(BeNumerically(">=", 13), BeNumerically("<=", 14)))
		Expect(w.sim.Calls(wxapi.APIStartPushTicket, testComponentAppID)).To(BeNumerically("<=", 1), "only before the first ticket")
	})

	It("makes no WeChat call when reconciled again with a fresh token (a restart)", func() {
		w = newWorld()
		issueFirstToken()
		before := w.tokenCalls()
		status := w.component().Status.DeepCopy()

		// A new reconciler has no memory, like a restarted manager.
		old := w.reconciler
		w.reconciler = &WeChatComponentReconciler{
			Client: old.Client, APIReader: old.APIReader, Scheme: old.Scheme, Recorder: old.Recorder,
			WeChat: old.WeChat, Clock: old.Clock, Random: func() float64 { return 0.9 },
			KeyringNamespace: old.KeyringNamespace, KeyringName: old.KeyringName,
		}
		w.clock.Step(30 * time.Minute)
		result := w.reconcile()
		Expect(w.tokenCalls()).To(Equal(before))
		Expect(result.RequeueAfter).To(Equal(status.RefreshAt.Sub(w.clock.Now())))
		Expect(w.component().Status.RefreshAt).To(Equal(status.RefreshAt), "the jitter is not rolled again")
	})

	It("refreshes when the token Secret was deleted or edited", func() {
		w = newWorld()
		issueFirstToken()
		Expect(k8sClient.Delete(ctx, w.tokenSecret())).To(Succeed())
		w.reconcile()
		Expect(w.tokenSecret()).NotTo(BeNil())
		Expect(w.tokenCalls()).To(Equal(2))
	})

	DescribeTable("says what to fix when the credentials are wrong",
		func(data map[string]string, reason, message string) {
			w = newWorld()
			if data != nil {
				Expect(k8sClient.Create(ctx, &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: w.ns,
						Annotations: releasedTo(wechatv1alpha1.KindWeChatComponent + "/platform")}, StringData: data,
				})).To(Succeed())
			}
			Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatComponent{
				ObjectMeta: metav1.ObjectMeta{Name: "platform", Namespace: w.ns},
				Spec: wechatv1alpha1.WeChatComponentSpec{
					AppID: testComponentAppID, CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: "creds"},
				},
			})).To(Succeed())
			result := w.reconcile()
			ready := condition(w.component().Status.Conditions, wechatv1alpha1.ConditionReady)
			Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			Expect(ready.Reason).To(Equal(reason))
			Expect(ready.Message).To(ContainSubstring(message))
			Expect(result.RequeueAfter).To(BeNumerically(">=", 24*time.Second), "configuration errors retry slowly")
			Expect(w.component().Status.FailedAttempts).To(Equal(int32(1)))
			Expect(w.sim.Calls(wxapi.APIStartPushTicket, testComponentAppID)).To(Equal(0))
			Expect(ready.Message).NotTo(ContainSubstring("bad-key-value"))
		},
		Entry("missing Secret", nil, wechatv1alpha1.ReasonCredentialsSecretNotFound, `credentials Secret "creds" not found`),
		Entry("missing key", map[string]string{"appSecret": testAppSecret, "token": testVerifyToken},
			wechatv1alpha1.ReasonCredentialsInvalid, `lacks the key(s) ["encodingAESKey"]`),
		Entry("malformed EncodingAESKey", map[string]string{"appSecret": testAppSecret, "token": testVerifyToken, "encodingAESKey": "bad-key-value"},
			wechatv1alpha1.ReasonCredentialsInvalid, "is not a valid EncodingAESKey"),
	)

	It("reports a wrong AppSecret from WeChat as a configuration error", func() {
		w = newWorld()
		w.createComponent()
		w.setAppSecret("wrong-secret")
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		ready := condition(w.component().Status.Conditions, wechatv1alpha1.ConditionReady)
		Expect(ready.Reason).To(Equal(wechatv1alpha1.ReasonInvalidAppSecret))
		Expect(ready.Message).To(ContainSubstring("check the AppSecret"))
		Expect(ready.Message).NotTo(ContainSubstring("wrong-secret"))
	})

	DescribeTable("backs off on WeChat faults, says why, and recovers",
		func(errcode int, reason string, wantNewTicket bool) {
			w = newWorld()
			issueFirstToken()
			good := string(w.tokenSecret().Data["access_token"])
			pushesBefore := w.sim.Calls(wxapi.APIStartPushTicket, testComponentAppID)

			// Three failures at refresh time, then WeChat recovers.
			w.clock.SetTime(w.component().Status.RefreshAt.Time)
			w.sim.AddFault(wxsim.Fault{API: wxapi.APIComponentToken, ErrCode: errcode, Count: 3})
			var waits []time.Duration
			for i := 1; i <= 3; i++ {
				result := w.reconcile()
				c := w.component()
				Expect(c.Status.FailedAttempts).To(Equal(int32(i)))
				Expect(c.Status.LastFailureReason).To(Equal(reason))
				ready := condition(c.Status.Conditions, wechatv1alpha1.ConditionReady)
				Expect(ready.Status).To(Equal(metav1.ConditionTrue), "the old token is still valid")
				Expect(ready.Reason).To(Equal(reason))
				Expect(string(w.tokenSecret().Data["access_token"])).To(Equal(good), "the old token keeps being served")
				waits = append(waits, result.RequeueAfter)
				w.clock.Step(result.RequeueAfter)
			}
			Expect(waits[1]).To(BeNumerically(">", waits[0]), "backoff grows")
			Expect(waits[2]).To(BeNumerically(">", waits[1]), "backoff grows")
			if wantNewTicket {
				Expect(w.sim.Calls(wxapi.APIStartPushTicket, testComponentAppID)).To(BeNumerically(">", pushesBefore))
				Expect(condition(w.component().Status.Conditions, wechatv1alpha1.ConditionTicketReceived).Reason).
					To(Equal(wechatv1alpha1.ReasonTicketRejected))
				w.pushTicket()
			}

			w.reconcile()
			c := w.component()
			Expect(c.Status.FailedAttempts).To(BeZero())
			Expect(c.Status.LastFailureReason).To(BeEmpty())
			Expect(condition(c.Status.Conditions, wechatv1alpha1.ConditionReady).Reason).To(Equal(wechatv1alpha1.ReasonTokenIssued))
			Expect(string(w.tokenSecret().Data["access_token"])).NotTo(Equal(good))
		},
		Entry("-1 system busy", wxapi.CodeBusy, wechatv1alpha1.ReasonWeChatBusy, false),
		Entry("45009 quota reached", wxapi.CodeQuotaReached, wechatv1alpha1.ReasonQuotaExceeded, false),
		Entry("61006 ticket invalid", wxapi.CodeTicketInvalid, wechatv1alpha1.ReasonTicketRejected, true),
	)

	It("keeps serving the old token while WeChat is unreachable, and recovers", func() {
		w = newWorld()
		issueFirstToken()
		good := string(w.tokenSecret().Data["access_token"])
		w.clock.SetTime(w.component().Status.RefreshAt.Time)
		w.sim.AddFault(wxsim.Fault{API: wxapi.APIComponentToken, HTTPStatus: http.StatusBadGateway, Count: 2})
		for i := 1; i <= 2; i++ {
			result := w.reconcile()
			c := w.component()
			Expect(c.Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonWeChatUnreachable))
			Expect(condition(c.Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
			Expect(string(w.tokenSecret().Data["access_token"])).To(Equal(good))
			w.clock.Step(result.RequeueAfter)
		}
		w.reconcile()
		Expect(w.component().Status.FailedAttempts).To(BeZero())
		Expect(string(w.tokenSecret().Data["access_token"])).NotTo(Equal(good))
	})

	It("backs off after 40001 from api_component_token, a credentials problem, instead of calling again at once", func() {
		w = newWorld()
		issueFirstToken()
		w.clock.SetTime(w.component().Status.RefreshAt.Time)
		w.sim.AddFault(wxsim.Fault{API: wxapi.APIComponentToken, ErrCode: wxapi.CodeInvalidCredential})
		result := w.reconcile()
		Expect(w.component().Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonCredentialsRejected))
		Expect(result.RequeueAfter).To(BeNumerically(">=", 24*time.Second), "the configuration backoff, not a refresh now")
		w.reconcile()
		Expect(w.tokenCalls()).To(Equal(2), "no call before the backoff ends")
		w.clock.Step(result.RequeueAfter)
		w.reconcile()
		Expect(w.tokenCalls()).To(Equal(3))
		Expect(w.component().Status.FailedAttempts).To(BeZero())
	})

	It("refreshes when an annotation asks for it", func() {
		w = newWorld()
		issueFirstToken()
		w.clock.Step(time.Minute)
		c := w.component()
		c.Annotations = map[string]string{wechatv1alpha1.AnnotationRefreshRequestedAt: w.clock.Now().Format(time.RFC3339)}
		Expect(k8sClient.Update(ctx, c)).To(Succeed())
		w.reconcile()
		Expect(w.tokenCalls()).To(Equal(2))
		w.reconcile()
		Expect(w.tokenCalls()).To(Equal(2), "the same request is honoured once")
	})

	Describe("the receiver", func() {
		// seal builds a push signed and encrypted with the component's real keys.
		seal := func(msg string, ts time.Time) (string, []byte) {
			crypter, err := wxcrypto.NewCrypter(testVerifyToken, testEncodingAESKey, testComponentAppID)
			Expect(err).NotTo(HaveOccurred())
			timestamp := strconv.FormatInt(ts.Unix(), 10)
			body, sig, err := crypter.SealPush([]byte(msg), timestamp, "12345")
			Expect(err).NotTo(HaveOccurred())
			q := url.Values{"timestamp": {timestamp}, "nonce": {"12345"}, "msg_signature": {sig}, "encrypt_type": {"aes"}}
			return q.Encode(), body
		}
		ticketXML := func(ticket string, created time.Time) string {
			return fmt.Sprintf("<xml><AppId><![CDATA[%s]]></AppId><CreateTime>%d</CreateTime>"+
				"<InfoType><![CDATA[component_verify_ticket]]></InfoType>"+
				"<ComponentVerifyTicket><![CDATA[%s]]></ComponentVerifyTicket></xml>", testComponentAppID, created.Unix(), ticket)
		}
		eventsPath := func() string { return fmt.Sprintf("/wechat/%s/platform/events", w.ns) }

		BeforeEach(func() {
			w = newWorld()
			w.createComponent()
			w.reconcile() // projects the keys
		})

		expectRejected := func(resp *http.Response, status int) {
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			Expect(resp.StatusCode).To(Equal(status))
			Expect(string(body)).NotTo(Equal("success"))
			Expect(w.component().Status.VerifyTicket).To(BeNil(), "no status change")
		}

		It("accepts a valid push and answers success", func() {
			q, body := seal(ticketXML("ticket-1", w.clock.Now()), w.clock.Now())
			resp := w.post(eventsPath(), q, body)
			defer resp.Body.Close()
			answer, _ := io.ReadAll(resp.Body)
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(string(answer)).To(Equal("success"))
			Expect(w.component().Status.VerifyTicket.Ticket).To(Equal("ticket-1"))
		})

		It("rejects a tampered push", func() {
			q, body := seal(ticketXML("ticket-1", w.clock.Now()), w.clock.Now())
			tampered := strings.Replace(string(body), "<Encrypt><![CDATA[", "<Encrypt><![CDATA[A", 1)
			expectRejected(w.post(eventsPath(), q, []byte(tampered)), http.StatusForbidden)
		})

		It("rejects a push signed with another token", func() {
			other, err := wxcrypto.NewCrypter("another-token", testEncodingAESKey, testComponentAppID)
			Expect(err).NotTo(HaveOccurred())
			ts := strconv.FormatInt(w.clock.Now().Unix(), 10)
			body, sig, err := other.SealPush([]byte(ticketXML("t", w.clock.Now())), ts, "1")
			Expect(err).NotTo(HaveOccurred())
			expectRejected(w.post(eventsPath(), url.Values{"timestamp": {ts}, "nonce": {"1"}, "msg_signature": {sig}}.Encode(), body), http.StatusForbidden)
		})

		It("rejects a push whose timestamp is outside the window", func() {
			old := w.clock.Now().Add(-10 * time.Minute)
			q, body := seal(ticketXML("ticket-1", old), old)
			expectRejected(w.post(eventsPath(), q, body), http.StatusBadRequest)
		})

		It("rejects an oversized push with 413", func() {
			q, _ := seal(ticketXML("ticket-1", w.clock.Now()), w.clock.Now())
			expectRejected(w.post(eventsPath(), q, []byte(strings.Repeat("x", 65<<10))), http.StatusRequestEntityTooLarge)
		})

		It("rejects a push for an unknown component with 404", func() {
			q, body := seal(ticketXML("ticket-1", w.clock.Now()), w.clock.Now())
			expectRejected(w.post(fmt.Sprintf("/wechat/%s/nobody/events", w.ns), q, body), http.StatusNotFound)
		})

		It("answers a retried push with success without applying it twice", func() {
			q, body := seal(ticketXML("ticket-1", w.clock.Now()), w.clock.Now())
			resp := w.post(eventsPath(), q, body)
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			version := w.component().ResourceVersion

			resp = w.post(eventsPath(), q, body)
			defer resp.Body.Close()
			answer, _ := io.ReadAll(resp.Body)
			Expect(string(answer)).To(Equal("success"))
			Expect(w.component().ResourceVersion).To(Equal(version), "the retry wrote nothing")
			Expect(testutilCounter(w.registry, "wechat_receiver_pushes_total", "duplicate")).To(Equal(1.0))
		})

		It("keeps the newest ticket when an older one arrives late", func() {
			now := w.clock.Now()
			q, body := seal(ticketXML("newer", now), now)
			w.post(eventsPath(), q, body).Body.Close()
			q, body = seal(ticketXML("older", now.Add(-time.Minute)), now)
			resp := w.post(eventsPath(), q, body)
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(w.component().Status.VerifyTicket.Ticket).To(Equal("newer"))
		})

		It("does not overwrite a newer ticket another replica wrote after its cache was read", func() {
			now := w.clock.Now()
			q, body := seal(ticketXML("oldest", now.Add(-2*time.Minute)), now)
			w.post(eventsPath(), q, body).Body.Close()
			stale := w.component()
			q, body = seal(ticketXML("newest", now), now)
			w.post(eventsPath(), q, body).Body.Close()
			Expect(w.component().Status.VerifyTicket.Ticket).To(Equal("newest"))

			// A replica whose cache still shows the oldest ticket gets one in between.
			lagging := receiver.New(receiver.Options{
				Reader: staleReader{stale: stale, Reader: k8sClient}, APIReader: k8sClient, Client: k8sClient,
				Keyring: client.ObjectKey{Namespace: w.ns, Name: testKeyringName}, Clock: w.clock,
			})
			server := httptest.NewServer(lagging.Handler())
			defer server.Close()
			q, body = seal(ticketXML("middle", now.Add(-time.Minute)), now)
			resp, err := http.Post(server.URL+eventsPath()+"?"+q, "text/xml", bytes.NewReader(body))
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(w.component().Status.VerifyTicket.Ticket).To(Equal("newest"))
		})

		It("answers 503 when it cannot write status, so WeChat retries", func() {
			failing := newWorld(func(c *worldConfig) { c.receiverWrite = failingStatusWriter(1) })
			defer failing.close()
			failing.createComponent()
			failing.reconcile()
			path := fmt.Sprintf("/wechat/%s/platform/events", failing.ns)
			q, body := seal(ticketXML("ticket-1", failing.clock.Now()), failing.clock.Now())
			resp := failing.post(path, q, body)
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))
			Expect(failing.component().Status.VerifyTicket).To(BeNil())

			// WeChat's retry of the same push, once the API server is back, is applied:
			// the failed attempt was not remembered as done.
			resp = failing.post(path, q, body)
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(failing.component().Status.VerifyTicket.Ticket).To(Equal("ticket-1"))
		})

		It("answers success to pushes of other types without changing anything", func() {
			msg := fmt.Sprintf("<xml><AppId>%s</AppId><CreateTime>%d</CreateTime><InfoType>notify_third_fasteregister</InfoType></xml>",
				testComponentAppID, w.clock.Now().Unix())
			q, body := seal(msg, w.clock.Now())
			resp := w.post(eventsPath(), q, body)
			defer resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(w.component().Status.VerifyTicket).To(BeNil())
		})
	})
})

// staleReader serves an old copy of one WeChatComponent, like a lagging informer cache.
type staleReader struct {
	client.Reader
	stale *wechatv1alpha1.WeChatComponent
}

func (r staleReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if c, ok := obj.(*wechatv1alpha1.WeChatComponent); ok && key == client.ObjectKeyFromObject(r.stale) {
		r.stale.DeepCopyInto(c)
		return nil
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}
