/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// gatherStatusSeries scrapes a TokenExpiryCollector reading through r.
func gatherStatusSeries(r client.Reader) []*dto.MetricFamily {
	GinkgoHelper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(&TokenExpiryCollector{Reader: r})
	families, err := reg.Gather()
	Expect(err).NotTo(HaveOccurred())
	return families
}

// seriesOf gathers the collector's series of namespace ns read through r, as "metric labels" → value.
func seriesOf(r client.Reader, ns string) map[string]float64 {
	GinkgoHelper()
	out := map[string]float64{}
	for _, f := range gatherStatusSeries(r) {
		for _, m := range f.GetMetric() {
			if labelValue(m, "namespace") != ns {
				continue
			}
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

var _ = Describe("the status series read from the manager's cache (real API server)", func() {
	It("are the series a list of the same objects gives", func() {
		ns := newNamespace()
		expires := metav1.NewTime(time.Now().Add(time.Hour).Truncate(time.Second))
		c := &wechatv1alpha1.WeChatComponent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "platform"},
			Spec: wechatv1alpha1.WeChatComponentSpec{AppID: testComponentAppID,
				CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: "creds"}}}
		Expect(k8sClient.Create(ctx, c)).To(Succeed())
		c.Status.ExpiresAt = &expires
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		c.Status.VerifyTicket = &wechatv1alpha1.VerifyTicket{Ticket: "t", CreateTime: now, ReceivedAt: now}
		Expect(k8sClient.Status().Update(ctx, c)).To(Succeed())
		for _, name := range []string{"a", "b"} {
			a := &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: wechatv1alpha1.WeChatAuthorizerSpec{ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: "wx00000000b000000" + name}}
			Expect(k8sClient.Create(ctx, a)).To(Succeed())
			a.Status.ExpiresAt = &expires
			a.Status.FailedAttempts, a.Status.LastFailureReason = 2, wechatv1alpha1.ReasonWeChatBusy
			Expect(k8sClient.Status().Update(ctx, a)).To(Succeed())
		}
		listed := seriesOf(k8sClient, ns)
		Expect(listed).To(HaveLen(6), "a token expiry and a ticket for the component, an expiry and failures for each authorizer: %v", listed)

		informers, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: compactCached})
		Expect(err).NotTo(HaveOccurred())
		cacheCtx, stop := context.WithCancel(ctx)
		defer stop()
		go func() { _ = informers.Start(cacheCtx) }()
		Eventually(func() map[string]float64 { return seriesOf(informers, ns) }).Should(Equal(listed))
	})
})
