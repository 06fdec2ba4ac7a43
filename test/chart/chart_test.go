/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package chart tests the Helm chart charts/wechat-operator: that it is what
// hack/tools/helm/chartgen makes of config/ today, that `helm lint` passes, and that
// `helm template` renders the same objects as `kubectl kustomize` for the same settings
// (RBAC above all), and what each non-default value changes.
//
// Helm runs as `go tool helm` of the separate module hack/tools/helm (its dependencies would
// raise the operator's own; see that go.mod).
package chart

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/wechat-operator/wechat-operator/test/kustomize"
)

var (
	root     = filepath.Join("..", "..")
	chartDir = filepath.Join(root, "charts", "wechat-operator")
)

// The labels Helm's templates add to what kustomize renders.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance"}

const operatorNS = "wechat-operator-system"

// helm runs the Helm CLI of hack/tools/helm with its state in a temporary directory.
func helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command("go", append([]string{"-C", filepath.Join(abs, "hack", "tools", "helm"), "tool", "helm"}, args...)...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// template renders the chart into namespace ns with the values in vals (written as a file).
func template(t *testing.T, ns string, vals map[string]any, extra ...string) []*unstructured.Unstructured {
	t.Helper()
	abs, err := filepath.Abs(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"template", "wechat-operator", abs, "--namespace", ns}
	if vals != nil {
		args = append(args, "--values", valuesFile(t, vals))
	}
	out, err := helm(t, append(args, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kustomize.Decode(out)
	if err != nil {
		t.Fatalf("decoding helm template's output: %v\n%s", err, out)
	}
	return objs
}

func valuesFile(t *testing.T, vals map[string]any) string {
	t.Helper()
	data, err := json.Marshal(vals) // JSON is YAML
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := kustomize.Render(filepath.Join(root, "config", dir))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// clusterScoped are the kinds whose metadata.namespace the API server ignores. kustomize
// versions differ in whether they set one on a ValidatingAdmissionPolicy (kubectl's older
// kustomize does, the chart generator's newer one does not), so it is dropped before comparing.
var clusterScoped = []string{"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
	"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}

func key(o *unstructured.Unstructured) string {
	if slices.Contains(clusterScoped, o.GetKind()) && o.GetNamespace() != "" {
		o = o.DeepCopy()
		o.SetNamespace("")
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// withoutHelmLabels drops the labels Helm adds, after checking that Helm added them.
func withoutHelmLabels(t *testing.T, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		o = o.DeepCopy()
		if slices.Contains(clusterScoped, o.GetKind()) {
			o.SetNamespace("")
		}
		labels := o.GetLabels()
		if o.GetKind() != "CustomResourceDefinition" {
			if labels["app.kubernetes.io/managed-by"] != "Helm" || labels["app.kubernetes.io/instance"] != "wechat-operator" {
				t.Errorf("%s: labels %v lack Helm's managed-by and instance", key(o), labels)
			}
			for _, l := range helmLabels {
				delete(labels, l)
			}
			if len(labels) == 0 {
				unstructured.RemoveNestedField(o.Object, "metadata", "labels")
			} else {
				o.SetLabels(labels)
			}
		}
		if _, dup := out[key(o)]; dup {
			t.Errorf("helm template renders %s twice", key(o))
		}
		out[key(o)] = o
	}
	return out
}

// sameObjects: kustomize's objects (but the kinds skipped) and Helm's are the same objects,
// field for field.
func sameObjects(t *testing.T, kust, helmObjs []*unstructured.Unstructured, skipKinds ...string) {
	t.Helper()
	got := withoutHelmLabels(t, helmObjs)
	want := map[string]*unstructured.Unstructured{}
	for _, o := range kust {
		if !slices.Contains(skipKinds, o.GetKind()) {
			o = o.DeepCopy()
			if slices.Contains(clusterScoped, o.GetKind()) {
				o.SetNamespace("")
			}
			want[key(o)] = o
		}
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("helm template does not render %s", k)
			continue
		}
		if !reflect.DeepEqual(foldSpace(g.Object), foldSpace(w.Object)) {
			gy, _ := json.MarshalIndent(g.Object, "", "  ")
			wy, _ := json.MarshalIndent(w.Object, "", "  ")
			t.Errorf("%s differs:\n--- helm template\n%s\n--- kubectl kustomize\n%s", k, gy, wy)
		}
	}
	for k := range got {
		if want[k] == nil {
			t.Errorf("helm template renders %s, which kustomize does not", k)
		}
	}
}

// foldSpace collapses the whitespace in multi-line strings: kustomize versions re-fold YAML's
// folded scalars differently (the admission policy's CEL gets "\n\n" from kubectl's v5.5 where
// the source, and the generator's kustomize, have "\n"), which changes no expression.
func foldSpace(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = foldSpace(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = foldSpace(e)
		}
		return out
	case string:
		if strings.Contains(x, "\n") {
			return strings.Join(strings.Fields(x), " ")
		}
	}
	return v
}

func TestChartIsGeneratedFromConfig(t *testing.T) {
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "-C", filepath.Join(abs, "hack", "tools", "helm"), "run", "./chartgen", "--root", abs, "--check")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

func TestHelmLint(t *testing.T) {
	abs, err := filepath.Abs(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range map[string]map[string]any{"defaults": nil, "non-default values": nonDefault} {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", abs, "--namespace", operatorNS}
			if vals != nil {
				args = append(args, "--values", valuesFile(t, vals))
			}
			out, err := helm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(out, []byte("1 chart(s) linted, 0 chart(s) failed")) {
				t.Fatalf("helm lint: %s", out)
			}
		})
	}
	// Lint must be able to fail: a value of the wrong type breaks the templates.
	// values.schema.json: misspelt keys and values of the wrong type fail lint (and install).
	for _, bad := range []string{"manager.extraArgs=oops", "manager.replica=3", "receiver.replicas=two", "image.pullPolicy=Sometimes", "ingres.enabled=true"} {
		if out, err := helm(t, "lint", "--strict", abs, "--set", bad); err == nil || !bytes.Contains(out, []byte("schema")) {
			t.Errorf("helm lint --set %s: %v\n%s; want it refused by the values schema", bad, err, out)
		}
	}
}

// With the defaults (and the Ingress on, which config/default has as an example) the chart
// renders config/default, CRDs included (--include-crds prints crds/), but for the Namespace.
func TestDefaultsRenderConfigDefault(t *testing.T) {
	objs := template(t, operatorNS, map[string]any{"ingress": map[string]any{"enabled": true}}, "--include-crds")
	kust := render(t, "default")
	sameObjects(t, kust, objs, "Namespace")
	if got, want := len(kustomize.OfKind(objs, kustomize.RBACKinds...)), len(kustomize.OfKind(kust, kustomize.RBACKinds...))-1; got != want || got < 10 {
		t.Errorf("%d RBAC objects rendered, want config/default's %d (all but the Namespace)", got, want)
	}

	// Off by default: the example Ingress, the ServiceMonitor.
	for _, o := range template(t, operatorNS, nil) {
		if o.GetKind() == "Ingress" || o.GetKind() == "ServiceMonitor" || o.GetKind() == "CustomResourceDefinition" {
			t.Errorf("the defaults render %s (the Ingress and ServiceMonitor are opt-in; CRDs are in crds/)", key(o))
		}
	}
}

// watchNamespaces is config/namespaced: the same RBAC (RoleBindings in the watched and the
// operator namespace, no cluster-wide binding, the metrics-auth ClusterRole) and the manager's
// --watch-namespaces.
func TestWatchNamespacesRenderConfigNamespaced(t *testing.T) {
	vals := map[string]any{"ingress": map[string]any{"enabled": true}, "watchNamespaces": []string{"wechat-apps"}}
	objs := template(t, operatorNS, vals)
	kust := render(t, "namespaced")
	sameObjects(t, kustomize.OfKind(kust, kustomize.RBACKinds...), kustomize.OfKind(objs, kustomize.RBACKinds...), "Namespace")
	sameObjects(t, kust, objs, "Namespace", "CustomResourceDefinition")
}

// metrics.serviceMonitor and the other metrics.<kind>.enabled the generator found are
// config/prometheus.
func TestServiceMonitorRendersConfigPrometheus(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var defaults struct {
		Metrics map[string]any `json:"metrics"`
	}
	if err := utilyaml.Unmarshal(data, &defaults); err != nil {
		t.Fatal(err)
	}
	metrics := map[string]any{}
	for k, v := range defaults.Metrics {
		if m, ok := v.(map[string]any); ok && m["enabled"] != nil {
			metrics[k] = map[string]any{"enabled": true}
		}
	}
	if metrics["serviceMonitor"] == nil {
		t.Fatalf("values.yaml has no metrics.serviceMonitor.enabled: %v", defaults.Metrics)
	}
	objs := template(t, operatorNS, map[string]any{"metrics": metrics})
	var prom []*unstructured.Unstructured
	for _, o := range objs {
		if kustomize.Find(render(t, "default"), o.GetKind(), o.GetName()) == nil {
			prom = append(prom, o)
		}
	}
	sameObjects(t, render(t, "prometheus"), prom)
}

var nonDefault = map[string]any{
	"image": map[string]any{"registry": "registry.example.com/wx", "tag": "v1.2.3", "pullPolicy": "Always"},
	"manager": map[string]any{
		"replicas":  3,
		"resources": map[string]any{"limits": map[string]any{"memory": "512Mi"}, "requests": map[string]any{"cpu": "100m", "memory": "128Mi"}},
		"extraArgs": []string{"--min-refresh-margin=15m"},
	},
	"receiver": map[string]any{
		"replicas":  1,
		"resources": map[string]any{"limits": map[string]any{"memory": "64Mi"}},
		"extraArgs": []string{"--forward-allowed-hosts=shop.apps.internal"},
		"service":   map[string]any{"clusterIP": "198.18.0.80"},
	},
	"watchNamespaces": []string{"shop", "wx-ops", "blog"},
	"networkPolicies": map[string]any{"enabled": false},
	"ingress": map[string]any{
		"enabled": true, "className": "nginx", "annotations": map[string]any{"cert-manager.io/cluster-issuer": "letsencrypt",
			// Helm merges maps: null drops the default annotation.
			"nginx.ingress.kubernetes.io/proxy-body-size": nil},
		"hosts": []string{"wx.shop.example", "wx.blog.example"}, "tls": nil,
	},
	"metrics": map[string]any{
		"enabled": false,
		// Needs metrics.enabled: stays off.
		"serviceMonitor": map[string]any{"enabled": true},
	},
}

func TestNonDefaultValues(t *testing.T) {
	const ns = "wx-ops"
	objs := template(t, ns, nonDefault)
	byKey := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		byKey[key(o)] = o
	}
	str := func(o *unstructured.Unstructured, path ...string) string {
		s, _, _ := unstructured.NestedString(o.Object, path...)
		return s
	}
	for _, kind := range []string{"NetworkPolicy", "ServiceMonitor", "PodDisruptionBudget"} {
		if got := kustomize.OfKind(objs, kind); len(got) != 0 {
			t.Errorf("%s rendered although disabled (networkPolicies.enabled, metrics.enabled, receiver.replicas 1)", key(got[0]))
		}
	}
	if o := kustomize.Find(objs, "Service", "wechat-operator-manager-metrics"); o != nil {
		t.Error("the metrics Service is rendered with metrics.enabled false")
	}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" && ns != "wx-ops" && ns != "shop" && ns != "blog" {
			t.Errorf("%s: namespace %q, want the release's", key(o), ns)
		}
		for _, s := range mustSlice(o, "subjects") {
			if s["kind"] == "ServiceAccount" && s["namespace"] != ns {
				t.Errorf("%s: subject %v not in the release namespace", key(o), s)
			}
		}
	}

	deploy := func(name string) (*unstructured.Unstructured, map[string]any) {
		d := byKey["Deployment "+ns+"/"+name]
		if d == nil {
			t.Fatalf("no Deployment %s in %s", name, ns)
		}
		c, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		return d, c[0].(map[string]any)
	}
	for _, tc := range []struct {
		name, image string
		replicas    int64
		args        []string
		memLimit    string
	}{
		{"wechat-operator-manager", "registry.example.com/wx/manager:v1.2.3", 3,
			[]string{"--leader-elect", "--metrics-bind-address=0", "--health-probe-bind-address=:8081", "--watch-namespaces=shop,wx-ops,blog", "--min-refresh-margin=15m"}, "512Mi"},
		{"wechat-operator-webhook-receiver", "registry.example.com/wx/webhook-receiver:v1.2.3", 1,
			[]string{"--listen-address=:8080", "--internal-address=:9090", "--forward-allowed-hosts=shop.apps.internal"}, "64Mi"},
	} {
		d, c := deploy(tc.name)
		if r, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(r) != fmt.Sprint(tc.replicas) {
			t.Errorf("%s: %v replicas, want %d", tc.name, r, tc.replicas)
		}
		if c["image"] != tc.image || c["imagePullPolicy"] != "Always" {
			t.Errorf("%s: image %v pull policy %v, want %s Always", tc.name, c["image"], c["imagePullPolicy"], tc.image)
		}
		var args []string
		for _, a := range c["args"].([]any) {
			args = append(args, a.(string))
		}
		if !slices.Equal(args, tc.args) {
			t.Errorf("%s: args %q, want %q", tc.name, args, tc.args)
		}
		if got, _, _ := unstructured.NestedString(c, "resources", "limits", "memory"); got != tc.memLimit {
			t.Errorf("%s: memory limit %q, want %s", tc.name, got, tc.memLimit)
		}
	}
	// One RoleBinding per watched namespace, the release's own once; no cluster-wide grant.
	var bound []string
	for _, rb := range kustomize.OfKind(objs, "RoleBinding") {
		if str(rb, "roleRef", "name") == "wechat-operator-manager-role" {
			bound = append(bound, rb.GetNamespace())
		}
	}
	slices.Sort(bound)
	if !slices.Equal(bound, []string{"blog", "shop", "wx-ops"}) {
		t.Errorf("manager-role bound in %v, want blog, shop, wx-ops (each once)", bound)
	}
	for _, crb := range kustomize.OfKind(objs, "ClusterRoleBinding") {
		if str(crb, "roleRef", "name") == "wechat-operator-manager-role" {
			t.Errorf("%s grants the manager-role cluster-wide although watchNamespaces is set", key(crb))
		}
	}

	svc := byKey["Service "+ns+"/wechat-operator-webhook-receiver"]
	if svc == nil || str(svc, "spec", "clusterIP") != "198.18.0.80" {
		t.Errorf("receiver Service: %v, want clusterIP 198.18.0.80", svc)
	}
	ing := byKey["Ingress "+ns+"/wechat-operator-webhook-receiver"]
	if ing == nil {
		t.Fatal("no Ingress")
	}
	rules := mustSlice(ing, "spec", "rules")
	if str(ing, "spec", "ingressClassName") != "nginx" || len(rules) != 2 || rules[0]["host"] != "wx.shop.example" || rules[1]["host"] != "wx.blog.example" ||
		ing.GetAnnotations()["cert-manager.io/cluster-issuer"] != "letsencrypt" || len(ing.GetAnnotations()) != 1 {
		t.Errorf("Ingress: class %q rules %v annotations %v", str(ing, "spec", "ingressClassName"), rules, ing.GetAnnotations())
	}
	if tls, found, _ := unstructured.NestedFieldNoCopy(ing.Object, "spec", "tls"); found {
		t.Errorf("Ingress has tls %v although ingress.tls is null", tls)
	}
	for _, r := range rules {
		p := r["http"].(map[string]any)["paths"].([]any)[0].(map[string]any)
		if p["path"] != "/wechat/" || p["backend"].(map[string]any)["service"].(map[string]any)["name"] != "wechat-operator-webhook-receiver" {
			t.Errorf("Ingress rule %v: want /wechat/ to the receiver Service", r)
		}
	}

	// The admission policy must name the receiver's ServiceAccount in the release namespace.
	vap := kustomize.Find(objs, "ValidatingAdmissionPolicy", "wechat-operator-receiver-status-fields")
	conds := mustSlice(vap, "spec", "matchConditions")
	if want := "'system:serviceaccount:' + 'wx-ops' + ':' + 'wechat-operator-webhook-receiver'"; len(conds) != 1 || !strings.Contains(conds[0]["expression"].(string), want) {
		t.Errorf("admission policy match condition %v, want it to contain %s", conds, want)
	}
}

