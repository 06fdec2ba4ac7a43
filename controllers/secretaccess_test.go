/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
)

// Someone who may edit WeChatComponents or WeChatAuthorizers of a namespace, but not read its
// Secrets, names a Secret of that namespace that was never meant for the operator (here:
// "db", another app's password) in every spec field that names a Secret. The manager must
// read none of it: nothing reaches the receiver keyring, WeChat or a state Secret, and the
// resource says which annotation would release the Secret.
var _ = Describe("Secrets named in spec are read only when released to the resource", func() {
	const (
		password     = "the-database-password-0123456789"
		annotateHint = wechatv1alpha1.AnnotationUsableBy + "="
	)
	var w *world
	AfterEach(func() { w.close() })

	foreignSecret := func(annotations map[string]string) {
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: w.ns, Annotations: annotations},
			StringData: map[string]string{"password": password, "encodingAESKey": testEncodingAESKey,
				"token": password, "appSecret": password},
		})).To(Succeed())
	}
	keyringValues := func() string {
		ring := w.secret(testKeyringName)
		if ring == nil {
			return ""
		}
		var all []string
		for _, v := range ring.Data {
			all = append(all, string(v))
		}
		return strings.Join(all, "\n")
	}
	drainEvents := func() string {
		var recorded []string
		for len(w.recorder.Events) > 0 {
			recorded = append(recorded, <-w.recorder.Events)
		}
		return strings.Join(recorded, "\n")
	}

	It("refuses a credentials Secret not released to the component, and says how to release it", func() {
		w = newWorld()
		foreignSecret(releasedTo(wechatv1alpha1.KindWeChatComponent + "/someone-else"))
		Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatComponent{
			ObjectMeta: metav1.ObjectMeta{Name: w.key.Name, Namespace: w.ns},
			Spec: wechatv1alpha1.WeChatComponentSpec{AppID: testComponentAppID,
				CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: "db", TokenKey: "password"}},
		})).To(Succeed())
		w.reconcile()
		ready := condition(w.component().Status.Conditions, wechatv1alpha1.ConditionReady)
		Expect(ready.Reason).To(Equal(wechatv1alpha1.ReasonSecretNotOptedIn))
		Expect(ready.Message).To(ContainSubstring(annotateHint + "WeChatComponent/" + w.key.Name))
		Expect(ready.Message).NotTo(ContainSubstring(password))
		Expect(keyringValues()).NotTo(ContainSubstring(password), "nothing of the Secret in the keyring")

		By("working once the owner releases the Secret to it")
		s := w.secret("db")
		s.Annotations[wechatv1alpha1.AnnotationUsableBy] = "WeChatComponent/someone-else, WeChatComponent/" + w.key.Name
		Expect(k8sClient.Update(ctx, s)).To(Succeed())
		w.reconcile()
		Expect(condition(w.component().Status.Conditions, wechatv1alpha1.ConditionReady).Reason).
			NotTo(Equal(wechatv1alpha1.ReasonSecretNotOptedIn))
		Expect(string(w.secret(testKeyringName).Data[keyring.TokenKey(w.ns, w.key.Name)])).To(Equal(password))
	})

	It("does not copy an unreleased Secret into the keyring as a forwarding key", func() {
		w = newWorld()
		w.createComponent(func(c *wechatv1alpha1.WeChatComponent) {
			c.Spec.Messages.Forward = &wechatv1alpha1.MessageForwarding{URL: "http://app.team-a.svc/wechat",
				HMACKeySecretRef: wechatv1alpha1.HMACKeySecretReference{Name: "db", Key: "password"}}
		})
		foreignSecret(nil)
		w.authz.KeyringNamespace, w.authz.KeyringName = w.ns, testKeyringName
		Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: w.ns},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{
				ComponentRef: wechatv1alpha1.LocalObjectReference{Name: w.key.Name}, AppID: "wx00000000000000aa",
				Messages: wechatv1alpha1.AuthorizerMessages{Forward: &wechatv1alpha1.MessageForwarding{
					URL: "http://shop.team-a.svc/wechat", HMACKeySecretRef: wechatv1alpha1.HMACKeySecretReference{Name: "db", Key: "password"}}},
			},
		})).To(Succeed())
		w.reconcile()
		w.reconcileAuthorizer("shop")
		ring := w.secret(testKeyringName)
		Expect(ring).NotTo(BeNil(), "the component's own keys are projected")
		Expect(ring.Data).To(HaveKey(keyring.TokenKey(w.ns, w.key.Name)))
		Expect(ring.Data).NotTo(HaveKey(keyring.ForwardKeyKey(w.ns, w.key.Name)))
		Expect(ring.Data).NotTo(HaveKey(keyring.AuthorizerForwardKeyKey(w.ns, "shop")))
		Expect(keyringValues()).NotTo(ContainSubstring(password))
		events := drainEvents()
		Expect(events).To(ContainSubstring(wechatv1alpha1.ReasonSecretNotOptedIn))
		Expect(events).To(ContainSubstring(annotateHint + "WeChatComponent/" + w.key.Name))
		Expect(events).To(ContainSubstring(annotateHint + "WeChatAuthorizer/shop"))
		Expect(events).NotTo(ContainSubstring(password))
	})

	It("does not import a refresh token from an unreleased Secret", func() {
		w = newWorld()
		w.createComponent()
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		foreignSecret(releasedTo(wechatv1alpha1.KindWeChatComponent + "/*"))
		Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: w.ns},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{
				ComponentRef: wechatv1alpha1.LocalObjectReference{Name: w.key.Name}, AppID: "wx00000000000000aa",
				RefreshTokenSecretRef: &wechatv1alpha1.SecretKeyReference{Name: "db", Key: "password"},
			},
		})).To(Succeed())
		w.reconcileAuthorizer("shop")
		ready := condition(w.authorizer("shop").Status.Conditions, wechatv1alpha1.ConditionReady)
		Expect(ready.Reason).To(Equal(wechatv1alpha1.ReasonSecretNotOptedIn))
		Expect(ready.Message).To(ContainSubstring(annotateHint + "WeChatAuthorizer/shop"))
		Expect(w.secret("shop-state")).To(BeNil(), "nothing of the Secret stored")
		Expect(w.logs.String()).NotTo(ContainSubstring(password))
	})
})

var _ = DescribeTable("usable-by names a resource",
	func(annotation, kind, name string, want bool) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
		if annotation != "-" {
			s.Annotations[wechatv1alpha1.AnnotationUsableBy] = annotation
		}
		Expect(usableBy(s, kind, name)).To(Equal(want))
	},
	Entry("no annotation", "-", "WeChatComponent", "p", false),
	Entry("empty", "", "WeChatComponent", "p", false),
	Entry("exact", "WeChatComponent/p", "WeChatComponent", "p", true),
	Entry("in a list, with spaces", "WeChatAuthorizer/a , WeChatComponent/p", "WeChatComponent", "p", true),
	Entry("wildcard of the kind", "WeChatAuthorizer/*", "WeChatAuthorizer", "shop", true),
	Entry("wildcard of another kind", "WeChatAuthorizer/*", "WeChatComponent", "p", false),
	Entry("same name, other kind", "WeChatAuthorizer/p", "WeChatComponent", "p", false),
	Entry("a prefix is not the name", "WeChatComponent/pl", "WeChatComponent", "platform", false),
	Entry("a bare name is not an entry", "p", "WeChatComponent", "p", false),
	Entry("kind is case-sensitive", "wechatcomponent/p", "WeChatComponent", "p", false),
)
