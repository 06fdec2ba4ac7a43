/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	"github.com/wechat-operator/wechat-operator/internal/authstate"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

const (
	testAuthorizerAppID = "wx1a2b3c4d5e6f7a8b"
	autoName            = "platform-" + testAuthorizerAppID
)

// crashAfterRefresh is WeChat as seen by a manager that dies right after WeChat answered
// api_authorizer_token: the call happens (and rotates the refresh token) but its answer is lost.
type crashAfterRefresh struct {
	AuthorizerAPI
}

var errCrashed = errors.New("the manager died before persisting the answer")

func (c crashAfterRefresh) AuthorizerToken(ctx context.Context, componentToken, appID, authorizerAppID, refreshToken string) (wxapi.AuthorizerToken, error) {
	if _, err := c.AuthorizerAPI.AuthorizerToken(ctx, componentToken, appID, authorizerAppID, refreshToken); err != nil {
		return wxapi.AuthorizerToken{}, err
	}
	return wxapi.AuthorizerToken{}, errCrashed
}

var _ = Describe("WeChatAuthorizer controller with the receiver and the simulator", func() {
	var w *world
	AfterEach(func() { w.close() })

	// platformReady gives the world a component with a token.
	platformReady := func(autoCreate bool, simOpts ...func(*wxsim.Options)) {
		w = newWorld(func(c *worldConfig) {
			if len(simOpts) > 0 {
				c.simOptions = simOpts[0]
			}
		})
		w.createComponent(func(c *wechatv1alpha1.WeChatComponent) { c.Spec.Authorizers.AutoCreate = autoCreate })
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		Expect(w.tokenSecret()).NotTo(BeNil())
	}
	// push is an authorization as WeChat pushes it; authorize is that, then the manager, which
	// runs all along, taking the code (creating the authorizer with autoCreate).
	push := func() wxsim.AuthorizeResult {
		res, err := w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID, AuthorizerAppID: testAuthorizerAppID})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Push.Delivered).To(BeTrue(), "the receiver answered success")
		return res
	}
	authorize := func() wxsim.AuthorizeResult {
		res := push()
		w.reconcile()
		return res
	}
	authorizerCalls := func() int { return w.sim.Calls(wxapi.APIAuthorizerToken, testAuthorizerAppID) }
	ready := func(name string) *metav1.Condition {
		return condition(w.authorizer(name).Status.Conditions, wechatv1alpha1.ConditionReady)
	}

	It("goes from an authorization link to a token Secret, the refresh token kept first", func() {
		platformReady(true)
		// What `kubectl wechat auth-link` does: a pre_auth_code from the component's token.
		pre, err := w.wechat.CreatePreAuthCode(ctx, string(w.tokenSecret().Data["access_token"]), testComponentAppID)
		Expect(err).NotTo(HaveOccurred())
		res, err := w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID,
			AuthorizerAppID: testAuthorizerAppID, PreAuthCode: pre.Code})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Push.Delivered).To(BeTrue())

		By("the receiver recording the code for the manager, creating nothing")
		list := &wechatv1alpha1.WeChatAuthorizerList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(w.ns))).To(Succeed())
		Expect(list.Items).To(BeEmpty(), "the receiver creates no WeChatAuthorizer")
		pending := w.component().Status.PendingAuthorizationCodes
		Expect(pending).To(HaveLen(1))
		Expect(pending[0].Code).To(Equal(res.AuthCode))
		Expect(pending[0].Source).To(Equal(wechatv1alpha1.AuthorizationCodeFromPush))

		Expect(pending[0].AuthorizerAppID).To(Equal(testAuthorizerAppID))

		By("the component controller exchanging the code, then creating the authorizer of the account WeChat named")
		w.reconcile()
		Expect(w.component().Status.PendingAuthorizationCodes).To(BeEmpty())
		Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(1), "the status's appid is not trusted: the exchange names the account")
		a := w.authorizer(autoName)
		Expect(a.Spec.AppID).To(Equal(testAuthorizerAppID))
		Expect(a.Spec.ComponentRef.Name).To(Equal("platform"))
		Expect(a.Labels).To(HaveKeyWithValue(wechatv1alpha1.LabelComponent, "platform"))
		Expect(a.Status.AuthorizationCode).To(BeNil(), "already exchanged")

		By("the authorizer controller taking the tokens from its state Secret")
		result := w.reconcileAuthorizer(autoName)
		a = w.authorizer(autoName)
		state := w.secret(autoName + "-state")
		refreshToken, ok := w.sim.RefreshToken(testComponentAppID, testAuthorizerAppID)
		Expect(ok).To(BeTrue())
		Expect(string(state.Data["refresh_token"])).To(Equal(refreshToken))
		Expect(metav1.IsControlledBy(state, a)).To(BeTrue())

		token := w.secret(autoName + "-token")
		access := string(token.Data["access_token"])
		Expect(w.sim.TokenState(access)).To(Equal(0))
		Expect(string(token.Data["appid"])).To(Equal(testAuthorizerAppID))
		Expect(string(token.Data["expires_at"])).To(Equal(w.clock.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)))
		Expect(token.Data).NotTo(HaveKey("refresh_token"), "apps never see the refresh token")
		Expect(metav1.IsControlledBy(token, a)).To(BeTrue())

		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionAuthorized).Status).To(Equal(metav1.ConditionTrue))
		Expect(ready(autoName).Status).To(Equal(metav1.ConditionTrue))
		Expect(a.Status.AuthorizedAt).NotTo(BeNil())
		Expect(a.Status.Info).NotTo(BeNil())
		Expect(a.Status.Info.FuncInfo).To(Equal([]int32{1, 2, 3, 4, 11}))
		Expect(a.Status.RefreshAt.Time).To(BeTemporally("==", w.clock.Now().Add(2*time.Hour-15*time.Minute)))
		Expect(result.RequeueAfter).To(Equal(2*time.Hour - 15*time.Minute))
		Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(1))
		Expect(authorizerCalls()).To(Equal(0), "the exchange already gave a fresh token")

		By("a second reconcile changing nothing and calling nothing")
		w.reconcileAuthorizer(autoName)
		Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(1))
		Expect(string(w.secret(autoName + "-token").Data["access_token"])).To(Equal(access))

		By("finding no secret in the logs, Events or status")
		var recorded []string
		for len(w.recorder.Events) > 0 {
			recorded = append(recorded, <-w.recorder.Events)
		}
		statusText := fmt.Sprintf("%+v", w.authorizer(autoName).Status)
		for _, secretValue := range []string{access, refreshToken, res.AuthCode, testAppSecret} {
			Expect(w.logs.String()).NotTo(ContainSubstring(secretValue))
			Expect(strings.Join(recorded, "\n")).NotTo(ContainSubstring(secretValue))
			Expect(statusText).NotTo(ContainSubstring(secretValue))
		}
	})

	It("records the same authorization pushed twice once", func() {
		platformReady(true)
		res := push()
		version := w.component().ResourceVersion
		postAuthorizedPush(w, res.AuthCode) // WeChat's retry of the push, with another nonce
		Expect(w.component().ResourceVersion).To(Equal(version), "nothing was written twice")
		Expect(w.component().Status.PendingAuthorizationCodes).To(HaveLen(1))
		w.reconcile()
		Expect(w.component().Status.PendingAuthorizationCodes).To(BeEmpty())
		w.reconcileAuthorizer(autoName)
		Expect(ready(autoName).Status).To(Equal(metav1.ConditionTrue))
		Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(1))

		// WeChat pushes updateauthorized with a new code when the account authorizes again:
		// the authorizer exists now, so the code goes on it.
		res2 := push()
		Expect(res2.AuthCode).NotTo(Equal(res.AuthCode))
		Expect(w.authorizer(autoName).Status.AuthorizationCode.Code).To(Equal(res2.AuthCode))
		Expect(w.authorizer(autoName).Status.AuthorizationCode.Source).To(Equal(wechatv1alpha1.AuthorizationCodeFromPush))
	})

	It("records an authorization only on an existing authorizer when autoCreate is off, and says so", func() {
		platformReady(false)
		authorize()
		list := &wechatv1alpha1.WeChatAuthorizerList{}
		Expect(k8sClient.List(ctx, list)).To(Succeed())
		for _, a := range list.Items {
			Expect(a.Namespace).NotTo(Equal(w.ns), "no authorizer was created")
		}
		Expect(w.component().Status.PendingAuthorizationCodes).To(BeEmpty(), "nothing to exchange the code for")
		var recorded []string
		for len(w.recorder.Events) > 0 {
			recorded = append(recorded, <-w.recorder.Events)
		}
		Expect(recorded).To(ContainElement(ContainSubstring("AuthorizationNotRecorded")))
	})

	It("imports an authorizer applied with only componentRef and appID (GitOps) from api_get_authorizer_list", func() {
		platformReady(false)
		authorize() // authorized before the authorizer existed: its push found nothing to record on
		Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: w.ns},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{
				ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: testAuthorizerAppID,
			},
		})).To(Succeed())
		w.reconcileAuthorizer("shop")
		Expect(ready("shop").Status).To(Equal(metav1.ConditionTrue))
		refreshToken, _ := w.sim.RefreshToken(testComponentAppID, testAuthorizerAppID)
		Expect(string(w.secret("shop-state").Data["refresh_token"])).To(Equal(refreshToken))
		Expect(w.sim.TokenState(string(w.secret("shop-token").Data["access_token"]))).To(Equal(0))
		Expect(w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)).To(Equal(1))
	})

	It("imports many authorizers from Git with one reading of api_get_authorizer_list", func() {
		platformReady(false)
		const n = 30
		for i := range n {
			appID := fmt.Sprintf("wx%016x", 0xa000+i)
			Expect(w.sim.PutAuthorizer(wxsim.AuthorizerSeed{ComponentAppID: testComponentAppID, AppID: appID, Authorized: true})).To(Succeed())
			Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("shop-%d", i), Namespace: w.ns},
				Spec: wechatv1alpha1.WeChatAuthorizerSpec{
					ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: appID,
				},
			})).To(Succeed())
		}
		for i := range n {
			w.reconcileAuthorizer(fmt.Sprintf("shop-%d", i))
			Expect(ready(fmt.Sprintf("shop-%d", i)).Status).To(Equal(metav1.ConditionTrue))
		}
		Expect(w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)).To(Equal(1))

		By("reading the list again for an account added after the import, once directoryDrainedInterval has passed")
		w.clock.Step(directoryDrainedInterval)
		Expect(w.sim.PutAuthorizer(wxsim.AuthorizerSeed{ComponentAppID: testComponentAppID, AppID: testAuthorizerAppID, Authorized: true})).To(Succeed())
		Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: w.ns},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{
				ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: testAuthorizerAppID,
			},
		})).To(Succeed())
		w.reconcileAuthorizer("late")
		Expect(ready("late").Status).To(Equal(metav1.ConditionTrue))
		Expect(w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)).To(Equal(2))
	})

	It("imports a refresh token from spec.refreshTokenSecretRef", func() {
		platformReady(false)
		authorize()
		refreshToken, _ := w.sim.RefreshToken(testComponentAppID, testAuthorizerAppID)
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: w.ns,
				Annotations: releasedTo(wechatv1alpha1.KindWeChatAuthorizer + "/shop")},
			StringData: map[string]string{"token": refreshToken},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: w.ns},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{
				ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: testAuthorizerAppID,
				RefreshTokenSecretRef: &wechatv1alpha1.SecretKeyReference{Name: "legacy", Key: "token"},
			},
		})).To(Succeed())
		w.reconcileAuthorizer("shop")
		Expect(ready("shop").Status).To(Equal(metav1.ConditionTrue))
		Expect(w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)).To(Equal(0), "imported, not looked up")
	})

	It("says how to authorize an account that never did", func() {
		platformReady(false)
		Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: w.ns},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{
				ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: testAuthorizerAppID,
			},
		})).To(Succeed())
		result := w.reconcileAuthorizer("shop")
		r := ready("shop")
		Expect(r.Status).To(Equal(metav1.ConditionFalse))
		Expect(r.Reason).To(Equal(wechatv1alpha1.ReasonNotAuthorized))
		Expect(r.Message).To(ContainSubstring("kubectl wechat auth-link platform"))
		Expect(condition(w.authorizer("shop").Status.Conditions, wechatv1alpha1.ConditionAuthorized).Reason).To(Equal(wechatv1alpha1.ReasonNotAuthorized))
		Expect(result.RequeueAfter).To(BeNumerically(">=", time.Minute), "no hot loop")
	})

	It("recovers a rotated refresh token lost in a crash between WeChat's answer and the Secret write", func() {
		platformReady(true, func(o *wxsim.Options) { o.RotateRefreshTokens = true })
		authorize()
		w.reconcileAuthorizer(autoName)
		before, _ := w.sim.RefreshToken(testComponentAppID, testAuthorizerAppID)
		Expect(string(w.secret(autoName + "-state").Data["refresh_token"])).To(Equal(before))

		By("refreshing, with the answer lost")
		w.clock.SetTime(w.authorizer(autoName).Status.RefreshAt.Time)
		healthy := w.authz.WeChat
		w.authz.WeChat = crashAfterRefresh{healthy}
		w.reconcileAuthorizer(autoName)
		rotated, _ := w.sim.RefreshToken(testComponentAppID, testAuthorizerAppID)
		Expect(rotated).NotTo(Equal(before), "WeChat rotated the refresh token")
		Expect(string(w.secret(autoName + "-state").Data["refresh_token"])).To(Equal(before), "the new one was never persisted")

		By("the restarted manager getting 61023 and recovering from api_get_authorizer_list")
		w.authz.WeChat = healthy
		w.clock.Step(time.Minute)
		w.reconcileAuthorizer(autoName)
		Expect(ready(autoName).Status).To(Equal(metav1.ConditionTrue))
		current, _ := w.sim.RefreshToken(testComponentAppID, testAuthorizerAppID)
		Expect(string(w.secret(autoName + "-state").Data["refresh_token"])).To(Equal(current))
		Expect(w.sim.TokenState(string(w.secret(autoName + "-token").Data["access_token"]))).To(Equal(0))
		Expect(w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)).To(Equal(1))
		Expect(w.authorizer(autoName).Status.FailedAttempts).To(BeZero())
	})

	It("stops on unauthorized, keeps the CR, and resumes on a new authorization", func() {
		platformReady(true)
		authorize()
		w.reconcileAuthorizer(autoName)
		Expect(ready(autoName).Status).To(Equal(metav1.ConditionTrue))

		rec, err := w.sim.Revoke(ctx, testComponentAppID, testAuthorizerAppID)
		Expect(err).NotTo(HaveOccurred())
		Expect(rec.Delivered).To(BeTrue())
		a := w.authorizer(autoName)
		Expect(a.Status.UnauthorizedAt).NotTo(BeNil())
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionAuthorized).Reason).To(Equal(wechatv1alpha1.ReasonUnauthorized))

		result := w.reconcileAuthorizer(autoName)
		Expect(result.RequeueAfter).To(BeZero(), "nothing to wait for until a new authorization")
		Expect(ready(autoName).Reason).To(Equal(wechatv1alpha1.ReasonUnauthorized))
		calls := authorizerCalls()
		w.clock.Step(3 * time.Hour)
		w.reconcileAuthorizer(autoName)
		Expect(authorizerCalls()).To(Equal(calls), "no refresh while unauthorized")
		Expect(w.secret(autoName+"-token").Data).To(HaveKey("access_token"), "Retain keeps the Secret's data")

		w.pushTicket()
		w.reconcile()
		authorize()
		w.reconcileAuthorizer(autoName)
		a = w.authorizer(autoName)
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionAuthorized).Status).To(Equal(metav1.ConditionTrue))
		Expect(ready(autoName).Status).To(Equal(metav1.ConditionTrue))
		Expect(w.sim.TokenState(string(w.secret(autoName + "-token").Data["access_token"]))).To(Equal(0))
	})

	It("clears the token Secret's data on unauthorized when spec asks", func() {
		platformReady(true)
		authorize()
		a := w.authorizer(autoName)
		a.Spec.OnUnauthorized = wechatv1alpha1.UnauthorizedDeleteToken
		Expect(k8sClient.Update(ctx, a)).To(Succeed())
		w.reconcileAuthorizer(autoName)
		_, err := w.sim.Revoke(ctx, testComponentAppID, testAuthorizerAppID)
		Expect(err).NotTo(HaveOccurred())
		w.reconcileAuthorizer(autoName)
		Expect(w.secret(autoName + "-token").Data).NotTo(HaveKey("access_token"))
		Expect(w.authorizer(autoName).Status.ExpiresAt).To(BeNil())
	})

	It("refreshes once per cycle over 10 simulated days and never serves an expired token", func() {
		platformReady(true, func(o *wxsim.Options) { o.RotateRefreshTokens = true })
		authorize()
		w.reconcileAuthorizer(autoName)
		start := w.clock.Now()
		end := start.Add(10 * 24 * time.Hour)
		nextComponent := w.clock.Now().Add(w.reconcile().RequeueAfter)
		nextAuthorizer := w.clock.Now().Add(w.reconcileAuthorizer(autoName).RequeueAfter)
		nextTicket := start.Add(2 * time.Hour) // tickets live 12 h; fewer pushes keep the test quick
		for w.clock.Now().Before(end) {
			step := minTime(minTime(nextComponent, nextAuthorizer), nextTicket)
			w.clock.SetTime(step)
			if !step.Before(nextTicket) {
				w.pushTicket()
				nextTicket = nextTicket.Add(2 * time.Hour)
			}
			if !step.Before(nextComponent) || !step.Before(nextTicket.Add(-2*time.Hour)) {
				nextComponent = w.clock.Now().Add(w.reconcile().RequeueAfter)
			}
			// The component's new token wakes the authorizer, as the watch does.
			nextAuthorizer = w.clock.Now().Add(w.reconcileAuthorizer(autoName).RequeueAfter)

			for _, name := range []string{autoName + "-token", "platform-component-token"} {
				s := w.secret(name)
				expires, err := time.Parse(time.RFC3339, string(s.Data["expires_at"]))
				Expect(err).NotTo(HaveOccurred())
				Expect(w.clock.Now().Before(expires)).To(BeTrue(), "%s holds an expired token at %v", name, w.clock.Now())
				Expect(w.sim.TokenState(string(s.Data["access_token"]))).To(Equal(0), "%s at %v", name, w.clock.Now())
			}
		}
		perDay := float64(authorizerCalls()) / 10
		Expect(perDay).To(And(BeNumerically(">=", 13), BeNumerically("<=", 14.2)))
		Expect(w.authorizer(autoName).Status.FailedAttempts).To(BeZero())
		Expect(w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)).To(Equal(0), "no refresh token was ever lost")
	})
})

