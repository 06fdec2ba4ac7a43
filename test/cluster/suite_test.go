//go:build cluster

/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package cluster

import (
	"context"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wechat-operator/wechat-operator/test/harness"
)

// What config/local and test/cluster/testdata deploy.
const (
	operatorNS       = harness.OperatorNamespace
	managerDeploy    = "wechat-operator-manager"
	receiverDeploy   = "wechat-operator-webhook-receiver"
	leaseName        = "wechat-operator-manager"
	simURL           = "http://198.18.0.100:8090"
	appsNS           = "default"
	componentName    = "demo-platform"
	componentAppID   = "wxd0c8a7b6e5f4a3b2"
	authorizerName   = "demo-platform-wx1a2b3c4d5e6f7a8b"
	authorizerAppID  = "wx1a2b3c4d5e6f7a8b"
	componentSecret  = "demo-platform-component-token"
	authorizerSecret = "demo-platform-wx1a2b3c4d5e6f7a8b-token"
	consumerDeploy   = "wechat-token-consumer"
	// containerd's state directory on the node (hack/cluster.sh).
	containerdState = "/run/wechat-cluster/containerd"
	// Refresh cycles the consumer must live through (issue 20: at least 3).
	refreshCycles = 3
)

var (
	suiteCtx   context.Context
	repoRoot   string
	kubeconfig string
	restConfig *rest.Config
	clientset  *kubernetes.Clientset
	k8s        client.Client
	wechat     = sim{base: simURL}
)

func TestMain(m *testing.M) {
	kubeconfig, repoRoot = os.Getenv("CLUSTER_KUBECONFIG"), os.Getenv("CLUSTER_ROOT")
	if kubeconfig == "" || repoRoot == "" {
		// Not skipped silently: this suite only makes sense on the cluster of make test-cluster.
		os.Stderr.WriteString("test/cluster runs on the local cluster: use `make test-cluster` (CLUSTER_KUBECONFIG and CLUSTER_ROOT are unset)\n")
		os.Exit(2)
	}
	var err error
	if restConfig, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
		panic(err)
	}
	clientset = kubernetes.NewForConfigOrDie(restConfig)
	if k8s, err = client.New(restConfig, client.Options{Scheme: harness.NewScheme()}); err != nil {
		panic(err)
	}
	var cancel context.CancelFunc
	suiteCtx, cancel = context.WithCancel(context.Background())
	code := m.Run()
	cancel()
	os.Exit(code)
}

// TestCluster runs the checks in the order a user meets them; each step needs the
// ones before it, so the first failure stops the suite.
func TestCluster(t *testing.T) {
	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"1 both Deployments Available with 2 replicas, as 65532 under enforced restricted PSA, probes passing", testDeployments},
		{"5 the manager sets its soft memory limit from its pod's cgroup", testMemoryLimit},
		{"2 tickets pushed through the receiver Service land in status and tokens are issued", testTicketsAndTokens},
		{"6 undeploy and deploy keep resources and Secrets, and make no WeChat call for tokens not due", testRedeploy},
		{"3+4 a consumer pod uses the mounted tokens over refresh cycles, through leader and receiver pod loss", testConsumerOverRefreshes},
		{"helm (issue 18): undeploy, helm install works like make deploy, helm upgrade applies a value, helm uninstall keeps CRDs and Secrets", testHelm},
	}
	startWatch(t)
	for _, s := range steps {
		start := time.Now()
		ok := t.Run(s.name, s.run)
		t.Logf("step %q took %s", s.name, time.Since(start).Round(time.Second))
		if !ok {
			t.FailNow()
		}
	}
}
