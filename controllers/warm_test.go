/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/wechat-operator/wechat-operator/internal/refresh"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var _ = Describe("a standby manager (another replica holds the Lease)", func() {
	It("lists every kind its controllers watch before it is elected, so a restart lists them side by side", func() {
		ns := newNamespace()
		const leaseName = "wechat-operator-manager"
		Expect(k8sClient.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: leaseName},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("the-leader"), LeaseDurationSeconds: ptr.To[int32](3600),
				AcquireTime: &metav1.MicroTime{Time: time.Now()}, RenewTime: &metav1.MicroTime{Time: time.Now()}},
		})).To(Succeed())

		// The collection requests the manager makes: its informers' lists and watches.
		var mu sync.Mutex
		collections := map[string]bool{}
		standby := rest.CopyConfig(cfg)
		standby.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				prefix, resource, found := strings.Cut(r.URL.Path, "/namespaces/"+ns+"/")
				if found && r.Method == http.MethodGet && !strings.Contains(resource, "/") && prefix != "" {
					mu.Lock()
					collections[resource] = true
					mu.Unlock()
				}
				return rt.RoundTrip(r)
			})
		})
		mgr, err := ctrl.NewManager(standby, ctrl.Options{
			Scheme: scheme, Cache: CacheOptions(ns, []string{ns}), Metrics: metricsserver.Options{BindAddress: "0"},
			LeaderElection: true, LeaderElectionNamespace: ns, LeaderElectionID: leaseName,
			Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		})
		Expect(err).NotTo(HaveOccurred())
		var reconciles atomic.Int32
		counting := reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
			reconciles.Add(1)
			return reconcile.Result{}, nil
		})
		Expect(setupComponentController(mgr, counting, 1)).To(Succeed())
		Expect(setupAuthorizerController(ctx, mgr, counting, newDueFirst(clock.RealClock{}, refresh.MinMargin), 1)).To(Succeed())
		// An object of each kind, so a reconcile would have something to do if one ran.
		w := &world{ns: ns, key: client.ObjectKey{Namespace: ns, Name: "platform"}}
		w.createComponent()
		defer runManager(mgr)()

		Eventually(func() map[string]bool {
			mu.Lock()
			defer mu.Unlock()
			return maps.Clone(collections)
		}).Should(And(HaveKey("secrets"), HaveKey("wechatcomponents"), HaveKey("wechatauthorizers")))
		Expect(mgr.Elected()).NotTo(BeClosed(), "the other replica holds the Lease")
		Expect(reconciles.Load()).To(BeZero(), "a standby does not reconcile")
		lease := &coordinationv1.Lease{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, lease)).To(Succeed())
		Expect(lease.Spec.HolderIdentity).To(HaveValue(Equal("the-leader")))
	})
})
