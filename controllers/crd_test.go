/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// loadSample decodes one file of config/samples into a typed object.
func loadSample(name string) client.Object {
	data, err := os.ReadFile(filepath.Join("..", "config", "samples", name))
	Expect(err).NotTo(HaveOccurred())
	obj, _, err := serializer.NewCodecFactory(scheme).UniversalDeserializer().Decode(data, nil, nil)
	Expect(err).NotTo(HaveOccurred())
	return obj.(client.Object)
}

func validComponent(ns string) *wechatv1alpha1.WeChatComponent {
	return &wechatv1alpha1.WeChatComponent{
		ObjectMeta: metav1.ObjectMeta{Name: "platform", Namespace: ns},
		Spec: wechatv1alpha1.WeChatComponentSpec{
			AppID:                "wx0123456789abcdef",
			CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: "creds"},
		},
	}
}

func validAuthorizer(ns string) *wechatv1alpha1.WeChatAuthorizer {
	return &wechatv1alpha1.WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Name: "account", Namespace: ns},
		Spec: wechatv1alpha1.WeChatAuthorizerSpec{
			ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"},
			AppID:        "wxfedcba9876543210",
		},
	}
}

// forwardingTo is a valid authorizer that forwards its messages to url.
func forwardingTo(ns, url string) *wechatv1alpha1.WeChatAuthorizer {
	a := validAuthorizer(ns)
	a.Spec.Messages.Forward = &wechatv1alpha1.MessageForwarding{URL: url,
		HMACKeySecretRef: wechatv1alpha1.HMACKeySecretReference{Name: "hmac"}}
	return a
}