func mustSlice(o *unstructured.Unstructured, path ...string) []map[string]any {
	if o == nil {
		return nil
	}
	l, _, _ := unstructured.NestedSlice(o.Object, path...)
	var out []map[string]any
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// A string value is one value: none can end the document it is in and start objects of its
// own (a ClusterRoleBinding to cluster-admin, say) in what Helm applies with the installer's
// rights. Each value either renders as a quoted scalar or is refused by the values schema.
func TestStringValuesCannotAddObjects(t *testing.T) {
	const payload = "x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: injected\ndata:\n  rest: |1\n"
	abs, err := filepath.Abs(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	on := map[string]any{"enabled": true}
	for name, vals := range map[string]map[string]any{
		"watchNamespaces": {"watchNamespaces": []string{payload}},
		"metrics.serviceMonitor.prometheusServiceAccount.name": {"metrics": map[string]any{"serviceMonitor": map[string]any{
			"enabled": true, "prometheusServiceAccount": map[string]any{"name": payload}}}},
		"metrics.serviceMonitor.prometheusServiceAccount.namespace": {"metrics": map[string]any{"serviceMonitor": map[string]any{
			"enabled": true, "prometheusServiceAccount": map[string]any{"namespace": payload}}}},
		"ingress.className":          {"ingress": map[string]any{"enabled": true, "className": payload}},
		"receiver.service.clusterIP": {"receiver": map[string]any{"service": map[string]any{"clusterIP": payload}}},
		"image.registry":             {"image": map[string]any{"registry": payload}},
		"image.tag":                  {"image": map[string]any{"tag": payload}},
		"ingress.hosts":              {"ingress": map[string]any{"enabled": true, "hosts": []string{payload}}},
		"manager.extraArgs":          {"manager": map[string]any{"extraArgs": []string{payload}}, "networkPolicies": on},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, "template", "wechat-operator", abs, "--namespace", operatorNS, "--values", valuesFile(t, vals))
			if err != nil {
				if !bytes.Contains(out, []byte("schema")) {
					t.Fatalf("refused, but not by the values schema: %v", err)
				}
				return // refused by the values schema
			}
			objs, err := kustomize.Decode(out)
			if err != nil {
				t.Fatalf("decoding helm template's output: %v\n%s", err, out)
			}
			for _, o := range objs {
				if o.GetName() == "injected" {
					t.Fatalf("the value added %s", key(o))
				}
			}
		})
	}
}
