/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