var _ = Describe("the authorization redirect page", func() {
	var w *world
	AfterEach(func() { w.close() })

	setup := func() {
		w = newWorld()
		w.createComponent(func(c *wechatv1alpha1.WeChatComponent) { c.Spec.Authorizers.AutoCreate = true })
		w.reconcile()
		w.pushTicket()
		w.reconcile()
	}
	// redirectURI is what `kubectl wechat auth-link` puts in its links: the landing page, with a
	// state signed by the key derived from the platform's Token.
	redirectURI := func() string {
		state, err := authstate.Sign(authstate.Key(testVerifyToken, testEncodingAESKey), w.ns, "platform", w.clock.Now().Add(authstate.DefaultLifetime))
		Expect(err).NotTo(HaveOccurred())
		return fmt.Sprintf("%s/wechat/%s/platform/authorized?%s", w.recvServer.URL, w.ns, url.Values{authstate.Param: {state}}.Encode())
	}
	visit := func(url string) (int, string) {
		resp, err := http.Get(url)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	queryAuthCalls := func() int { return w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID) }

	It("works when the redirect comes first and the push later, each twice", func() {
		setup()
		// The push does not get through at first (the receiver is unreachable for it).
		Expect(w.sim.SetReceiverURL(testComponentAppID, "http://127.0.0.1:1/unreachable")).To(Succeed())
		res, err := w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID,
			AuthorizerAppID: testAuthorizerAppID, RedirectURI: redirectURI()})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Push.Delivered).To(BeFalse())

		for range 2 {
			status, page := visit(res.RedirectURL)
			Expect(status).To(Equal(http.StatusOK))
			Expect(page).To(ContainSubstring("Authorization received"))
			Expect(page).NotTo(ContainSubstring(res.AuthCode), "the page never echoes the code")
		}
		Expect(w.component().Status.PendingAuthorizationCodes).To(HaveLen(1))

		w.reconcile()
		Expect(w.component().Status.PendingAuthorizationCodes).To(BeEmpty())
		Expect(queryAuthCalls()).To(Equal(1))
		w.reconcileAuthorizer(autoName) // created by the exchange, woken by its state Secret
		Expect(condition(w.authorizer(autoName).Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		access := string(w.secret(autoName + "-token").Data["access_token"])
		Expect(w.sim.TokenState(access)).To(Equal(0))

		// WeChat's retried push arrives now, with the same, already used code, twice.
		Expect(w.sim.SetReceiverURL(testComponentAppID, fmt.Sprintf("%s/wechat/%s/platform/events", w.recvServer.URL, w.ns))).To(Succeed())
		for range 2 {
			postAuthorizedPush(w, res.AuthCode)
		}
		w.reconcileAuthorizer(autoName)
		a := w.authorizer(autoName)
		Expect(a.Status.AuthorizationCode).To(BeNil())
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		Expect(string(w.secret(autoName + "-token").Data["access_token"])).To(Equal(access), "nothing was issued twice")
	})

	It("works when the push comes first and the redirect later, each twice", func() {
		setup()
		res, err := w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID,
			AuthorizerAppID: testAuthorizerAppID, RedirectURI: redirectURI()})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Push.Delivered).To(BeTrue())
		postAuthorizedPush(w, res.AuthCode)
		for range 2 {
			status, _ := visit(res.RedirectURL)
			Expect(status).To(Equal(http.StatusOK))
		}
		pending := w.component().Status.PendingAuthorizationCodes
		Expect(pending).To(HaveLen(1), "the push already recorded the code, verified")
		Expect(pending[0].Source).To(Equal(wechatv1alpha1.AuthorizationCodeFromPush))
		w.reconcile()
		w.reconcileAuthorizer(autoName)
		Expect(queryAuthCalls()).To(Equal(1))
		Expect(condition(w.authorizer(autoName).Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	})

	It("turns away a visit without a valid code, one without the link's state, and one for an unknown platform", func() {
		setup()
		status, page := visit(redirectURI() + "&auth_code=%3Cscript%3E")
		Expect(status).To(Equal(http.StatusBadRequest))
		Expect(page).NotTo(ContainSubstring("<script>"))
		status, page = visit(fmt.Sprintf("%s/wechat/%s/platform/authorized?auth_code=queryauthcode@@@abcdefgh&expires_in=3600", w.recvServer.URL, w.ns))
		Expect(status).To(Equal(http.StatusForbidden))
		Expect(page).To(ContainSubstring("Authorization link not valid"))
		status, _ = visit(fmt.Sprintf("%s/wechat/%s/nobody/authorized?auth_code=queryauthcode@@@abcdefgh", w.recvServer.URL, w.ns))
		Expect(status).To(Equal(http.StatusNotFound))
		Expect(w.component().Status.PendingAuthorizationCodes).To(BeEmpty())
	})
})

