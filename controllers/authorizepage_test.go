/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/authlink"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

var enablePage = func(c *wechatv1alpha1.WeChatComponent) { c.Spec.AuthorizePage.Enabled = true }

// addLinkRequest records a start page request as the receiver does (its field manager).
func (w *world) addLinkRequest(id string, at time.Time) {
	c := w.component()
	base := c.DeepCopy()
	c.Status.AuthorizeLinkRequests = append(c.Status.AuthorizeLinkRequests,
		wechatv1alpha1.AuthorizeLinkRequest{ID: id, RequestedAt: metav1.NewTime(at.UTC().Truncate(time.Second))})
	Expect(k8sClient.Status().Patch(ctx, c, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}),
		client.FieldOwner(receiver.FieldManager))).To(Succeed())
}

// removeLinkRequest removes a request as the receiver does once it showed the answer.
func (w *world) removeLinkRequest(id string) {
	c := w.component()
	base := c.DeepCopy()
	c.Status.AuthorizeLinkRequests = slices.DeleteFunc(c.Status.AuthorizeLinkRequests, func(r wechatv1alpha1.AuthorizeLinkRequest) bool { return r.ID == id })
	Expect(k8sClient.Status().Patch(ctx, c, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}),
		client.FieldOwner(receiver.FieldManager))).To(Succeed())
}

func (w *world) linkRequest(id string) *wechatv1alpha1.AuthorizeLinkRequest {
	for _, r := range w.component().Status.AuthorizeLinkRequests {
		if r.ID == id {
			return &r
		}
	}
	return nil
}

func (w *world) preAuthCalls() int {
	return w.sim.Calls(wxapi.APICreatePreAuthCode, testComponentAppID)
}

var _ = Describe("the authorization start page's requests", func() {
	var w *world
	BeforeEach(func() {
		w = newWorld()
		DeferCleanup(w.close)
	})
	ready := func(mutate ...func(*wechatv1alpha1.WeChatComponent)) {
		w.createComponent(mutate...)
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		Expect(w.tokenSecret()).NotTo(BeNil())
	}

	It("gets exactly one api_create_preauthcode call each, sealed for the receiver, and are pruned", func() {
		ready(enablePage)
		w.addLinkRequest("request-aaaaaaaaaaaaaaaa", w.clock.Now())
		w.reconcile()
		answer := w.linkRequest("request-aaaaaaaaaaaaaaaa")
		Expect(answer).NotTo(BeNil())
		Expect(answer.AnsweredAt).NotTo(BeNil())
		Expect(answer.FailureReason).To(BeEmpty())
		Expect(w.preAuthCalls()).To(Equal(1))
		code, err := authlink.Open(authlink.SealKey(testVerifyToken, testEncodingAESKey), w.ns, "platform", answer.ID, answer.SealedPreAuthCode)
		Expect(err).NotTo(HaveOccurred())
		Expect(answer.SealedPreAuthCode).NotTo(ContainSubstring(code))
		Expect(answer.ExpiresAt.Time).To(BeTemporally("~", w.clock.Now().Add(wxsim.DefaultPreAuthCodeLifetime), time.Second))
		By("the code is WeChat's: the simulator accepts it")
		_, err = w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID, AuthorizerAppID: testAuthorizerAppID, PreAuthCode: code})
		Expect(err).NotTo(HaveOccurred())
		Expect(w.logs.String()).NotTo(ContainSubstring(code))

		By("reconciling again makes no second code")
		w.reconcile()
		Expect(w.preAuthCalls()).To(Equal(1))
		Expect(w.linkRequest(answer.ID).SealedPreAuthCode).To(Equal(answer.SealedPreAuthCode))

		By("a request the receiver stopped waiting for gets no code, and an answered one goes after a minute")
		w.addLinkRequest("request-stale-bbbbbbbbbb", w.clock.Now().Add(-time.Minute+time.Second))
		w.clock.Step(time.Minute)
		w.reconcile()
		Expect(w.preAuthCalls()).To(Equal(1))
		Expect(w.component().Status.AuthorizeLinkRequests).To(BeEmpty())
	})

	It("get no code while the page is disabled or the platform has no token", func() {
		ready()
		w.addLinkRequest("request-disabled-cccccc", w.clock.Now())
		w.reconcile()
		Expect(w.linkRequest("request-disabled-cccccc").FailureReason).To(Equal(wechatv1alpha1.ReasonAuthorizePageDisabled))
		Expect(w.preAuthCalls()).To(Equal(0))
	})

	It("cost at most the budget and the backoff allow under a persistent WeChat error", func() {
		ready(enablePage)
		w.sim.AddFault(wxsim.Fault{API: wxapi.APICreatePreAuthCode, ErrCode: wxapi.CodeBusy, Count: 1 << 30})
		// A request every second for two minutes, as a flood through the receiver would be.
		for i := range 120 {
			id := fmt.Sprintf("request-flood-%08d", i)
			w.addLinkRequest(id, w.clock.Now())
			w.reconcile()
			Expect(w.linkRequest(id).FailureReason).NotTo(BeEmpty(), "request %d got no answer", i)
			w.removeLinkRequest(id)
			w.clock.Step(time.Second)
		}
		// 5 s doubling (less 10 % jitter): calls at about 0, 4.5, 13.5, 31.5, 67.5 s.
		Expect(w.preAuthCalls()).To(BeNumerically("<=", 6))
		Expect(w.preAuthCalls()).To(BeNumerically(">=", 4))

		By("the budget bounds the calls when WeChat answers, too")
		w.sim.ClearFaults()
		w.clock.Step(10 * time.Minute)
		before := w.preAuthCalls()
		for i := range 8 {
			w.addLinkRequest(fmt.Sprintf("request-burst-%08d", i), w.clock.Now())
			w.reconcile()
		}
		Expect(w.preAuthCalls() - before).To(Equal(DefaultLinkBurst))
		Expect(w.linkRequest("request-burst-00000007").FailureReason).To(Equal(wechatv1alpha1.ReasonAuthorizeLinksThrottled))
	})
})

