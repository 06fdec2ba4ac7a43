/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wechat-operator/wechat-operator/internal/eventrecorder"
)

// The manager's Event recorder (cmd/manager) against the API server: its writes, a series'
// patch included, are what events.k8s.io/v1 accepts, and kubectl shows them.
var _ = Describe("The manager's Event recorder", func() {
	It("writes Events the API server accepts and counts a repeat on the first", func() {
		ns := newNamespace()
		httpClient, err := rest.HTTPClientFor(cfg)
		Expect(err).NotTo(HaveOccurred())
		recorder, err := eventrecorder.New(cfg, httpClient, scheme, "wechat-operator", logr.Discard())
		Expect(err).NotTo(HaveOccurred())
		rctx, stop := context.WithCancel(ctx)
		stopped := make(chan error)
		go func() { stopped <- recorder.Start(rctx) }()

		token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-token"}}
		Expect(k8sClient.Create(ctx, token)).To(Succeed())
		recorder.Eventf(token, nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "access token issued, valid until %s", "2026-12-06T02:00:00Z")
		recorder.Eventf(token, nil, corev1.EventTypeWarning, "RefreshFailed", "Refresh", "WeChat answered 61003")
		recorder.Eventf(token, nil, corev1.EventTypeWarning, "RefreshFailed", "Refresh", "WeChat answered 61003")

		byReason := func() map[string]eventsv1.Event {
			l := &eventsv1.EventList{}
			Expect(k8sClient.List(ctx, l, client.InNamespace(ns))).To(Succeed())
			m := map[string]eventsv1.Event{}
			for _, e := range l.Items {
				m[e.Reason] = e
			}
			return m
		}
		Eventually(func() int32 {
			if s := byReason()["RefreshFailed"].Series; s != nil {
				return s.Count
			}
			return 0
		}).Should(Equal(int32(2)), "the repeat counted on the first RefreshFailed")
		got := byReason()
		Expect(got).To(HaveLen(2))
		issued := got["TokenIssued"]
		Expect(issued.Note).To(Equal("access token issued, valid until 2026-12-06T02:00:00Z"))
		Expect(issued.Regarding.Kind).To(Equal("Secret"))
		Expect(issued.Regarding.Name).To(Equal("shop-token"))
		Expect(issued.Regarding.UID).To(Equal(token.UID))
		Expect(issued.ReportingController).To(Equal("wechat-operator"))
		Expect(issued.Series).To(BeNil())

		By("showing them as core/v1 Events too, as kubectl describe reads them")
		core := &corev1.EventList{}
		Expect(k8sClient.List(ctx, core, client.InNamespace(ns))).To(Succeed())
		Expect(core.Items).To(HaveLen(2))
		for _, e := range core.Items {
			Expect(e.InvolvedObject.Name).To(Equal("shop-token"))
		}

		stop()
		Eventually(stopped).Should(Receive(BeNil()))
	})
})