// postAuthorizedPush sends WeChat's authorized push for code, signed and encrypted.
func postAuthorizedPush(w *world, code string) {
	crypter, err := wxcrypto.NewCrypter(testVerifyToken, testEncodingAESKey, testComponentAppID)
	Expect(err).NotTo(HaveOccurred())
	now := w.clock.Now()
	msg := wxcrypto.AuthorizedPush{AppID: testComponentAppID, Created: now.Unix(), Type: wxcrypto.InfoTypeAuthorized,
		AuthorizerAppID: testAuthorizerAppID, AuthorizationCode: code, AuthorizationCodeExpiredTime: now.Add(time.Hour).Unix()}.XML()
	ts := strconv.FormatInt(now.Unix(), 10)
	body, sig, err := crypter.SealPush(msg, ts, "4242")
	Expect(err).NotTo(HaveOccurred())
	resp := w.post(fmt.Sprintf("/wechat/%s/platform/events", w.ns), url.Values{"timestamp": {ts}, "nonce": {"4242"}, "msg_signature": {sig}}.Encode(), body)
	defer resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
}

var _ = Describe("writing Secrets with a cache that lags behind", func() {
	It("updates its own Secret that a stale read did not show, instead of reporting a conflict", func() {
		w := newWorld()
		defer w.close()
		a := &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: w.ns},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{
				ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: testAuthorizerAppID,
			},
		}
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		token := func(v string) *issuedToken {
			return &issuedToken{accessToken: v, appID: testAuthorizerAppID, issuedAt: simStart, expiresAt: simStart.Add(2 * time.Hour)}
		}
		writer := w.authz.tokenSecrets()
		for _, v := range []string{"first", "second"} {
			// existing=nil: what a cache that has not seen the first write returns.
			_, err := writer.ensure(ctx, a, nil, "shop-token", a.Spec.TokenSecret, authorizerLabels(a), token(v))
			Expect(err).NotTo(HaveOccurred())
			Expect(string(w.secret("shop-token").Data["access_token"])).To(Equal(v))

			_, err = writeState(ctx, k8sClient, k8sClient, a, nil, authorizerState{refreshToken: "refresh-" + v})
			Expect(err).NotTo(HaveOccurred())
			Expect(string(w.secret("shop-state").Data["refresh_token"])).To(Equal("refresh-" + v))
		}

		By("still refusing a Secret of the same name that the operator does not manage")
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: w.ns}})).To(Succeed())
		_, err := writer.ensure(ctx, a, nil, "foreign", a.Spec.TokenSecret, authorizerLabels(a), token("x"))
		Expect(err).To(MatchError(ContainSubstring("is not managed by wechat-operator")))
	})
})
