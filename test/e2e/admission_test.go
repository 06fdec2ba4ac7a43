/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	receivercode "github.com/wechat-operator/wechat-operator/webhook-receiver"
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
		}).WithTimeout(30 * time.Second).Should(MatchError(ContainSubstring("status.failedAttempts")))
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
		Entry("a start page request", "WeChatComponent", func() map[string]any {
			return map[string]any{"authorizeLinkRequests": []any{map[string]any{"id": "request-0123456789ab", "requestedAt": now()}}}
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

// The real receiver, running as its ServiceAccount under config/default's RBAC and
// admission policy, still does its job: its ticket write passes the policy.
var _ = Describe("the webhook receiver under config/default's RBAC and admission policy", func() {
	It("records a pushed ticket", func() {
		const (
			appID  = "wx00112233445566aa"
			token  = "e2e-verify-token"
			aesKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
			name   = "admission-ticket-platform"
		)
		Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatComponent{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS},
			Spec: wechatv1alpha1.WeChatComponentSpec{AppID: appID,
				CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: "creds"}},
		})).To(Succeed())
		// The manager's part: the keyring entries (written here as admin).
		ringKey := types.NamespacedName{Namespace: operatorNamespace, Name: keyName}
		ring := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: keyName, Namespace: operatorNamespace}}
		_, err := controllerutil.CreateOrUpdate(ctx, k8sClient, ring, func() error {
			if ring.Data == nil {
				ring.Data = map[string][]byte{}
			}
			ring.Data[keyring.TokenKey(appNS, name)] = []byte(token)
			ring.Data[keyring.AESKeyKey(appNS, name)] = []byte(aesKey)
			return nil
		})
		Expect(err).NotTo(HaveOccurred())

		asReceiver := rest.CopyConfig(cfg)
		asReceiver.Impersonate = rest.ImpersonationConfig{UserName: receiver.user(), Groups: receiver.groups()}
		options := receivercode.CacheOptions(ringKey)
		options.Scheme = scheme
		recvCache, err := cache.New(asReceiver, options)
		Expect(err).NotTo(HaveOccurred())
		for _, obj := range []client.Object{&wechatv1alpha1.WeChatComponent{}, &wechatv1alpha1.WeChatAuthorizer{}, &corev1.Secret{}} {
			_, err := recvCache.GetInformer(ctx, obj)
			Expect(err).NotTo(HaveOccurred())
		}
		cacheCtx, stop := context.WithCancel(ctx)
		defer stop()
		go func() { _ = recvCache.Start(cacheCtx) }()
		Expect(recvCache.WaitForCacheSync(cacheCtx)).To(BeTrue())
		Eventually(func() map[string][]byte {
			s := &corev1.Secret{}
			_ = recvCache.Get(ctx, ringKey, s)
			return s.Data
		}).Should(HaveKey(keyring.TokenKey(appNS, name)))
		direct, err := client.New(asReceiver, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		By("the policy in force (a field the receiver does not own is refused)")
		Eventually(func() error {
			c := &wechatv1alpha1.WeChatComponent{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS}}
			return direct.Status().Patch(ctx, c, client.RawPatch(types.MergePatchType, []byte(`{"status":{"failedAttempts":1}}`)))
		}).WithTimeout(30 * time.Second).Should(MatchError(ContainSubstring("status.failedAttempts")))
		server := httptest.NewServer(receivercode.New(receivercode.Options{Reader: recvCache, APIReader: direct, Client: direct, Keyring: ringKey}).Handler())
		defer server.Close()

		sim := wxsim.MustNew(wxsim.Options{Components: []wxsim.ComponentSeed{{AppID: appID, AppSecret: "s", Token: token,
			EncodingAESKey: aesKey, ReceiverURL: fmt.Sprintf("%s/wechat/%s/%s/events", server.URL, appNS, name)}}, PushRetries: -1})
		defer sim.Close()
		ticket, err := sim.PushTicket(ctx, appID)
		Expect(err).NotTo(HaveOccurred())
		got := &wechatv1alpha1.WeChatComponent{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: appNS, Name: name}, got)).To(Succeed())
		Expect(got.Status.VerifyTicket).NotTo(BeNil(), "the receiver's status write was refused")
		Expect(got.Status.VerifyTicket.Ticket).To(Equal(ticket))
	})
})
