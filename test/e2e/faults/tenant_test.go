/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// tenant is one platform with one account, in a namespace of its own: a WeChatComponent, a
// WeChatAuthorizer, the credentials Secret, and the same platform and account in the
// simulator. Its token Secrets and status are watched from creation to cleanup.
type tenant struct {
	s                                      *stack
	ns, component, authorizer              string
	componentAppID, authorizerAppID        string
	appSecret, verifyToken, encodingAESKey string
	tokens                                 *harness.TokenWatch
	hist                                   *history
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newTenant declares a tenant named name (also its namespace). Nothing is created yet (see
// create), but its cleanup is registered: here, in the spec's goroutine.
func (s *stack) newTenant(name string) *tenant {
	t := &tenant{
		s: s, ns: name, component: "platform", authorizer: "shop",
		componentAppID: "wx" + randomHex(8), authorizerAppID: "wx" + randomHex(8),
		appSecret: randomHex(16), verifyToken: "tok" + randomHex(6), encodingAESKey: wxsim.GenerateEncodingAESKey(),
	}
	DeferCleanup(t.cleanup)
	return t
}

func (t *tenant) componentSecret() string  { return t.component + "-component-token" }
func (t *tenant) authorizerSecret() string { return t.authorizer + "-token" }
func (t *tenant) stateSecret() string      { return t.authorizer + "-state" }

// create adds the platform and the account's profile (not yet authorized) to the
// simulator, starts the watches and creates the namespace, the credentials and the custom
// resources (the authorizer unless withAuthorizer is false). Cleanup deletes them.
func (t *tenant) create(withAuthorizer bool, mutate func(*wechatv1alpha1.WeChatComponent)) {
	Expect(t.s.sim.PutComponent(ctx, wxsim.ComponentSeed{
		AppID: t.componentAppID, AppSecret: t.appSecret, Token: t.verifyToken, EncodingAESKey: t.encodingAESKey,
		ReceiverURL: t.s.receiverURL(t.ns, t.component),
	})).To(Succeed())
	Expect(t.s.sim.PutAuthorizer(ctx, wxsim.AuthorizerSeed{
		ComponentAppID: t.componentAppID, AppID: t.authorizerAppID, NickName: "Fault Shop " + t.ns,
	})).To(Succeed())

	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.ns}})).To(Succeed())
	var err error
	t.tokens, err = harness.WatchTokens(ctx, cp.Admin, t.ns, t.s.sim.URL)
	Expect(err).NotTo(HaveOccurred())
	t.tokens.Track(t.componentSecret(), harness.ComponentToken, t.componentAppID)
	t.hist = watchHistory(t.ns)

	Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: "credentials",
			Annotations: map[string]string{wechatv1alpha1.AnnotationUsableBy: wechatv1alpha1.KindWeChatComponent + "/" + t.component}},
		StringData: map[string]string{"appSecret": t.appSecret, "token": t.verifyToken, "encodingAESKey": t.encodingAESKey},
	})).To(Succeed())
	c := &wechatv1alpha1.WeChatComponent{
		ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: t.component},
		Spec: wechatv1alpha1.WeChatComponentSpec{
			AppID:                t.componentAppID,
			CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: "credentials"},
		},
	}
	if mutate != nil {
		mutate(c)
	}
	Expect(k8s.Create(ctx, c)).To(Succeed())
	if withAuthorizer {
		t.createAuthorizer(t.authorizer)
	}
}

// createAuthorizer creates a WeChatAuthorizer for the account and tracks its token Secret.
func (t *tenant) createAuthorizer(name string) {
	t.authorizer = name
	t.tokens.Track(t.authorizerSecret(), harness.AuthorizerToken, t.componentAppID)
	Expect(k8s.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: name},
		Spec: wechatv1alpha1.WeChatAuthorizerSpec{
			ComponentRef: wechatv1alpha1.LocalObjectReference{Name: t.component},
			AppID:        t.authorizerAppID,
		},
	})).To(Succeed())
}

// ready sets the tenant up end to end: the first ticket reaches the receiver, the component
// token is issued, the account authorizes (WeChat's authorized push reaches the receiver) and
// the authorizer token is issued from the exchanged code.
func (t *tenant) ready(mutate func(*wechatv1alpha1.WeChatComponent)) {
	t.create(true, mutate)
	t.waitComponentReady()
	t.authorize()
	t.waitAuthorizerReady()
}

