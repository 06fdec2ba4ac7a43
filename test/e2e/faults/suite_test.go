/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package faults is the fault matrix (docs/faults.md): the operator as real processes — etcd
// and kube-apiserver, wechat-sim, managers and webhook receivers, each authenticating as its
// ServiceAccount — is put through WeChat's errcode bursts, WeChat unreachable or slow, an API
// server restart, a manager killed between WeChat's answer and the Secret write, a leader
// killed, racing receivers and a flood of forged pushes. Every scenario asserts that no
// expired token was served, no refresh token was lost, the conditions said what was wrong
// while it lasted, and everything recovered without a human.
package faults

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/wechat-operator/wechat-operator/test/harness"
)

var (
	ctx    context.Context
	cancel context.CancelFunc
	root   string
	work   string
	bins   harness.Binaries
	cp     *harness.ControlPlane
	k8s    client.Client
)

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyPollingInterval(250 * time.Millisecond)
	SetDefaultConsistentlyPollingInterval(250 * time.Millisecond)
	RunSpecs(t, "Fault matrix Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	Expect(os.Getenv("KUBEBUILDER_ASSETS")).NotTo(BeEmpty(),
		"KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds the control plane, "+
			"or export KUBEBUILDER_ASSETS=$PWD/bin/k8s/<version>")
	var err error
	root, err = filepath.Abs(filepath.Join("..", "..", ".."))
	Expect(err).NotTo(HaveOccurred())
	readSources(root)

	work, err = os.MkdirTemp("", "wechat-faults-")
	Expect(err).NotTo(HaveOccurred())
	By("building manager, webhook-receiver and wechat-sim")
	bins, err = harness.Build(ctx, root, filepath.Join(work, "bin"))
	Expect(err).NotTo(HaveOccurred())

	By("starting etcd and kube-apiserver with the CRDs and the operator's RBAC")
	cp, err = harness.StartControlPlane(ctx, harness.ControlPlaneOptions{Root: root, Dir: filepath.Join(work, "cp"),
		// On SIGTERM kube-apiserver waits up to --request-timeout (1m) for open connections —
		// the watches of the manager and the receiver — to end; envtest gives it 30 s, then
		// kills it, reports an error, and would not start it again. 10 s keeps the API server
		// restart scenario inside that.
		APIServerArgs: map[string]string{"request-timeout": "10s"}})
	Expect(err).NotTo(HaveOccurred())
	k8s = cp.Client
})

// failed remembers a failed spec: the logs are kept then.
var failed bool

var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() {
		failed = true
	}
})

var _ = AfterSuite(func() {
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
	if cancel != nil {
		cancel()
	}
	if work != "" {
		if failed || os.Getenv("FAULTS_KEEP") != "" {
			GinkgoWriter.Printf("logs kept in %s\n", work)
		} else {
			_ = os.RemoveAll(work)
		}
	}
})

// readSources reads every source file of the programs the suite builds and runs: Go's test
// cache sees files a test opens, so a change to any of them reruns this suite (it imports
// none of them: they run as processes).
func readSources(root string) {
	for _, dir := range []string{"api", "cmd", "config", "controllers", "internal", "webhook-receiver"} {
		Expect(filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") {
				return err
			}
			if ext := filepath.Ext(path); ext != ".go" && ext != ".yaml" {
				return nil
			}
			_, err = os.ReadFile(path)
			return err
		})).To(Succeed())
	}
}
