/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"encoding/json"
	"maps"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

func codes(c ...string) []wechatv1alpha1.AuthorizationCode {
	out := make([]wechatv1alpha1.AuthorizationCode, 0, len(c))
	for _, code := range c {
		out = append(out, wechatv1alpha1.AuthorizationCode{Code: code})
	}
	return out
}

func TestRebaseComponentStatusKeepsTheReceiversNewEntries(t *testing.T) {
	old := &wechatv1alpha1.VerifyTicket{Ticket: "old"}
	newer := &wechatv1alpha1.VerifyTicket{Ticket: "new"}
	before := &wechatv1alpha1.WeChatComponentStatus{VerifyTicket: old, PendingAuthorizationCodes: codes("a", "b")}
	// The reconcile exchanged code a and recorded a failure.
	mine := before.DeepCopy()
	mine.PendingAuthorizationCodes = codes("b")
	mine.FailedAttempts, mine.LastFailureReason = 1, wechatv1alpha1.ReasonWeChatBusy
	// Meanwhile the receiver wrote a newer ticket and a new code c.
	latest := &wechatv1alpha1.WeChatComponentStatus{VerifyTicket: newer, PendingAuthorizationCodes: codes("a", "b", "c")}

	got := rebaseComponentStatus(before, mine, latest)
	if got.FailedAttempts != 1 || got.LastFailureReason != wechatv1alpha1.ReasonWeChatBusy {
		t.Errorf("the reconcile's failure was lost: %d %q", got.FailedAttempts, got.LastFailureReason)
	}
	if got.VerifyTicket.Ticket != "new" {
		t.Errorf("ticket %q, want the receiver's newer one", got.VerifyTicket.Ticket)
	}
	var left []string
	for _, c := range got.PendingAuthorizationCodes {
		left = append(left, c.Code)
	}
	if len(left) != 2 || left[0] != "b" || left[1] != "c" {
		t.Errorf("pending codes %v, want [b c]: a was exchanged, c is new", left)
	}
}

func TestRebaseAuthorizerStatus(t *testing.T) {
	revoked := metav1.NewTime(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	code := &wechatv1alpha1.AuthorizationCode{Code: "first"}
	before := &wechatv1alpha1.WeChatAuthorizerStatus{AuthorizationCode: code}
	mine := before.DeepCopy()
	mine.AuthorizationCode = nil // exchanged
	mine.FailedAttempts = 2

	// Only a revocation arrived: the exchanged code stays cleared.
	got := rebaseAuthorizerStatus(before, mine, &wechatv1alpha1.WeChatAuthorizerStatus{AuthorizationCode: code, UnauthorizedAt: &revoked})
	if got.AuthorizationCode != nil || got.UnauthorizedAt == nil || got.FailedAttempts != 2 {
		t.Errorf("revocation only: code %v, unauthorizedAt %v, failedAttempts %d", got.AuthorizationCode, got.UnauthorizedAt, got.FailedAttempts)
	}
	// A new code arrived: it is kept for the next reconcile.
	got = rebaseAuthorizerStatus(before, mine, &wechatv1alpha1.WeChatAuthorizerStatus{AuthorizationCode: &wechatv1alpha1.AuthorizationCode{Code: "second"}})
	if got.AuthorizationCode == nil || got.AuthorizationCode.Code != "second" {
		t.Errorf("new code: got %v, want the receiver's second code kept", got.AuthorizationCode)
	}
}

// duringTokenCall runs during before api_component_token is called, as a push racing a
// reconcile would.
type duringTokenCall struct {
	ComponentAPI
	during func()
}

func (d *duringTokenCall) ComponentToken(ctx context.Context, appID, appSecret, ticket string) (wxapi.ComponentToken, error) {
	d.during()
	return d.ComponentAPI.ComponentToken(ctx, appID, appSecret, ticket)
}

var _ = Describe("a status write that conflicts with the receiver's", func() {
	var w *world
	AfterEach(func() { w.close() })

	It("keeps the failure it recorded, and the receiver's newer ticket", func() {
		w = newWorld()
		w.createComponent()
		w.reconcile()
		w.clock.Step(keyringSettleTime)
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		Expect(w.tokenSecret()).NotTo(BeNil())

		w.sim.AddFault(wxsim.Fault{API: wxapi.APIComponentToken, ErrCode: -1, Count: 10})
		var racing string
		w.reconciler.WeChat = &duringTokenCall{ComponentAPI: w.reconciler.WeChat, during: func() {
			if racing == "" {
				racing = w.pushTicket()
			}
		}}
		w.clock.Step(2*time.Hour - 10*time.Minute)
		w.reconcile()

		c := w.component()
		Expect(racing).NotTo(BeEmpty(), "the push raced the refresh")
		Expect(c.Status.VerifyTicket.Ticket).To(Equal(racing), "the receiver's ticket is kept")
		Expect(c.Status.FailedAttempts).To(Equal(int32(1)), "the failure is recorded, not lost to the conflict")
		Expect(c.Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonWeChatBusy))
	})
})

