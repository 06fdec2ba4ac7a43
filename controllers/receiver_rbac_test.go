/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

// applyReceiverRBAC applies the receiver's ServiceAccount, Roles and bindings of config/rbac
// to ns (cluster-scoped ones under a per-namespace name).
func applyReceiverRBAC(ns string) {
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	files := []string{"receiver_service_account.yaml", "receiver_role.yaml", "receiver_role_binding.yaml",
		"receiver_keyring_role.yaml", "receiver_keyring_role_binding.yaml"}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("..", "config", "rbac", f))
		Expect(err).NotTo(HaveOccurred())
		obj, _, err := decoder.Decode(data, nil, nil)
		Expect(err).NotTo(HaveOccurred(), f)
		o := obj.(client.Object)
		switch t := o.(type) {
		case *rbacv1.ClusterRole:
			t.Name += "-" + ns
		case *rbacv1.ClusterRoleBinding:
			t.Name += "-" + ns
			t.RoleRef.Name += "-" + ns
			t.Subjects[0].Namespace = ns
		case *rbacv1.RoleBinding:
			t.Namespace = ns
			t.Subjects[0].Namespace = ns
		default:
			o.SetNamespace(ns)
		}
		Expect(k8sClient.Create(ctx, o)).To(Succeed(), f)
	}
}

// The receiver's RBAC (config/rbac/receiver_*.yaml) against its real access pattern: an
// informer cache that lists and watches the keyring by name, reads of the custom resources,
// and status patches. Cluster-scoped objects get a per-test name so specs do not collide.
var _ = Describe("the webhook receiver running as its own ServiceAccount", func() {
	applyRBAC := applyReceiverRBAC

	It("syncs its cache, verifies a push and writes status, and reads no other Secret", func() {
		w := newWorld()
		defer w.close()
		applyRBAC(w.ns)
		w.createComponent()
		w.reconcile() // the manager's part: the keyring

		asReceiver := rest.CopyConfig(cfg)
		asReceiver.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + w.ns + ":webhook-receiver"}
		keyringKey := types.NamespacedName{Namespace: w.ns, Name: testKeyringName}
		options := receiver.CacheOptions(keyringKey)
		options.Scheme = scheme
		receiverCache, err := cache.New(asReceiver, options)
		Expect(err).NotTo(HaveOccurred())
		for _, obj := range []client.Object{&wechatv1alpha1.WeChatComponent{}, &wechatv1alpha1.WeChatAuthorizer{}, &corev1.Secret{}} {
			_, err := receiverCache.GetInformer(ctx, obj)
			Expect(err).NotTo(HaveOccurred())
		}
		cacheCtx, stop := context.WithCancel(ctx)
		defer stop()
		go func() { _ = receiverCache.Start(cacheCtx) }()
		Expect(receiverCache.WaitForCacheSync(cacheCtx)).To(BeTrue(), "the RBAC lets the informers list and watch")
		Eventually(func() error { return receiverCache.Get(ctx, keyringKey, &corev1.Secret{}) }).Should(Succeed())

		direct, err := client.New(asReceiver, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		recv := receiver.New(receiver.Options{Reader: receiverCache, APIReader: direct, Client: direct, Keyring: keyringKey, Clock: w.clock})
		server := httptest.NewServer(recv.Handler())
		defer server.Close()
		Expect(w.sim.SetReceiverURL(testComponentAppID, fmt.Sprintf("%s/wechat/%s/platform/events", server.URL, w.ns))).To(Succeed())
		ticket := w.pushTicket()
		Expect(w.component().Status.VerifyTicket.Ticket).To(Equal(ticket))

		By("being refused every other Secret and every spec write")
		err = direct.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: "creds"}, &corev1.Secret{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "reading the credentials Secret: %v", err)
		// usable-by releases a Secret to the manager's use for one resource, never to the receiver.
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hmac", Namespace: w.ns,
			Annotations: releasedTo(wechatv1alpha1.KindWeChatAuthorizer + "/*")}, StringData: map[string]string{"hmacKey": "0123456789abcdef0123"}})).To(Succeed())
		err = direct.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: "hmac"}, &corev1.Secret{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "reading an opted-in forwarding key Secret: %v", err)
		err = direct.List(ctx, &corev1.SecretList{}, client.InNamespace(w.ns))
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "listing Secrets: %v", err)
		c := w.component()
		c.Spec.AppID = "wxffffffffffffffff"
		Expect(apierrors.IsForbidden(direct.Update(ctx, c))).To(BeTrue(), "updating spec")
		ring := &corev1.Secret{}
		Expect(direct.Get(ctx, keyringKey, ring)).To(Succeed())
		Expect(ring.Data).To(HaveKey(keyring.TokenKey(w.ns, "platform")))
		ring.Data["x"] = []byte("y")
		Expect(apierrors.IsForbidden(direct.Update(ctx, ring))).To(BeTrue(), "writing the keyring")
	})
})
