/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// The API server goes away for longer than the manager's lease renewal deadline. The
// leader-elected manager exits when it cannot renew its Lease, as controller-runtime's
// managers do; in a cluster the kubelet starts it again, here a supervisor does. Tokens are
// 60 s long so that a refresh due during the outage is made, late, once the manager is back.
var _ = Describe("API server restarted mid-run", Ordered, func() {
	const lifetime = 60 * time.Second
	var (
		s   *stack
		t   *tenant
		mgr *harness.Supervisor[*harness.Manager]
	)

	BeforeAll(func() {
		s = newStack("apiserver", 1, lifetime)
		var err error
		n := 0
		mgr, err = harness.Supervise(ctx, "manager", func(c context.Context) (*harness.Manager, error) {
			n++
			return s.launchManager(c, fmt.Sprintf("manager-%d", n), "", "--leader-elect")
		}, harness.SupervisorOptions{Backoff: time.Second, MaxBackoff: 4 * time.Second})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { mgr.Stop(10 * time.Second) })
		t = s.newTenant("apiserver")
		t.ready(nil)
	})

	It("keeps tokens valid through the outage and resumes refreshing", func() {
		recv := s.receivers[0]
		waitUntilRefreshDue(t, 8*time.Second)
		start := time.Now()

		By("stopping kube-apiserver (etcd keeps running)")
		Expect(cp.StopAPIServer()).To(Succeed())
		apiUp := false
		defer func() {
			if !apiUp {
				_ = cp.StartAPIServer()
			}
		}()
		Eventually(func() int { return probePush(t, recv) }).WithTimeout(20*time.Second).
			Should(Equal(http.StatusServiceUnavailable), "the receiver should answer 503 (WeChat retries) while it cannot persist")
		Eventually(func() int { return len(mgr.Exits()) }).WithTimeout(45*time.Second).
			Should(BeNumerically(">=", 1), "the manager kept running without its Lease")
		outage := time.Since(start)
		GinkgoWriter.Printf("the manager exited %s after the API server stopped: %v\n", outage.Round(time.Second), mgr.Exits()[0].Err)

		By("starting kube-apiserver again, same address and certificates")
		Expect(cp.StartAPIServer()).To(Succeed())
		apiUp = true
		GinkgoWriter.Printf("the API server was down for %s\n", time.Since(start).Round(time.Second))
		Eventually(mgr.Running).WithTimeout(time.Minute).Should(BeTrue(), "the manager was not restarted")
		Expect(recv.Exited()).To(BeFalse(), "the receiver exited")
		Eventually(func() int { return probePush(t, recv) }).WithTimeout(30 * time.Second).Should(Equal(http.StatusOK))

		By("the refresh that fell due during the outage is made, and tokens stayed valid throughout")
		Eventually(t.refreshedSince(t.authorizerSecret(), start)).WithTimeout(lifetime).Should(BeNumerically(">=", 1))
		Eventually(t.refreshedSince(t.componentSecret(), start)).WithTimeout(lifetime).Should(BeNumerically(">=", 1))
		// That refresh used the refresh token kept in the state Secret: nothing was lost.
		t.expectHealthy(start)
		Expect(recv.Exited()).To(BeFalse(), "the receiver exited")
	})
})

// probePush posts an authorized push, sealed as WeChat does, for an account no
// WeChatAuthorizer references: the receiver must ask the API server before it answers
// (success, with an AuthorizationNotRecorded Event), and answers 503 when it cannot. It
// returns the HTTP status (0 if the request failed).
func probePush(t *tenant, r *harness.Receiver) int {
	now := time.Now()
	status, _ := postPush(t, r, wxcrypto.AuthorizedPush{AppID: t.componentAppID, Created: now.Unix(),
		Type: wxcrypto.InfoTypeAuthorized, AuthorizerAppID: "wx" + randomHex(8), AuthorizationCode: "queryauthcode@@@probe-" + randomHex(8),
		AuthorizationCodeExpiredTime: now.Add(time.Hour).Unix()}.XML(), now, "")
	return status
}

// postPush seals msg (timestamp ts, nonce, random if "") and posts it to the receiver's events
// URL of the tenant, returning the status and the body.
func postPush(t *tenant, r *harness.Receiver, msg []byte, ts time.Time, nonce string) (int, string) {
	GinkgoHelper()
	q, body := sealPush(t, msg, ts, nonce)
	return post(r.EventsURL(t.ns, t.component)+"?"+q, body)
}

// sealPush seals msg with the tenant's keys and returns the query and the body.
func sealPush(t *tenant, msg []byte, ts time.Time, nonce string) (string, []byte) {
	GinkgoHelper()
	if nonce == "" {
		nonce = strconv.FormatInt(time.Now().UnixNano()%1_000_000_000+1_000_000_000, 10)
	}
	cr, err := wxcrypto.NewCrypter(t.verifyToken, t.encodingAESKey, t.componentAppID)
	Expect(err).NotTo(HaveOccurred())
	timestamp := strconv.FormatInt(ts.Unix(), 10)
	body, sig, err := cr.SealPush(msg, timestamp, nonce)
	Expect(err).NotTo(HaveOccurred())
	return url.Values{"timestamp": {timestamp}, "nonce": {nonce}, "encrypt_type": {"aes"}, "msg_signature": {sig}}.Encode(), body
}

var pushHTTP = &http.Client{Timeout: 10 * time.Second}

// post sends a push body and returns the status (0 if it could not be sent) and the answer.
func post(u string, body []byte) (int, string) {
	resp, err := pushHTTP.Post(u, "text/xml", bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(data)
}
