/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package bench measures the push path end to end against a real kube-apiserver + etcd:
// receiver over HTTP, manager with its informer cache, and the WeChat simulator.
// Run it with `make bench-push`; `go test ./...` compiles it and skips the control plane.
package bench

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

var (
	cfg       *rest.Config
	k8sClient client.Client
	scheme    = runtime.NewScheme()
)

func TestMain(m *testing.M) {
	flag.Parse()
	// Only benchmarks need the control plane; a plain `go test ./...` passes through.
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run `make bench-push`")
		os.Exit(2)
	}
	must(clientgoscheme.AddToScheme(scheme))
	must(wechatv1alpha1.AddToScheme(scheme))
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	cfg, err = env.Start()
	must(err)
	// The default client-side rate limit (QPS 5) would measure client-go, not the system.
	cfg.QPS, cfg.Burst = 1000, 2000
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	must(err)
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
