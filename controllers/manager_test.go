/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

// countingReconciler counts finished reconciles of one object, so a test knows the
// manager has looked at it without waiting a fixed time.
type countingReconciler struct {
	inner reconcile.Reconciler
	key   types.NamespacedName
	done  atomic.Int32
}

func (c *countingReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	result, err := c.inner.Reconcile(ctx, req)
	if req.NamespacedName == c.key {
		c.done.Add(1)
	}
	return result, err
}

var _ = Describe("the manager wiring (real manager, real clock, informer cache)", func() {
	It("wakes on a ticket push, and makes no WeChat call after a restart with a fresh token", func() {
		ns := newNamespace()
		key := types.NamespacedName{Namespace: ns, Name: "platform"}
		recv := receiver.New(receiver.Options{
			Reader: k8sClient, Client: k8sClient,
			Keyring: types.NamespacedName{Namespace: ns, Name: testKeyringName},
			Metrics: receiver.NewMetrics(prometheus.NewRegistry()),
		})
		recvServer := httptest.NewServer(recv.Handler())
		defer recvServer.Close()
		sim := wxsim.MustNew(wxsim.Options{
			Components: []wxsim.ComponentSeed{{
				AppID: testComponentAppID, AppSecret: testAppSecret, Token: testVerifyToken, EncodingAESKey: testEncodingAESKey,
				ReceiverURL: fmt.Sprintf("%s/wechat/%s/platform/events", recvServer.URL, ns),
			}},
			PushRetries: -1,
		})
		defer sim.Close()
		simServer := httptest.NewServer(sim)
		defer simServer.Close()

		startManager := func() (*countingReconciler, context.CancelFunc) {
			mgr := newNamespaceManager(ns, logr.Logger{})
			counting := &countingReconciler{key: key, inner: &WeChatComponentReconciler{
				Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: scheme,
				Recorder: events.NewFakeRecorder(100),
				WeChat:   wxapi.New(wxapi.Options{BaseURL: simServer.URL, RateLimit: rate.Inf, Metrics: wxapi.NewMetrics()}),
				Clock:    clock.RealClock{}, Random: func() float64 { return 0.5 },
				KeyringNamespace: ns, KeyringName: testKeyringName,
			}}
			Expect(setupComponentController(mgr, counting, 2)).To(Succeed())
			return counting, runManager(mgr)
		}

		first, stop := startManager()
		w := &world{ns: ns, key: key}
		w.createComponent()

		By("projecting the keys, so the receiver can verify the first push")
		Eventually(func() map[string][]byte {
			s := &corev1.Secret{}
			_ = k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: testKeyringName}, s)
			return s.Data
		}).Should(And(HaveKey(keyring.TokenKey(ns, "platform")), HaveKey(keyring.AESKeyKey(ns, "platform"))))

		By("waking on the receiver's status patch and issuing a token")
		_, err := sim.PushTicket(ctx, testComponentAppID)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() string {
			s := w.tokenSecret()
			if s == nil {
				return ""
			}
			return string(s.Data[wechatv1alpha1.SecretKeyAccessToken])
		}).ShouldNot(BeEmpty())
		Eventually(func() *wechatv1alpha1.WeChatComponentStatus { return &w.component().Status }).
			Should(HaveField("ExpiresAt", Not(BeNil())))
		Expect(first.done.Load()).To(BeNumerically(">=", 2))
		calls := sim.Calls(wxapi.APIComponentToken, testComponentAppID)
		Expect(calls).To(Equal(1))

		By("exporting the token expiry at scrape time")
		reg := prometheus.NewRegistry()
		reg.MustRegister(&TokenExpiryCollector{Reader: k8sClient})
		families, err := reg.Gather()
		Expect(err).NotTo(HaveOccurred())
		var exported []float64
		for _, f := range families {
			for _, m := range f.GetMetric() {
				if f.GetName() == "wechat_token_expiration_timestamp_seconds" && labelValue(m, "namespace") == ns {
					exported = append(exported, m.GetGauge().GetValue())
				}
			}
		}
		Expect(exported).To(Equal([]float64{float64(w.component().Status.ExpiresAt.Unix())}))

		By("restarting: the new manager reconciles but calls nothing")
		stop()
		second, stopSecond := startManager()
		defer stopSecond()
		Eventually(second.done.Load).Should(BeNumerically(">=", 1))
		Expect(sim.Calls(wxapi.APIComponentToken, testComponentAppID)).To(Equal(calls))
		// The test pushed a ticket itself, maybe before the manager asked for one.
		Expect(sim.Calls(wxapi.APIStartPushTicket, testComponentAppID)).To(BeNumerically("<=", 1), "only before the first ticket")
	})
})

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
