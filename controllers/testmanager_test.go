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
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// newNamespaceManager is a real manager, without metrics or leader election, whose cache sees
// ns only: other specs' objects live in the same API server. Each registers controllers of
// the names the others do. logger may be the zero Logger (controller-runtime's then).
func newNamespaceManager(ns string, logger logr.Logger) ctrl.Manager {
	cacheOptions := CacheOptions("", nil)
	cacheOptions.DefaultNamespaces = map[string]cache.Config{ns: {}}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme, Cache: cacheOptions, Metrics: metricsserver.Options{BindAddress: "0"}, Logger: logger,
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	return mgr
}

// runManager starts mgr; it runs until the returned function is called, which returns once
// mgr has stopped (a manager left running holds watches the suite's API server then waits
// for when it stops).
func runManager(mgr ctrl.Manager) context.CancelFunc {
	mctx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(stopped)
		Expect(mgr.Start(mctx)).To(Succeed())
	}()
	return func() {
		stop()
		Eventually(stopped).Should(BeClosed())
	}
}