var startLinkPattern = regexp.MustCompile(`id="pc" href="([^"]+)"`)

var _ = Describe("the authorization start page, end to end", func() {
	It("shows a link the manager made, which WeChat accepts once, to the receiver running as its own ServiceAccount", func() {
		w := newWorld()
		defer w.close()
		applyReceiverRBAC(w.ns)
		w.createComponent(enablePage)
		w.reconcile()
		w.pushTicket()
		w.reconcile()

		By("running the manager's component controller, which the receiver's request wakes")
		mgr := newNamespaceManager(w.ns, w.logger)
		counting := &countingReconciler{key: w.key, inner: w.reconciler}
		Expect(setupComponentController(mgr, counting, 1)).To(Succeed())
		defer runManager(mgr)()
		mctx, stop := context.WithCancel(ctx)
		defer stop()

		By("starting a receiver as the webhook-receiver ServiceAccount, with its informer cache")
		asReceiver := rest.CopyConfig(cfg)
		asReceiver.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + w.ns + ":webhook-receiver"}
		keyringKey := types.NamespacedName{Namespace: w.ns, Name: testKeyringName}
		options := receiver.CacheOptions(keyringKey)
		options.Scheme = scheme
		receiverCache, err := cache.New(asReceiver, options)
		Expect(err).NotTo(HaveOccurred())
		components, err := receiverCache.GetInformer(ctx, &wechatv1alpha1.WeChatComponent{})
		Expect(err).NotTo(HaveOccurred())
		for _, obj := range []client.Object{&wechatv1alpha1.WeChatAuthorizer{}, &corev1.Secret{}} {
			_, err := receiverCache.GetInformer(ctx, obj)
			Expect(err).NotTo(HaveOccurred())
		}
		go func() { _ = receiverCache.Start(mctx) }()
		Expect(receiverCache.WaitForCacheSync(mctx)).To(BeTrue())
		direct, err := client.New(asReceiver, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		recv := receiver.New(receiver.Options{Reader: receiverCache, APIReader: direct, Client: direct, Keyring: keyringKey,
			Clock: w.clock, Logger: w.logger.WithName("receiver-sa")})
		Expect(recv.WatchComponents(components)).To(Succeed())
		server := httptest.NewServer(recv.Handler())
		defer server.Close()
		pageURL := fmt.Sprintf("%s/wechat/%s/platform/authorize", server.URL, w.ns)
		Eventually(func() int {
			resp, err := http.Get(fmt.Sprintf("%s/wechat/%s/nope/authorize", server.URL, w.ns))
			if err != nil {
				return 0
			}
			_ = resp.Body.Close()
			return resp.StatusCode
		}).Should(Equal(http.StatusNotFound))

		// The manager's first reconcile is over: what follows is woken by the receiver's request.
		Eventually(counting.done.Load).Should(BeNumerically(">=", 1))
		settled := counting.done.Load()

		By("fetching the page: one pre_auth_code, within a second or so")
		began := time.Now()
		resp, err := http.Get(pageURL)
		Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK), string(body))
		Expect(time.Since(began)).To(BeNumerically("<", 3*time.Second))
		Expect(w.preAuthCalls()).To(Equal(1))
		Expect(counting.done.Load()).To(BeNumerically(">", settled), "the request woke the manager")
		m := startLinkPattern.FindStringSubmatch(string(body))
		Expect(m).NotTo(BeNil(), string(body))
		link := html.UnescapeString(m[1])
		u, err := url.Parse(link)
		Expect(err).NotTo(HaveOccurred())
		code := u.Query().Get("pre_auth_code")
		Expect(code).NotTo(BeEmpty())
		Eventually(func() []wechatv1alpha1.AuthorizeLinkRequest { return w.component().Status.AuthorizeLinkRequests }).Should(BeEmpty(),
			"the answered request is removed once shown")

		By("clicking it: WeChat accepts it once, and its redirect reaches the landing page")
		res, err := w.sim.OpenAuthorizationLink(ctx, wxsim.OpenLinkRequest{Link: link, Referer: pageURL, AuthorizerAppID: testAuthorizerAppID})
		Expect(err).NotTo(HaveOccurred())
		landing, err := http.Get(res.RedirectURL)
		Expect(err).NotTo(HaveOccurred())
		landingBody, _ := io.ReadAll(landing.Body)
		_ = landing.Body.Close()
		Expect(landing.StatusCode).To(Equal(http.StatusOK), string(landingBody))
		Expect(string(landingBody)).To(ContainSubstring("Authorization received"))
		_, err = w.sim.OpenAuthorizationLink(ctx, wxsim.OpenLinkRequest{Link: link, Referer: pageURL, AuthorizerAppID: testAuthorizerAppID})
		Expect(err).To(MatchError(wxsim.ErrInvalidPreAuth), "a second click")

		Expect(w.logs.String()).NotTo(ContainSubstring(code), "the pre_auth_code is in the logs")
		Expect(strings.Count(w.logs.String(), "answered an authorization start page request")).To(Equal(1))
	})
})