var _ = Describe("the generated CRDs on a real API server", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("accepts the samples in config/samples", func() {
		for _, file := range []string{
			"credentials_secret.yaml",
			"platform_v1alpha1_wechatcomponent.yaml",
			"platform_v1alpha1_wechatauthorizer.yaml",
		} {
			obj := loadSample(file)
			obj.SetNamespace(ns)
			Expect(k8sClient.Create(ctx, obj)).To(Succeed(), file)
		}
		got := &wechatv1alpha1.WeChatComponent{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo-platform"}, got)).To(Succeed())
		Expect(got.Spec.AppID).To(Equal("wxd0c8a7b6e5f4a3b2"))
		Expect(got.Spec.Authorizers.AutoCreate).To(BeTrue())
	})

	It("leaves an applied spec exactly as written (nothing defaulted for GitOps to see as drift)", func() {
		c := validComponent(ns)
		Expect(k8sClient.Create(ctx, c)).To(Succeed())
		got := &wechatv1alpha1.WeChatComponent{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(c), got)).To(Succeed())
		Expect(got.Spec).To(Equal(c.Spec))
	})

	DescribeTable("rejects invalid objects with the API server's validation message",
		func(mutate func(ns string) client.Object, field, message string) {
			err := k8sClient.Create(ctx, mutate(ns))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(field))
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("component appID that is not wx + 16 hex digits", func(ns string) client.Object {
			c := validComponent(ns)
			c.Spec.AppID = "wx0123456789ABCDEF"
			return c
		}, "spec.appID", `should match '^wx[0-9a-f]{16}$'`),
		Entry("authorizer appID that is too short", func(ns string) client.Object {
			a := validAuthorizer(ns)
			a.Spec.AppID = "wx1234"
			return a
		}, "spec.appID", `should match '^wx[0-9a-f]{16}$'`),
		Entry("component without a credentials Secret reference", func(ns string) client.Object {
			c := validComponent(ns)
			c.Spec.CredentialsSecretRef = wechatv1alpha1.CredentialsSecretReference{}
			return c
		}, "spec.credentialsSecretRef.name", "should be at least 1 chars long"),
		Entry("authorizer without a component reference", func(ns string) client.Object {
			a := validAuthorizer(ns)
			a.Spec.ComponentRef = wechatv1alpha1.LocalObjectReference{}
			return a
		}, "spec.componentRef.name", "should be at least 1 chars long"),
		Entry("authorizer with an unknown onUnauthorized policy", func(ns string) client.Object {
			a := validAuthorizer(ns)
			a.Spec.OnUnauthorized = "Delete"
			return a
		}, "spec.onUnauthorized", `Unsupported value: "Delete"`),
		Entry("refresh.before that is neither a duration nor a percentage", func(ns string) client.Object {
			c := validComponent(ns)
			c.Spec.Refresh.Before = "soon"
			return c
		}, "spec.refresh.before", "should match"),
		Entry("a receiver timestamp window over an hour (the replay cache's memory is sized by it)", func(ns string) client.Object {
			c := validComponent(ns)
			c.Spec.Receiver.TimestampWindow = "1h0m1s"
			return c
		}, "spec.receiver.timestampWindow", "timestampWindow must be at most 1h"),
		Entry("forward.url naming a cloud metadata endpoint", func(ns string) client.Object {
			return forwardingTo(ns, "http://169.254.169.254/latest/meta-data/")
		}, "spec.messages.forward.url", "must not name a link-local or unspecified address"),
		Entry("forward.url naming a link-local IPv6 address", func(ns string) client.Object {
			return forwardingTo(ns, "http://[fe80::1]:8080/")
		}, "spec.messages.forward.url", "must not name a link-local"),
		Entry("forward.url naming the unspecified address", func(ns string) client.Object {
			return forwardingTo(ns, "http://0.0.0.0:8080/")
		}, "spec.messages.forward.url", "must not name a link-local or unspecified address"),
		Entry("forward.url with user information", func(ns string) client.Object {
			return forwardingTo(ns, "http://user:secret@shop.team-a.svc/")
		}, "spec.messages.forward.url", "should match"),
		Entry("an account option out of WeChat's range", func(ns string) client.Object {
			a := validAuthorizer(ns)
			three := int32(3)
			a.Spec.Options = &wechatv1alpha1.AuthorizerOptions{LocationReport: &three}
			return a
		}, "spec.options.locationReport", "should be less than or equal to 2"),
		Entry("a permission set id below 1", func(ns string) client.Object {
			a := validAuthorizer(ns)
			a.Spec.RequiredFuncInfo = []int32{1, 0}
			return a
		}, "spec.requiredFuncInfo[1]", "should be greater than or equal to 1"),
		Entry("a permission set id listed twice", func(ns string) client.Object {
			a := validAuthorizer(ns)
			a.Spec.RequiredFuncInfo = []int32{1, 1}
			return a
		}, "spec.requiredFuncInfo[1]", "Duplicate value"),
	)

	It("accepts a timestamp window of up to an hour", func() {
		for _, window := range []string{"1h", "59m59s", "90s", "0.5h"} {
			c := validComponent(ns)
			c.Name = "window-" + strings.NewReplacer(".", "-").Replace(window)
			c.Spec.Receiver.TimestampWindow = window
			Expect(k8sClient.Create(ctx, c)).To(Succeed(), window)
		}
	})

	It("refuses an authorization code of an unknown source in status", func() {
		c := validComponent(ns)
		Expect(k8sClient.Create(ctx, c)).To(Succeed())
		c.Status.PendingAuthorizationCodes = []wechatv1alpha1.AuthorizationCode{{Code: "queryauthcode@@@x",
			ExpiresAt: metav1.Now(), Source: "Someone"}}
		err := k8sClient.Status().Update(ctx, c)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`Unsupported value: "Someone"`))
	})

	It("accepts a forward.url naming an in-cluster Service", func() {
		for _, u := range []string{"http://shop.team-a.svc:8080/wechat", "https://shop.team-a.svc.cluster.local/wechat?x=1"} {
			a := forwardingTo(ns, u)
			a.Name = ""
			a.GenerateName = "forwarding-"
			Expect(k8sClient.Create(ctx, a)).To(Succeed(), u)
		}
	})

	It("rejects a component whose credentialsSecretRef is missing altogether", func() {
		raw := []byte(`{"apiVersion":"platform.wechat-operator.dev/v1alpha1","kind":"WeChatComponent",
			"metadata":{"name":"no-creds"},"spec":{"appID":"wx0123456789abcdef"}}`)
		clientset := kubernetes.NewForConfigOrDie(cfg)
		result := clientset.RESTClient().Post().
			AbsPath("/apis/platform.wechat-operator.dev/v1alpha1/namespaces", ns, "wechatcomponents").
			Body(raw).SetHeader("Content-Type", "application/json").Do(ctx)
		Expect(result.Error()).To(HaveOccurred())
		Expect(result.Error().Error()).To(ContainSubstring("spec.credentialsSecretRef: Required value"))
	})

	It("keeps status a separate subresource from spec", func() {
		c := validComponent(ns)
		Expect(k8sClient.Create(ctx, c)).To(Succeed())
		generation := c.Generation

		// A status written through the main resource is dropped.
		c.Status.TokenSecretName = "ignored"
		c.Spec.TokenSecret.Name = "custom-token"
		Expect(k8sClient.Update(ctx, c)).To(Succeed())
		got := &wechatv1alpha1.WeChatComponent{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(c), got)).To(Succeed())
		Expect(got.Status.TokenSecretName).To(BeEmpty())
		Expect(got.Spec.TokenSecret.Name).To(Equal("custom-token"))
		Expect(got.Generation).To(Equal(generation + 1))

		// A spec written through the status subresource is dropped, and generation stays.
		got.Status.TokenSecretName = "platform-component-token"
		got.Spec.TokenSecret.Name = "changed-through-status"
		Expect(k8sClient.Status().Update(ctx, got)).To(Succeed())
		after := &wechatv1alpha1.WeChatComponent{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(c), after)).To(Succeed())
		Expect(after.Status.TokenSecretName).To(Equal("platform-component-token"))
		Expect(after.Spec.TokenSecret.Name).To(Equal("custom-token"))
		Expect(after.Generation).To(Equal(generation + 1))
	})

	DescribeTable("serves the printer columns, wide ones at priority 1",
		func(resource string, create func(ns string) client.Object, columns, wide []string) {
			Expect(k8sClient.Create(ctx, create(ns))).To(Succeed())
			clientset := kubernetes.NewForConfigOrDie(cfg)
			body, err := clientset.RESTClient().Get().
				AbsPath("/apis/platform.wechat-operator.dev/v1alpha1/namespaces", ns, resource).
				SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
				DoRaw(ctx)
			Expect(err).NotTo(HaveOccurred())
			table := &metav1.Table{}
			Expect(json.Unmarshal(body, table)).To(Succeed())
			var normal, priority []string
			for _, col := range table.ColumnDefinitions {
				if col.Priority == 0 {
					normal = append(normal, col.Name)
				} else {
					priority = append(priority, col.Name)
				}
			}
			Expect(normal).To(Equal(columns))
			Expect(priority).To(Equal(wide))
			Expect(table.Rows).To(HaveLen(1))
		},
		Entry("wechatcomponents", "wechatcomponents", func(ns string) client.Object { return validComponent(ns) },
			[]string{"Name", "AppID", "Ready", "Ticket Age", "Expires", "Age"},
			[]string{"Reason", "Refresh At", "Secret"}),
		Entry("wechatauthorizers", "wechatauthorizers", func(ns string) client.Object { return validAuthorizer(ns) },
			[]string{"Name", "AppID", "Nickname", "Ready", "Expires", "Age"},
			[]string{"Component", "Authorized", "Reason", "Permissions", "Options", "Secret"}),
	)
})
