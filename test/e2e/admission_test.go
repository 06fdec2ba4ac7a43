/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// The admission policy of config/admission (applied with config/default in BeforeSuite),
// enforced by this API server: RBAC lets the receiver patch the whole status subresource;
// the policy lets it change only the fields it owns, and create or delete nothing.
var _ = Describe("the admission policy on the webhook receiver's writes", Ordered, func() {
	var (
		asReceiver client.Client
		asManager  client.Client
		component  *wechatv1alpha1.WeChatComponent
		authorizer *wechatv1alpha1.WeChatAuthorizer
	)
	impersonate := func(sa serviceAccount) client.Client {
		c := rest.CopyConfig(cfg)
		c.Impersonate = rest.ImpersonationConfig{UserName: sa.user(), Groups: sa.groups()}
		cl, err := client.New(c, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		return cl
	}
	// patch merges status into obj's status subresource as c.
	patch := func(c client.Client, obj client.Object, status map[string]any) error {
		body, err := json.Marshal(map[string]any{"status": status})
		Expect(err).NotTo(HaveOccurred())
		return c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
	}
	now := func() string { return time.Now().UTC().Truncate(time.Second).Format(time.RFC3339) }
	condition := func(t, reason string) map[string]any {
		return map[string]any{"type": t, "status": "False", "reason": reason, "message": "m", "lastTransitionTime": now()}
	}

	BeforeAll(func() {
		asReceiver, asManager = impersonate(receiver), impersonate(manager)
		component = &wechatv1alpha1.WeChatComponent{
			ObjectMeta: metav1.ObjectMeta{Name: "admission-platform", Namespace: appNS},
			Spec: wechatv1alpha1.WeChatComponentSpec{AppID: "wx0123456789abcdef",
				CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: "creds"}},
		}
		Expect(k8sClient.Create(ctx, component)).To(Succeed())
		authorizer = &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "admission-shop", Namespace: appNS},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{ComponentRef: wechatv1alpha1.LocalObjectReference{Name: component.Name},
				AppID: "wx00000000000000aa"},
		}
		Expect(k8sClient.Create(ctx, authorizer)).To(Succeed())
		// A new policy takes effect once the API server has compiled it: wait for the first refusal.
		Eventually(func() error {
			return patch(asReceiver, component, map[string]any{"failedAttempts": 7})
		}).Should(MatchError(ContainSubstring("status.failedAttempts")))
	})

	DescribeTable("lets the receiver write its own status fields",
		func(kind string, status func() map[string]any) {
			var obj client.Object = component
			if kind == "WeChatAuthorizer" {
				obj = authorizer
			}
			Expect(patch(asReceiver, obj, status())).To(Succeed())
		},
		Entry("a ticket", "WeChatComponent", func() map[string]any {
			return map[string]any{"verifyTicket": map[string]any{"ticket": "t", "createTime": now(), "receivedAt": now()}}
		}),
		Entry("a redirect code", "WeChatComponent", func() map[string]any {
			return map[string]any{"pendingAuthorizationCodes": []any{map[string]any{"code": "c", "expiresAt": now()}}}
		}),
		Entry("a test reply", "WeChatComponent", func() map[string]any {
			return map[string]any{"pendingTestReplies": []any{map[string]any{"authorizerAppID": "wx1", "toUser": "o",
				"code": "c", "receivedAt": now(), "expiresAt": now()}}}
		}),
		Entry("an authorization code", "WeChatAuthorizer", func() map[string]any {
			return map[string]any{"authorizationCode": map[string]any{"code": "c", "expiresAt": now()}}
		}),
		Entry("a revocation and the Authorized condition", "WeChatAuthorizer", func() map[string]any {
			return map[string]any{"unauthorizedAt": now(), "conditions": []any{condition("Authorized", "Unauthorized")}}
		}),
	)

	DescribeTable("refuses the receiver every field the manager owns, naming it",
		func(kind, field string, status map[string]any) {
			var obj client.Object = component
			if kind == "WeChatAuthorizer" {
				obj = authorizer
			}
			err := patch(asReceiver, obj, status)
			Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
			Expect(err.Error()).To(ContainSubstring(field))
			By("the same write as the manager passing")
			Expect(patch(asManager, obj, status)).To(Succeed())
		},
		Entry("the refresh schedule", "WeChatComponent", "status.refreshAt", map[string]any{"refreshAt": "2030-01-01T00:00:00Z"}),
		Entry("the expiry", "WeChatComponent", "status.expiresAt", map[string]any{"expiresAt": "2030-01-01T00:00:00Z"}),
		Entry("the token Secret's name", "WeChatComponent", "status.tokenSecretName", map[string]any{"tokenSecretName": "other-app-db"}),
		Entry("the component's conditions", "WeChatComponent", "status.conditions", map[string]any{"conditions": []any{condition("Ready", "TokenExpired")}}),
		Entry("the failure count", "WeChatAuthorizer", "status.failedAttempts", map[string]any{"failedAttempts": 3}),
		Entry("the account info (URLs)", "WeChatAuthorizer", "status.info", map[string]any{"info": map[string]any{"qrcodeURL": "http://evil.example/"}}),
		Entry("an authorizer's Ready condition", "WeChatAuthorizer", "only the Authorized condition",
			map[string]any{"conditions": []any{condition("Authorized", "Unauthorized"), condition("Ready", "TokenExpired")}}),
	)

	It("refuses the receiver creating a resource, which RBAC alone would allow", func() {
		a := &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: appNS},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{ComponentRef: wechatv1alpha1.LocalObjectReference{Name: component.Name},
				AppID: "wx00000000000000bb",
				Messages: wechatv1alpha1.AuthorizerMessages{Forward: &wechatv1alpha1.MessageForwarding{URL: "http://evil.example/",
					HMACKeySecretRef: wechatv1alpha1.HMACKeySecretReference{Name: "creds", Key: "appSecret"}}}},
		}
		err := asReceiver.Create(ctx, a)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(SatisfyAny(ContainSubstring("may only patch the status"), ContainSubstring("forbidden")))
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(a), &wechatv1alpha1.WeChatAuthorizer{}))).To(BeTrue())
	})

	It("matches the receiver by the ServiceAccount config/default creates", func() {
		u := typedPolicyExpression()
		Expect(u).To(Equal(fmt.Sprintf("request.userInfo.username == 'system:serviceaccount:' + '%s' + ':' + '%s'", operatorNamespace, receiverSA)))
		Expect(strings.Count(u, "'")).To(Equal(8))
	})
})

// typedPolicyExpression is the rendered policy's match condition.
func typedPolicyExpression() string {
	GinkgoHelper()
	u := typedVAP()
	Expect(u.Spec.MatchConditions).To(HaveLen(1))
	return u.Spec.MatchConditions[0].Expression
}

func typedVAP() *admissionregistrationv1.ValidatingAdmissionPolicy {
	GinkgoHelper()
	return typed("ValidatingAdmissionPolicy", "wechat-operator-receiver-status-fields", &admissionregistrationv1.ValidatingAdmissionPolicy{})
}