var _ = Describe("a status write of an authorizer as the cache holds it (real API server)", func() {
	var ns string
	var versions writtenVersions
	BeforeEach(func() { ns = newNamespace() })

	// stored creates an authorizer as kubectl apply leaves it (its last-applied copy), with
	// the status.info a daily fetch writes, and returns it as the cache holds it.
	stored := func() *wechatv1alpha1.WeChatAuthorizer {
		a := &wechatv1alpha1.WeChatAuthorizer{}
		Expect(json.Unmarshal([]byte(cachedAuthorizerJSON), a)).To(Succeed())
		status := a.Status
		a.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "account", Labels: map[string]string{"example.com/team": "a"}, Annotations: map[string]string{
			corev1.LastAppliedConfigAnnotation: `{"kind":"WeChatAuthorizer"}`, "example.com/owner": "team-a"}}
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		a.Status = status
		Expect(k8sClient.Status().Update(ctx, a)).To(Succeed())
		return cachedShape(a)
	}
	// leftAlone checks that what the cache leaves out is still on the server.
	leftAlone := func(a *wechatv1alpha1.WeChatAuthorizer) {
		GinkgoHelper()
		Expect(a.Annotations).To(HaveKeyWithValue(corev1.LastAppliedConfigAnnotation, `{"kind":"WeChatAuthorizer"}`))
		Expect(a.Annotations).To(HaveKeyWithValue("example.com/owner", "team-a"))
		Expect(a.Status.Info).NotTo(BeNil())
		Expect(a.Status.Info.NickName).To(Equal("Sim account wx00000000a0000000"), "the info meant for people is kept")
		Expect(a.Status.Info.PrincipalName).To(Equal("Simulated Company Ltd."))
	}
	live := func() *wechatv1alpha1.WeChatAuthorizer {
		a := &wechatv1alpha1.WeChatAuthorizer{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "account"}, a)).To(Succeed())
		return a
	}

	It("writes the reconcile's change and leaves alone what the cache left out", func() {
		before := stored()
		mine := before.DeepCopy()
		mine.Status.FailedAttempts = 1
		_, err := authorizerStatusWriter(k8sClient, k8sClient, &versions).write(ctx, time.Now(), before, mine, reconcile.Result{}, nil)
		Expect(err).NotTo(HaveOccurred())

		got := live()
		Expect(got.Status.FailedAttempts).To(Equal(int32(1)))
		leftAlone(got)
	})

	It("replaces status.info whole with a fresh fetch, clearing what the account no longer has", func() {
		stored()
		server := live()
		server.Status.Info.Alias, server.Status.Info.Signature = "old-alias", "old signature"
		server.Status.Info.BusinessInfo = &wechatv1alpha1.BusinessInfo{OpenPay: true, OpenCard: true}
		Expect(k8sClient.Status().Update(ctx, server)).To(Succeed())
		before := cachedShape(server)

		// The daily fetch: the account cleared its alias and signature and closed its payments.
		mine := before.DeepCopy()
		fetched := metav1.NewTime(before.Status.Info.UpdatedAt.Add(24 * time.Hour))
		mine.Status.Info = &wechatv1alpha1.AuthorizerInfo{NickName: "New name", FuncInfo: []int32{1, 2},
			BusinessInfo: &wechatv1alpha1.BusinessInfo{OpenCard: true}, UpdatedAt: &fetched}
		_, err := authorizerStatusWriter(k8sClient, k8sClient, &versions).write(ctx, time.Now(), before, mine, reconcile.Result{}, nil)
		Expect(err).NotTo(HaveOccurred())

		info := live().Status.Info
		Expect(info.NickName).To(Equal("New name"))
		Expect(info.Alias).To(BeEmpty(), "the cleared alias is cleared")
		Expect(info.Signature).To(BeEmpty())
		Expect(info.PrincipalName).To(BeEmpty(), "the new info has none")
		Expect(info.BusinessInfo).To(Equal(&wechatv1alpha1.BusinessInfo{OpenCard: true}), "payments closed")
		Expect(info.FuncInfo).To(Equal([]int32{1, 2}))
		Expect(info.UpdatedAt.Equal(&fetched)).To(BeTrue())
	})

	It("rebases onto the receiver's write after a conflict, and still leaves it alone", func() {
		before := stored()
		// The receiver records a revocation meanwhile.
		receiver := live()
		revoked := metav1.NewTime(time.Now().UTC().Truncate(time.Second))
		receiver.Status.UnauthorizedAt = &revoked
		Expect(k8sClient.Status().Update(ctx, receiver)).To(Succeed())

		mine := before.DeepCopy()
		mine.Status.FailedAttempts = 1
		_, err := authorizerStatusWriter(k8sClient, k8sClient, &versions).write(ctx, time.Now(), before, mine, reconcile.Result{}, nil)
		Expect(err).NotTo(HaveOccurred())

		got := live()
		Expect(got.Status.FailedAttempts).To(Equal(int32(1)), "the reconcile's change is written")
		Expect(got.Status.UnauthorizedAt).NotTo(BeNil(), "the receiver's revocation is kept")
		Expect(got.GetResourceVersion()).NotTo(Equal(receiver.GetResourceVersion()))
		leftAlone(got)
		Expect(sameMap(mine.Labels, sharedAuthorizerLabels.share(maps.Clone(mine.Labels)))).To(BeFalse(),
			"the rebased object holds a labels map of its own: the write decoded its response into it")
	})
})

// cachedShape is a as the manager's cache holds it (compactCached).
func cachedShape(a *wechatv1alpha1.WeChatAuthorizer) *wechatv1alpha1.WeChatAuthorizer {
	GinkgoHelper()
	cached := a.DeepCopy()
	_, err := compactCached(cached)
	Expect(err).NotTo(HaveOccurred())
	Expect(cached.Annotations).NotTo(HaveKey(corev1.LastAppliedConfigAnnotation))
	Expect(cached.Status.Info.NickName).To(BeEmpty())
	return cached
}
