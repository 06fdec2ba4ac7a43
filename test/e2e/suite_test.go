/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package e2e tests the deployment in config/default against a real kube-apiserver + etcd
// (built by hack/setup-envtest.sh, found through KUBEBUILDER_ASSETS): the manifests apply,
// the pods pass the "restricted" Pod Security Standard, and the RBAC grants each
// ServiceAccount what the design says and nothing more, as the API server's own authorizer
// decides it (SubjectAccessReviews and SelfSubjectRulesReviews under impersonation).
package e2e

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/test/kustomize"
)

// What config/default is expected to produce.
const (
	operatorNamespace  = "wechat-operator-system"
	managerSA          = "wechat-operator-manager"
	receiverSA         = "wechat-operator-webhook-receiver"
	managerDeployment  = "wechat-operator-manager"
	receiverDeployment = "wechat-operator-webhook-receiver"
)

var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	scheme    = runtime.NewScheme()
	ctx       context.Context
	cancel    context.CancelFunc

	// rendered is `kubectl kustomize config/default`, applied to the API server in BeforeSuite.
	rendered []*unstructured.Unstructured
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Deployment and RBAC Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())

	Expect(os.Getenv("KUBEBUILDER_ASSETS")).NotTo(BeEmpty(),
		"KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds the control plane")
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(wechatv1alpha1.AddToScheme(scheme)).To(Succeed())

	// kubectl reads config/ in a subprocess, which Go's test cache does not see; reading
	// every file here makes a change to any of them rerun this suite.
	Expect(filepath.WalkDir(filepath.Join("..", "..", "config"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		_, err = os.ReadFile(path)
		return err
	})).To(Succeed())
	var err error
	rendered, err = kustomize.Render(filepath.Join("..", "..", "config", "default"))
	Expect(err).NotTo(HaveOccurred())
	Expect(rendered).NotTo(BeEmpty())

	// The CRDs come from config/default like everything else (applied below), not from envtest.
	testEnv = &envtest.Environment{}
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// Server-side apply, as `make deploy` does: the API server rejects fields its schema does not know.
	By("applying config/default")
	for _, obj := range rendered {
		Expect(k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()),
			client.FieldOwner("e2e"), client.ForceOwnership)).
			To(Succeed(), "applying %s %s", obj.GetKind(), obj.GetName())
	}
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})
