/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// orderRecorder records the order in which the controller hands out its requests.
type orderRecorder struct {
	mu    sync.Mutex
	names []string
}

func (o *orderRecorder) Reconcile(_ context.Context, req reconcile.Request) (reconcile.Result, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.names = append(o.names, req.Name)
	return reconcile.Result{}, nil
}

func (o *orderRecorder) order() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.names...)
}

var _ = Describe("a manager starting on existing authorizers (real manager, informer cache, priority queue)", func() {
	It("hands out an authorizer whose refresh is due before the initial list's backlog", func() {
		ns := newNamespace()
		now := time.Now()
		create := func(name string, refreshAt time.Time) {
			a := &wechatv1alpha1.WeChatAuthorizer{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: wechatv1alpha1.WeChatAuthorizerSpec{
					ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: "wx00000000000000a1",
				},
			}
			Expect(k8sClient.Create(ctx, a)).To(Succeed())
			a.Status.RefreshAt = &metav1.Time{Time: refreshAt}
			a.Status.ExpiresAt = &metav1.Time{Time: refreshAt.Add(time.Hour)}
			Expect(k8sClient.Status().Update(ctx, a)).To(Succeed())
		}
		// The API server lists by name: the due one comes last in the initial list.
		const backlog = 30
		for i := range backlog {
			create(fmt.Sprintf("account-%02d", i), now.Add(time.Hour))
		}
		create("zz-due", now.Add(-time.Minute))

		mgr := newNamespaceManager(ns, logr.Logger{})
		recorder := &orderRecorder{}
		due := newDueFirst(clock.RealClock{}, 10*time.Minute)
		Expect(setupAuthorizerController(ctx, mgr, recorder, due, 1)).To(Succeed())
		defer runManager(mgr)()

		Eventually(recorder.order).Should(HaveLen(backlog + 1))
		Expect(recorder.order()[0]).To(Equal("zz-due"), "one worker took %v", recorder.order())
	})
})
