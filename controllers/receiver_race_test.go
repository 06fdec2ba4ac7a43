/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

// Receiver replicas are stateless and share nothing but the API server: these specs run two
// of them side by side (each with its own replay cache) and race them.
var _ = Describe("two receiver replicas", func() {
	var (
		w       *world
		servers []*httptest.Server
	)
	BeforeEach(func() {
		w = newWorld()
		w.createComponent(func(c *wechatv1alpha1.WeChatComponent) { c.Spec.Authorizers.AutoCreate = true })
		w.reconcile()
		servers = nil
		for range 2 {
			r := receiver.New(receiver.Options{Reader: k8sClient, Client: k8sClient,
				Keyring: types.NamespacedName{Namespace: w.ns, Name: testKeyringName}, Clock: w.clock})
			servers = append(servers, httptest.NewServer(r.Handler()))
		}
	})
	AfterEach(func() {
		for _, s := range servers {
			s.Close()
		}
		w.close()
	})

	seal := func(msg []byte, nonce string) (string, []byte) {
		crypter, err := wxcrypto.NewCrypter(testVerifyToken, testEncodingAESKey, testComponentAppID)
		Expect(err).NotTo(HaveOccurred())
		ts := strconv.FormatInt(w.clock.Now().Unix(), 10)
		body, sig, err := crypter.SealPush(msg, ts, nonce)
		Expect(err).NotTo(HaveOccurred())
		return url.Values{"timestamp": {ts}, "nonce": {nonce}, "msg_signature": {sig}}.Encode(), body
	}
	// race sends each push to its replica at the same moment and returns the HTTP statuses.
	race := func(pushes ...func(server string) (string, []byte)) []int {
		statuses := make([]int, len(pushes))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, push := range pushes {
			server := servers[i%len(servers)].URL
			q, body := push(server)
			wg.Go(func() {
				defer GinkgoRecover()
				<-start
				resp, err := http.Post(fmt.Sprintf("%s/wechat/%s/platform/events?%s", server, w.ns, q), "text/xml", bytes.NewReader(body))
				Expect(err).NotTo(HaveOccurred())
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			})
		}
		close(start)
		wg.Wait()
		return statuses
	}
	ticket := func(value string, created time.Time, nonce string) func(string) (string, []byte) {
		return func(string) (string, []byte) {
			return seal(wxcrypto.TicketPush{AppID: testComponentAppID, Created: created.Unix(), Ticket: value}.XML(), nonce)
		}
	}

	It("both answer the same ticket push, and the newest of racing tickets wins", func() {
		now := w.clock.Now()
		same := ticket("same", now, "1")
		Expect(race(same, same)).To(Equal([]int{200, 200}))
		Expect(w.component().Status.VerifyTicket.Ticket).To(Equal("same"))

		for round := range 5 {
			older := ticket(fmt.Sprintf("older-%d", round), now.Add(time.Duration(2*round+1)*time.Second), fmt.Sprintf("o%d", round))
			newer := ticket(fmt.Sprintf("newer-%d", round), now.Add(time.Duration(2*round+2)*time.Second), fmt.Sprintf("n%d", round))
			Expect(race(older, newer)).To(Equal([]int{200, 200}))
			Expect(w.component().Status.VerifyTicket.Ticket).To(Equal(fmt.Sprintf("newer-%d", round)))
		}
	})

	It("record the same authorization once when both get it, and the manager creates one WeChatAuthorizer", func() {
		// A code WeChat knows (the manager creates an authorizer only for the account its
		// exchange names), whose own push is held back so that the race below delivers it.
		receiverURL := fmt.Sprintf("%s/wechat/%s/platform/events", w.recvServer.URL, w.ns)
		Expect(w.sim.SetReceiverURL(testComponentAppID, "http://127.0.0.1:1/unreachable")).To(Succeed())
		res, err := w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID, AuthorizerAppID: testAuthorizerAppID})
		Expect(err).NotTo(HaveOccurred())
		Expect(w.sim.SetReceiverURL(testComponentAppID, receiverURL)).To(Succeed())
		code := res.AuthCode
		push := func(string) (string, []byte) {
			return seal(wxcrypto.AuthorizedPush{AppID: testComponentAppID, Created: w.clock.Now().Unix(),
				Type: wxcrypto.InfoTypeAuthorized, AuthorizerAppID: testAuthorizerAppID, AuthorizationCode: code,
				AuthorizationCodeExpiredTime: w.clock.Now().Add(time.Hour).Unix()}.XML(), "7")
		}
		Expect(race(push, push)).To(Equal([]int{200, 200}))
		list := &wechatv1alpha1.WeChatAuthorizerList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(w.ns))).To(Succeed())
		Expect(list.Items).To(BeEmpty(), "the receivers create nothing")
		pending := w.component().Status.PendingAuthorizationCodes
		Expect(pending).To(HaveLen(1))
		Expect(pending[0].Code).To(Equal(code))
		Expect(pending[0].Source).To(Equal(wechatv1alpha1.AuthorizationCodeFromPush))

		By("the manager, once it has a token, creating the one authorizer")
		w.pushTicket()
		w.reconcile()
		Expect(k8sClient.List(ctx, list, client.InNamespace(w.ns))).To(Succeed())
		Expect(list.Items).To(HaveLen(1))
		Expect(list.Items[0].Name).To(Equal(autoName))
		Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(1), "exchanged once")
		Expect(w.component().Status.PendingAuthorizationCodes).To(BeEmpty())
	})

	It("keep accepting valid pushes while flooded with bad ones", func() {
		var pushes []func(string) (string, []byte)
		for i := range 60 {
			if i%6 == 0 {
				pushes = append(pushes, ticket(fmt.Sprintf("valid-%d", i), w.clock.Now().Add(time.Duration(i)*time.Second), fmt.Sprintf("v%d", i)))
				continue
			}
			nonce := fmt.Sprintf("b%d", i)
			pushes = append(pushes, func(string) (string, []byte) {
				q, body := seal(wxcrypto.TicketPush{AppID: testComponentAppID, Created: 1, Ticket: "forged"}.XML(), nonce)
				return q, bytes.Replace(body, []byte("<Encrypt><![CDATA["), []byte("<Encrypt><![CDATA[AAAA"), 1)
			})
		}
		statuses := race(pushes...)
		for i, status := range statuses {
			if i%6 == 0 {
				Expect(status).To(Equal(http.StatusOK), "valid push %d", i)
			} else {
				Expect(status).To(Equal(http.StatusForbidden), "bad push %d", i)
			}
		}
		Expect(w.component().Status.VerifyTicket.Ticket).To(Equal("valid-54"))
	})
})
