/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package chart

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/wechat-operator/wechat-operator/test/harness"
	"github.com/wechat-operator/wechat-operator/test/kustomize"
)

// helm install, upgrade and uninstall against a real API server (envtest: no nodes, so no
// pods; test/cluster runs the chart's pods on a real node). The API server validates what the
// chart renders (the admission policy's CEL, the Ingress, the RBAC), the values change the
// objects as the upgrade says, and uninstall leaves the CRDs, the resources and their Secrets.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	ctx := context.Background()
	env := &envtest.Environment{}
	if _, err := env.Start(); err != nil {
		t.Fatalf("starting the control plane (KUBEBUILDER_ASSETS, make envtest): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg, err := harness.WriteKubeconfig(env, envtest.User{Name: "chart-admin", Groups: []string{"system:masters"}}, kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: harness.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(objs []*unstructured.Unstructured, ns string) {
		t.Helper()
		for _, o := range objs {
			if ns != "" {
				o.SetNamespace(ns)
			}
			if err := c.Patch(ctx, o, client.Apply, //nolint:staticcheck // unstructured objects rendered by helm; the typed Apply needs apply configurations
				client.FieldOwner("chart-test"), client.ForceOwnership); err != nil {
				t.Fatalf("applying %s: %v", key(o), err)
			}
		}
	}
	// docs/install.md: the namespace first; "apps" is where the resources live.
	nsData, err := os.ReadFile(filepath.Join(chartDir, "namespace.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	nsObjs, err := kustomize.Decode(nsData)
	if err != nil {
		t.Fatal(err)
	}
	apps := &unstructured.Unstructured{}
	apps.SetAPIVersion("v1")
	apps.SetKind("Namespace")
	apps.SetName("apps")
	apply(append(nsObjs, apps), "")

	abs, err := filepath.Abs(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	h := func(args ...string) []byte {
		t.Helper()
		out, err := helm(t, append([]string{"--kubeconfig", kubeconfig, "--namespace", operatorNS}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	h("install", "wechat-operator", abs, "--set", "ingress.enabled=true", "--set", "watchNamespaces={apps}")

	get := func(kind, apiVersion, ns, name string) (*unstructured.Unstructured, error) {
		o := &unstructured.Unstructured{}
		o.SetAPIVersion(apiVersion)
		o.SetKind(kind)
		return o, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, o)
	}
	mustGet := func(kind, apiVersion, ns, name string) *unstructured.Unstructured {
		t.Helper()
		o, err := get(kind, apiVersion, ns, name)
		if err != nil {
			t.Fatalf("%s %s/%s: %v", kind, ns, name, err)
		}
		return o
	}
	gone := func(kind, apiVersion, ns, name string) bool {
		_, err := get(kind, apiVersion, ns, name)
		return apierrors.IsNotFound(err)
	}
	crds := []string{"wechatcomponents.platform.wechat-operator.dev", "wechatauthorizers.platform.wechat-operator.dev"}
	for _, crd := range crds {
		mustGet("CustomResourceDefinition", "apiextensions.k8s.io/v1", "", crd)
	}
	mustGet("RoleBinding", "rbac.authorization.k8s.io/v1", "apps", "wechat-operator-manager")
	mustGet("ValidatingAdmissionPolicy", "admissionregistration.k8s.io/v1", "", "wechat-operator-receiver-status-fields")
	mustGet("Ingress", "networking.k8s.io/v1", operatorNS, "wechat-operator-webhook-receiver")
	if !gone("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "", "wechat-operator-manager-rolebinding") {
		t.Fatal("the cluster-wide manager binding exists although watchNamespaces is set")
	}

	// config/samples in "apps": the credentials Secret, a component and an authorizer.
	samples, err := kustomize.Render(filepath.Join(root, "config", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	samples = kustomize.OfKind(samples, "Secret", "WeChatComponent", "WeChatAuthorizer")
	apply(samples, "apps")
	uids := map[string]types.UID{}
	for _, s := range samples {
		uids[key(s)] = mustGet(s.GetKind(), s.GetAPIVersion(), "apps", s.GetName()).GetUID()
	}

	// helm upgrade: one manager replica, all namespaces (the cluster-wide binding instead of
	// the RoleBindings), no Ingress.
	h("upgrade", "wechat-operator", abs, "--reuse-values", "--set", "manager.replicas=1", "--set", "watchNamespaces={}", "--set", "ingress.enabled=false")
	dep := mustGet("Deployment", "apps/v1", operatorNS, "wechat-operator-manager")
	if r, _, _ := unstructured.NestedFieldNoCopy(dep.Object, "spec", "replicas"); r != int64(1) {
		t.Errorf("manager replicas after the upgrade: %v (%T), want 1", r, r)
	}
	ctrs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	for _, a := range ctrs[0].(map[string]any)["args"].([]any) {
		if s := a.(string); len(s) > 19 && s[:19] == "--watch-namespaces=" {
			t.Errorf("the manager still runs with %s after watchNamespaces={}", s)
		}
	}
	mustGet("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "", "wechat-operator-manager-rolebinding")
	if !gone("RoleBinding", "rbac.authorization.k8s.io/v1", "apps", "wechat-operator-manager") || !gone("Ingress", "networking.k8s.io/v1", operatorNS, "wechat-operator-webhook-receiver") {
		t.Error("the upgrade left the RoleBinding in apps or the Ingress")
	}
	var status []map[string]any
	if err := json.Unmarshal(h("list", "--output", "json"), &status); err != nil || len(status) != 1 || status[0]["revision"] != "2" || status[0]["status"] != "deployed" {
		t.Errorf("helm list after the upgrade: %v %v", status, err)
	}

	// helm uninstall: the release's objects go; the CRDs, the resources and Secrets stay.
	h("uninstall", "wechat-operator")
	for _, o := range [][3]string{
		{"Deployment", "apps/v1", "wechat-operator-manager"},
		{"Deployment", "apps/v1", "wechat-operator-webhook-receiver"},
		{"ServiceAccount", "v1", "wechat-operator-manager"},
		{"ClusterRole", "rbac.authorization.k8s.io/v1", "wechat-operator-manager-role"},
		{"ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "wechat-operator-manager-rolebinding"},
		{"ValidatingAdmissionPolicy", "admissionregistration.k8s.io/v1", "wechat-operator-receiver-status-fields"},
		{"NetworkPolicy", "networking.k8s.io/v1", "wechat-operator-default-deny"},
	} {
		ns := operatorNS
		if slices.Contains(clusterScoped, o[0]) {
			ns = ""
		}
		if !gone(o[0], o[1], ns, o[2]) {
			t.Errorf("%s %s is still there after helm uninstall", o[0], o[2])
		}
	}
	for _, crd := range crds {
		mustGet("CustomResourceDefinition", "apiextensions.k8s.io/v1", "", crd)
	}
	for _, s := range samples {
		if got := mustGet(s.GetKind(), s.GetAPIVersion(), "apps", s.GetName()).GetUID(); got != uids[key(s)] {
			t.Errorf("%s was recreated across upgrade and uninstall", key(s))
		}
	}
	mustGet("Namespace", "v1", "", operatorNS)
}
