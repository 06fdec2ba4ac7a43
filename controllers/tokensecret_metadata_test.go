/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

var _ = Describe("the operator's share of a token Secret's metadata", func() {
	token := &issuedToken{accessToken: "token-1", appID: "wx1", issuedAt: simStart, expiresAt: simStart.Add(2 * time.Hour)}
	tmpl := wechatv1alpha1.TokenSecretTemplate{Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"}}
	own := map[string]string{wechatv1alpha1.LabelComponent: "platform"}

	// write is one write of ensure onto a Secret with the given metadata.
	write := func(labels, annotations map[string]string, t wechatv1alpha1.TokenSecretTemplate, tok *issuedToken) (map[string]string, map[string]string) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations}}
		return ownedMetadata(t, own, tok).apply(s.Labels, s.Annotations, previousTemplateKeys(s))
	}

	It("sets its keys and keeps everybody else's", func() {
		l, a := write(map[string]string{"gitops/instance": "x", "team": "old"}, map[string]string{"mirror/to": "ns"}, tmpl, token)
		Expect(l).To(Equal(map[string]string{"gitops/instance": "x", "team": "a", wechatv1alpha1.LabelComponent: "platform",
			wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue}))
		Expect(a).To(HaveKeyWithValue("mirror/to", "ns"))
		Expect(a).To(HaveKeyWithValue("note", "x"))
		Expect(a).To(HaveKeyWithValue(wechatv1alpha1.AnnotationTokenHash, tokenHash("token-1")))
		Expect(a).To(HaveKeyWithValue(wechatv1alpha1.AnnotationTemplateKeys, `{"labels":["team"],"annotations":["note"]}`))
	})

	It("removes the template keys it set before and no longer wants, and only those", func() {
		l, a := write(map[string]string{"gitops/instance": "x"}, map[string]string{"mirror/to": "ns"}, tmpl, token)
		l, a = write(l, a, wechatv1alpha1.TokenSecretTemplate{Labels: map[string]string{"tier": "b"}}, token)
		Expect(l).NotTo(HaveKey("team"))
		Expect(l).To(HaveKeyWithValue("tier", "b"))
		Expect(a).NotTo(HaveKey("note"))
		Expect(a).To(HaveKeyWithValue("mirror/to", "ns"))
		Expect(l).To(HaveKeyWithValue("gitops/instance", "x"))

		l, a = write(l, a, wechatv1alpha1.TokenSecretTemplate{}, nil)
		Expect(l).NotTo(HaveKey("tier"))
		Expect(a).To(Equal(map[string]string{"mirror/to": "ns"}), "no token, no template: only the others' annotations")
		Expect(l).To(HaveKeyWithValue(wechatv1alpha1.LabelManagedBy, wechatv1alpha1.ManagedByValue), "the managed-by label always stays")
	})

	It("lets its own labels win over the template's", func() {
		l, _ := write(nil, nil, wechatv1alpha1.TokenSecretTemplate{Labels: map[string]string{wechatv1alpha1.LabelManagedBy: "someone"}}, token)
		Expect(l).To(HaveKeyWithValue(wechatv1alpha1.LabelManagedBy, wechatv1alpha1.ManagedByValue))
	})
})