// waitComponentReady waits for the first ticket and the component token. The manager asks
// WeChat for a push as soon as it has projected the keys; if the receiver had not seen them
// yet, the simulator's retries (or a push of ours) deliver it.
func (t *tenant) waitComponentReady() {
	Eventually(func(g Gomega) {
		c := t.getComponent()
		if c.Status.VerifyTicket == nil {
			_ = t.s.sim.PushTicket(ctx, t.componentAppID) // 404 until the receiver has the keys
		}
		g.Expect(readyReason(c.Status.Conditions)).To(Equal("True/" + wechatv1alpha1.ReasonTokenIssued))
	}).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed(), "the component token of %s was never issued", t.ns)
	Eventually(t.currentToken(t.componentSecret())).WithTimeout(10 * time.Second).ShouldNot(BeEmpty())
}

// authorize plays the account's administrator approving the platform.
func (t *tenant) authorize() {
	res, err := t.s.sim.Authorize(ctx, t.componentAppID, t.authorizerAppID)
	Expect(err).NotTo(HaveOccurred())
	Expect(res.Push.Delivered).To(BeTrue(), "the authorized push was not delivered: %s", res.Push.LastError)
}

func (t *tenant) waitAuthorizerReady() {
	Eventually(func() string { return readyReason(t.getAuthorizer().Status.Conditions) }).
		WithTimeout(time.Minute).Should(Equal("True/"+wechatv1alpha1.ReasonTokenIssued), "the authorizer token of %s was never issued", t.ns)
	Eventually(t.currentToken(t.authorizerSecret())).WithTimeout(10 * time.Second).ShouldNot(BeEmpty())
}

func (t *tenant) getComponent() *wechatv1alpha1.WeChatComponent {
	c := &wechatv1alpha1.WeChatComponent{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: t.component}, c)).To(Succeed())
	return c
}

func (t *tenant) getAuthorizer() *wechatv1alpha1.WeChatAuthorizer {
	a := &wechatv1alpha1.WeChatAuthorizer{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: t.authorizer}, a)).To(Succeed())
	return a
}

// currentToken is a function for Eventually: the hash of the token a Secret holds now.
func (t *tenant) currentToken(secret string) func() string {
	return func() string {
		v, _ := t.tokens.Current(secret)
		return v.Hash
	}
}

// refreshedSince is a function for Eventually: how many new values the Secret got since at.
func (t *tenant) refreshedSince(secret string, at time.Time) func() int {
	return func() int { return len(t.tokens.ValuesSince(secret, at)) }
}

// secretToken reads the access token a Secret holds now (never printed).
func secretToken(namespace, name string) string {
	GinkgoHelper()
	s := &corev1.Secret{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s)).To(Succeed())
	return string(s.Data[wechatv1alpha1.SecretKeyAccessToken])
}

