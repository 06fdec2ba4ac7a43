//go:build cluster

/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package cluster

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

const (
	helmRelease = "wechat-operator"
	helmChart   = "charts/wechat-operator"
	// config/local's settings as chart values (image, simulator URL, compressed refresh margin,
	// the receiver's fixed ClusterIP the simulator pushes to).
	helmValues = "test/cluster/testdata/helm-values.yaml"
)

// helm runs the Helm CLI that hack/cluster-test.sh built (bin/helm, `make helm`) against the
// local cluster, from the repository root.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(repoRoot, "bin", "helm")
	}
	home := t.TempDir()
	os.Setenv("HELM_CACHE_HOME", filepath.Join(home, "cache"))
	os.Setenv("HELM_CONFIG_HOME", filepath.Join(home, "config"))
	os.Setenv("HELM_DATA_HOME", filepath.Join(home, "data"))
	return run(t, bin, append([]string{"--kubeconfig", kubeconfig, "--namespace", operatorNS}, args...)...)
}

// testHelm: issue 18. The kustomize deployment goes (make undeploy), the chart installs the
// same operator (the checks of step 1), which takes pushes and refreshes tokens again; a
// changed value reaches the cluster with helm upgrade; helm uninstall removes the operator
// and leaves the CRDs, the custom resources and their Secrets.
func testHelm(t *testing.T) {
	run(t, "make", "--no-print-directory", "undeploy", "DEPLOY_TARGET=local")
	waitFor(t, "namespace "+operatorNS+" deleted by make undeploy", 3*time.Minute, func() (bool, string) {
		_, err := clientset.CoreV1().Namespaces().Get(suiteCtx, operatorNS, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("%v", err)
	})
	before := snapshot(t)

	// docs/install.md: the namespace with its Pod Security labels first. The manager's egress to
	// the simulator is this environment's, as in config/local.
	kubectl(t, "apply", "--server-side", "-f", helmChart+"/namespace.yaml", "-f", "config/local/network_policy.yaml")
	installed := time.Now()
	helm(t, "install", helmRelease, helmChart, "--values", helmValues)
	testDeployments(t)
	if t.Failed() {
		return
	}
	for _, d := range []string{managerDeploy, receiverDeploy} {
		dep, err := clientset.AppsV1().Deployments(operatorNS).Get(suiteCtx, d, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if dep.Labels["app.kubernetes.io/managed-by"] != "Helm" || dep.Annotations["meta.helm.sh/release-name"] != helmRelease {
			t.Fatalf("Deployment %s is not the Helm release's: labels %v annotations %v", d, dep.Labels, dep.Annotations)
		}
	}

	// The receiver of the chart takes a push; the manager of the chart refreshes both tokens
	// when they are due (within the compressed lifetime), and WeChat accepts the new ones.
	pushedAt := time.Now()
	waitFor(t, "a ticket push accepted by the Helm-installed receiver", 2*time.Minute, func() (bool, string) {
		return wechat.pushTicket(suiteCtx, componentAppID)
	})
	waitFor(t, "the pushed ticket in WeChatComponent status", time.Minute, func() (bool, string) {
		var comp wechatv1alpha1.WeChatComponent
		if err := k8s.Get(suiteCtx, types.NamespacedName{Namespace: appsNS, Name: componentName}, &comp); err != nil {
			return false, err.Error()
		}
		vt := comp.Status.VerifyTicket
		return vt != nil && !vt.ReceivedAt.Time.Before(pushedAt.Truncate(time.Second)), fmt.Sprintf("%+v", vt)
	})
	for _, s := range []string{componentSecret, authorizerSecret} {
		waitFor(t, "a token issued by the Helm-installed manager in Secret "+s+" that WeChat accepts", 5*time.Minute, func() (bool, string) {
			for _, v := range watch.ValuesSince(s, installed) {
				if v.Verified && v.Answer.OK() {
					return true, ""
				}
			}
			return false, fmt.Sprintf("values since the install: %d", len(watch.ValuesSince(s, installed)))
		})
	}

	// helm upgrade: a changed value (one manager replica) takes effect; the leader stays.
	helm(t, "upgrade", helmRelease, helmChart, "--values", helmValues, "--set", "manager.replicas=1")
	waitFor(t, "the manager Deployment at 1 replica after helm upgrade", 3*time.Minute, func() (bool, string) {
		return deploymentReady(suiteCtx, operatorNS, managerDeploy, 1)
	})
	waitFor(t, "a manager pod holding the leader Lease after the upgrade", 2*time.Minute, func() (bool, string) {
		holder, _ := leaseHolder(t) // <pod>_<uuid>
		pods := podsOf(t, operatorNS, managerDeploy)
		pod, _, _ := strings.Cut(holder, "_")
		return len(pods) == 1 && pod == pods[0].Name, fmt.Sprintf("holder %q, %d pods", holder, len(pods))
	})
	if got := helm(t, "get", "values", helmRelease, "--output", "json"); !strings.Contains(got, `"replicas":1`) {
		t.Fatalf("helm get values after the upgrade: %s", got)
	}

	// helm uninstall: the operator goes; the CRDs (crds/ is never deleted by Helm), the custom
	// resources and their Secrets stay, with their UIDs.
	helm(t, "uninstall", helmRelease, "--wait")
	waitFor(t, "the operator's Deployments gone after helm uninstall", 3*time.Minute, func() (bool, string) {
		list, err := clientset.AppsV1().Deployments(operatorNS).List(suiteCtx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(list.Items) == 0, fmt.Sprintf("%d Deployments", len(list.Items))
	})
	for _, crd := range []string{"wechatcomponents.platform.wechat-operator.dev", "wechatauthorizers.platform.wechat-operator.dev"} {
		kubectl(t, "get", "crd", crd)
	}
	after := snapshot(t)
	if !maps.Equal(before.uids, after.uids) {
		t.Fatalf("custom resources or Secrets were recreated or lost across helm install/upgrade/uninstall: before %v, after %v", before.uids, after.uids)
	}
	t.Logf("helm install, upgrade (manager.replicas=1) and uninstall: the CRs and Secrets kept their UIDs %v", after.uids)
}