// readyReason is "<status>/<reason>" of the Ready condition.
func readyReason(conds []metav1.Condition) string {
	for _, c := range conds {
		if c.Type == wechatv1alpha1.ConditionReady {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return "none"
}

// events lists the messages of the Events of the tenant's namespace with the given reason
// since at.
func (t *tenant) events(reason string, since time.Time) []string {
	list := &corev1.EventList{}
	Expect(k8s.List(ctx, list, client.InNamespace(t.ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		at := e.EventTime.Time
		if at.IsZero() {
			at = e.CreationTimestamp.Time
		}
		if e.Reason == reason && !at.Before(since.Truncate(time.Second)) {
			out = append(out, e.InvolvedObject.Kind+": "+e.Message)
		}
	}
	return out
}

// eventCount is a function for Eventually: how many Events with reason came since at.
func (t *tenant) eventCount(reason string, since time.Time) func() int {
	return func() int { return len(t.events(reason, since)) }
}

// expectHealthy is what every scenario asserts at its end: no token Secret ever held an
// expired token, the simulator accepted every value the way an app uses it, the authorizer
// never lost its refresh token (no RefreshTokenInvalid/NotAuthorized since since), and both
// are Ready=True TokenIssued with failedAttempts 0, still refreshing with WeChat's approval.
func (t *tenant) expectHealthy(since time.Time) {
	GinkgoHelper()
	for name, d := range t.tokens.ExpiredServed() {
		Expect(d).To(BeZero(), "Secret %s/%s held an expired token for %s", t.ns, name, d)
	}
	Eventually(t.tokens.Problems).WithTimeout(20 * time.Second).Should(BeEmpty())
	for _, kind := range []string{"WeChatComponent", "WeChatAuthorizer"} {
		bad := t.hist.find(kind, since, func(o observation) bool {
			return o.ready == "False/"+wechatv1alpha1.ReasonRefreshTokenInvalid || o.ready == "False/"+wechatv1alpha1.ReasonNotAuthorized ||
				o.ready == "False/"+wechatv1alpha1.ReasonTokenExpired
		})
		Expect(bad).To(BeEmpty(), "%s of %s lost its token or its refresh token", kind, t.ns)
	}
	Eventually(func(g Gomega) {
		c, a := t.getComponent(), t.getAuthorizer()
		g.Expect(readyReason(c.Status.Conditions)).To(Equal("True/" + wechatv1alpha1.ReasonTokenIssued))
		g.Expect(c.Status.FailedAttempts).To(BeZero())
		g.Expect(readyReason(a.Status.Conditions)).To(Equal("True/" + wechatv1alpha1.ReasonTokenIssued))
		g.Expect(a.Status.FailedAttempts).To(BeZero())
	}).WithTimeout(time.Minute).Should(Succeed(), "%s did not recover", t.ns)
}

// expectKeepsRefreshing waits for a new authorizer token, accepted by WeChat, that appeared
// after after: a later api_authorizer_token succeeded with the refresh token the operator
// kept (with rotation, the one the previous refresh returned).
func (t *tenant) expectKeepsRefreshing(after time.Time) {
	GinkgoHelper()
	Eventually(func() []harness.TokenValue {
		var ok []harness.TokenValue
		for _, v := range t.tokens.ValuesSince(t.authorizerSecret(), after) {
			if v.Verified && v.Answer.OK() {
				ok = append(ok, v)
			}
		}
		return ok
	}).WithTimeout(tokenLifetime+20*time.Second).WithPolling(time.Second).ShouldNot(BeEmpty(),
		"no authorizer token refreshed after %s", after.Format("15:04:05"))
}

// recoveredAt is when kind got over its failures since since: the first status without a
// failed attempt after the first with one. Without failures, it is just after the first new
// authorizer token since since (the refresh that recovered without failing).
func (t *tenant) recoveredAt(kind string, since time.Time) time.Time {
	fails := t.hist.failures(kind, since)
	if len(fails) == 0 {
		if v := t.tokens.ValuesSince(t.authorizerSecret(), since); len(v) > 0 {
			return v[0].SeenAt.Add(time.Second)
		}
		return since
	}
	ok := t.hist.find(kind, fails[0].at, func(o observation) bool { return o.failedAttempts == 0 })
	if len(ok) == 0 {
		return time.Now()
	}
	return ok[0].at.Add(time.Second)
}

// cleanup stops the tenant's refreshes: the custom resources are deleted (the test
// control plane has no garbage collector, so Secrets and the namespace stay, unused).
func (t *tenant) cleanup() {
	if t.hist == nil {
		return // never created
	}
	list := &wechatv1alpha1.WeChatAuthorizerList{}
	Expect(k8s.List(ctx, list, client.InNamespace(t.ns))).To(Succeed())
	for i := range list.Items {
		Expect(client.IgnoreNotFound(k8s.Delete(ctx, &list.Items[i]))).To(Succeed())
	}
	Expect(client.IgnoreNotFound(k8s.Delete(ctx, &wechatv1alpha1.WeChatComponent{
		ObjectMeta: metav1.ObjectMeta{Namespace: t.ns, Name: t.component}}))).To(Succeed())
	Eventually(func() bool {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: t.component}, &wechatv1alpha1.WeChatComponent{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(30 * time.Second).Should(BeTrue())
	t.hist.stop()
	t.tokens.Stop()
}
