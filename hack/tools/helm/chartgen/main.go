/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Command chartgen writes the Helm chart charts/wechat-operator from the kustomizations under
// config/, so the chart is never a second copy to keep in step by hand (`make chart` runs it,
// `make verify` and the chart tests fail when the committed chart differs from its output).
//
// It renders config/default, config/namespaced and config/prometheus with kustomize's Go API
// (the same kustomize kubectl embeds) and turns every object into a template:
//   - the operator namespace becomes the release namespace;
//   - images, replicas, resources, pull policy, extra arguments, the receiver Service's
//     clusterIP, the Ingress and the ServiceMonitor's labels become values;
//   - what config/namespaced adds or removes becomes conditional on .Values.watchNamespaces
//     (its RoleBinding in the example namespace becomes one per watched namespace);
//   - NetworkPolicies, the Ingress, the metrics Service and everything in config/prometheus
//     are switched by values;
//   - the CRDs go to crds/ as Helm documents it (installed on first install, never upgraded).
//
// values.yaml takes its defaults from the same output. The generator fails rather than guess
// when config/ changes shape in a way it does not know (say config/namespaced changes more of
// the Deployment than its arguments).
//
// Usage (from this module's directory): go run ./chartgen --root ../../.. [--check]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const chartDir = "charts/wechat-operator"

func main() {
	root := flag.String("root", ".", "the repository root")
	check := flag.Bool("check", false, "write nothing; exit 1 if the committed chart differs from what would be generated")
	flag.Parse()
	files, err := generate(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chartgen:", err)
		os.Exit(1)
	}
	dir := filepath.Join(*root, chartDir)
	if *check {
		if diffs := compare(dir, files); len(diffs) > 0 {
			fmt.Fprintf(os.Stderr, "chartgen: %s is out of date (run `make chart` and commit): %s\n", chartDir, strings.Join(diffs, ", "))
			os.Exit(1)
		}
		return
	}
	// templates/ and crds/ are wholly generated: files of objects that left config/ go too.
	for _, sub := range []string{"templates", "crds"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			fmt.Fprintln(os.Stderr, "chartgen:", err)
			os.Exit(1)
		}
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "chartgen:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "chartgen:", err)
			os.Exit(1)
		}
	}
}

// compare lists the generated files that differ from dir's, and dir's generated-kind files
// (templates/, crds/) that would not be generated.
func compare(dir string, files map[string][]byte) []string {
	var diffs []string
	for name, data := range files {
		if old, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(old, data) {
			diffs = append(diffs, name)
		}
	}
	for _, sub := range []string{"templates", "crds"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range entries {
			if _, ok := files[sub+"/"+e.Name()]; !ok {
				diffs = append(diffs, sub+"/"+e.Name()+" (not generated)")
			}
		}
	}
	sort.Strings(diffs)
	return diffs
}

type object = map[string]any

func render(root, dir string) ([]object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	var out []object
	for _, r := range m.Resources() {
		o, err := r.Map()
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func kindOf(o object) string { s, _ := o["kind"].(string); return s }
func meta(o object) object   { m, _ := o["metadata"].(object); return m }
func nameOf(o object) string { s, _ := meta(o)["name"].(string); return s }
func nsOf(o object) string   { s, _ := meta(o)["namespace"].(string); return s }
func keyOf(o object) string  { return kindOf(o) + "/" + nsOf(o) + "/" + nameOf(o) }

// get walks a path of map keys and list indexes.
func get(o any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := o.(object)
			if !ok {
				return nil
			}
			o = m[k]
		case int:
			l, ok := o.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			o = l[k]
		}
	}
	return o
}

func find(objs []object, kind, name string) object {
	for _, o := range objs {
		if kindOf(o) == kind && nameOf(o) == name {
			return o
		}
	}
	return nil
}

func deepCopy(o object) object {
	data, err := yaml.Marshal(o)
	if err != nil {
		panic(err)
	}
	var c object
	if err := yaml.Unmarshal(data, &c); err != nil {
		panic(err)
	}
	return c
}

// A placeholder stands in an object for template text until the object is serialized: a
// scalar is replaced where it stands; a block replaces its whole line, indented like it.
type placeholder struct {
	scalar string
	block  func(indent string) string
}

type templater struct {
	ph map[string]placeholder
	n  int
}

func (t *templater) add(p placeholder) string {
	t.n++
	tok := fmt.Sprintf("__HELM_%d__", t.n)
	t.ph[tok] = p
	return tok
}

func (t *templater) scalar(s string) string { return t.add(placeholder{scalar: s}) }

// optional: `key: {{ value }}` only when the value is set.
func (t *templater) optional(key, value string) string {
	return t.add(placeholder{block: func(in string) string {
		return fmt.Sprintf("{{- with %s }}\n%s%s: {{ . }}\n{{- end }}", value, in, key)
	}})
}

// toYaml: `key:` followed by the value as YAML.
func (t *templater) toYaml(key, value string) string {
	return t.add(placeholder{block: func(in string) string {
		return fmt.Sprintf("%s%s: {{- toYaml %s | nindent %d }}", in, key, value, len(in)+2)
	}})
}

// optionalYaml: `key:` and the value as YAML, only when the value is set.
func (t *templater) optionalYaml(key, value string) string {
	return t.add(placeholder{block: func(in string) string {
		return fmt.Sprintf("{{- with %s }}\n%s%s: {{- toYaml . | nindent %d }}\n{{- end }}", value, in, key, len(in)+2)
	}})
}

// mergeYaml: the entries of a map value inside the map the placeholder key stands in.
func (t *templater) mergeYaml(value string) string {
	return t.add(placeholder{block: func(in string) string {
		return fmt.Sprintf("{{- with %s }}\n{{- toYaml . | nindent %d }}\n{{- end }}", value, len(in))
	}})
}

var (
	tokenRE = regexp.MustCompile(`__HELM_[0-9]+__`)
	braceRE = regexp.MustCompile(`\{\{|\}\}`)
)

// serialize writes o as YAML and puts the template text in for the placeholders. Braces that
// were in the object (say a PrometheusRule's {{ $labels.x }}) are escaped for Helm first.
func (t *templater) serialize(o object) (string, error) {
	data, err := yaml.Marshal(o)
	if err != nil {
		return "", err
	}
	text := braceRE.ReplaceAllStringFunc(string(data), func(s string) string { return `{{ "` + s + `" }}` })
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		tok := tokenRE.FindString(line)
		if tok == "" {
			out = append(out, line)
			continue
		}
		p, ok := t.ph[tok]
		if !ok {
			return "", fmt.Errorf("unknown placeholder %s", tok)
		}
		if p.block == nil {
			out = append(out, tokenRE.ReplaceAllStringFunc(line, func(s string) string { return t.ph[s].scalar }))
			continue
		}
		in := line[:len(line)-len(strings.TrimLeft(line, " "))]
		if strings.HasPrefix(strings.TrimLeft(line, " "), "- ") {
			in += "  "
		}
		out = append(out, p.block(in))
	}
	return strings.Join(out, "\n") + "\n", nil
}

// image splits registry/name:tag.
func image(ref string) (registry, name, tag string, err error) {
	i, j := strings.LastIndex(ref, "/"), strings.LastIndex(ref, ":")
	if i < 0 || j < i {
		return "", "", "", fmt.Errorf("image %q is not registry/name:tag", ref)
	}
	return ref[:i], ref[i+1 : j], ref[j+1:], nil
}

// component is what the chart knows of one of the two Deployments.
type component struct {
	key       string // the values key: manager, receiver
	name      string // Deployment name
	image     string // image name after the registry
	replicas  int64
	resources any
}

type chart struct {
	namespace      string
	registry, tag  string
	components     []*component
	ingress        object // defaults of .Values.ingress
	promSA         object // the Prometheus ServiceAccount subject of config/prometheus
	promKinds      []string
	exampleNS      string // config/namespaced's example watched namespace
	watchFlag      string // "--watch-namespaces="
	metricsFlag    string
	metricsAddress string
}

func generate(root string) (map[string][]byte, error) {
	def, err := render(root, "config/default")
	if err != nil {
		return nil, err
	}
	nsd, err := render(root, "config/namespaced")
	if err != nil {
		return nil, err
	}
	prom, err := render(root, "config/prometheus")
	if err != nil {
		return nil, err
	}
	c := &chart{}
	files := map[string][]byte{}
	t := &templater{ph: map[string]placeholder{}}

	var nsObj object
	for _, o := range def {
		if kindOf(o) == "Namespace" {
			if nsObj != nil {
				return nil, fmt.Errorf("config/default has more than one Namespace")
			}
			nsObj = o
		}
	}
	if nsObj == nil {
		return nil, fmt.Errorf("config/default has no Namespace")
	}
	c.namespace = nameOf(nsObj)

	// What config/namespaced changes: objects added, removed, and the manager's arguments.
	defKeys := map[string]object{}
	for _, o := range def {
		defKeys[keyOf(o)] = o
	}
	nsdKeys := map[string]object{}
	for _, o := range nsd {
		nsdKeys[keyOf(o)] = o
	}
	onlyDefault := map[string]bool{}
	for k := range defKeys {
		if nsdKeys[k] == nil {
			onlyDefault[k] = true
		}
	}
	var added []object
	for _, o := range nsd {
		k := keyOf(o)
		if defKeys[k] == nil {
			added = append(added, o)
			continue
		}
		if kindOf(o) == "Deployment" {
			continue // compared below
		}
		if a, b := mustYAML(defKeys[k]), mustYAML(o); a != b {
			return nil, fmt.Errorf("config/namespaced changes %s in a way chartgen does not template", k)
		}
	}
	for _, o := range added {
		if kindOf(o) == "Namespace" {
			c.exampleNS = nameOf(o)
		}
	}

	for _, o := range def {
		if kindOf(o) != "Deployment" {
			continue
		}
		n := nsdKeys[keyOf(o)]
		if n == nil {
			return nil, fmt.Errorf("config/namespaced drops Deployment %s", nameOf(o))
		}
		da, _ := get(o, "spec", "template", "spec", "containers", 0, "args").([]any)
		na, _ := get(n, "spec", "template", "spec", "containers", 0, "args").([]any)
		nc, dc := deepCopy(n), deepCopy(o)
		delete(get(nc, "spec", "template", "spec", "containers", 0).(object), "args")
		delete(get(dc, "spec", "template", "spec", "containers", 0).(object), "args")
		if mustYAML(nc) != mustYAML(dc) || len(na) < len(da) || !slices.Equal(na[:len(da)], da) {
			return nil, fmt.Errorf("config/namespaced changes Deployment %s beyond adding arguments", nameOf(o))
		}
		for _, a := range na[len(da):] {
			s, _ := a.(string)
			flagName, value, ok := strings.Cut(s, "=")
			if !ok || flagName != "--watch-namespaces" || value != c.exampleNS {
				return nil, fmt.Errorf("config/namespaced adds argument %q to %s; chartgen knows only --watch-namespaces=<its example namespace>", s, nameOf(o))
			}
			c.watchFlag = flagName + "="
		}
	}
	if c.exampleNS == "" || c.watchFlag == "" {
		return nil, fmt.Errorf("config/namespaced no longer adds a Namespace and --watch-namespaces: update chartgen")
	}

	// Per-object templates.
	type doc struct {
		file, cond, text string
	}
	var docs []doc
	var crds []object
	ns := t.scalar("{{ $.Release.Namespace }}")
	objs := append(slices.Clone(def), added...)
	for _, o := range objs {
		o = deepCopy(o)
		kind, name := kindOf(o), nameOf(o)
		k := keyOf(o)
		switch kind {
		case "CustomResourceDefinition":
			crds = append(crds, o)
			continue
		case "Namespace":
			continue // the release namespace: see namespace.yaml
		}
		inExample := nsOf(o) == c.exampleNS
		replaceString(o, c.namespace, ns)
		labels, _ := meta(o)["labels"].(object)
		if labels == nil {
			labels = object{}
			meta(o)["labels"] = labels
		}
		labels["helm.sh/chart"] = t.scalar(`{{ $.Chart.Name }}-{{ $.Chart.Version | replace "+" "_" }}`)
		labels["app.kubernetes.io/managed-by"] = t.scalar(`{{ $.Release.Service }}`)
		labels["app.kubernetes.io/instance"] = t.scalar(`{{ $.Release.Name }}`)

		var conds []string
		switch {
		case onlyDefault[k]:
			conds = append(conds, "not .Values.watchNamespaces")
		case nsdKeys[k] != nil && defKeys[k] == nil && !inExample:
			conds = append(conds, ".Values.watchNamespaces")
		}
		switch kind {
		case "NetworkPolicy":
			conds = append(conds, ".Values.networkPolicies.enabled")
		case "Deployment":
			comp, err := c.deployment(t, o)
			if err != nil {
				return nil, err
			}
			c.components = append(c.components, comp)
		case "Service":
			if get(o, "spec", "selector", "app.kubernetes.io/component") == "manager" {
				conds = append(conds, ".Values.metrics.enabled")
			} else if get(o, "spec", "selector", "app.kubernetes.io/component") == "webhook-receiver" {
				get(o, "spec").(object)["clusterIP"] = t.optional("clusterIP", ".Values.receiver.service.clusterIP")
			}
		case "PodDisruptionBudget":
			conds = append(conds, "gt (int .Values.receiver.replicas) 1")
		case "Ingress":
			conds = append(conds, ".Values.ingress.enabled")
			if err := c.ingressTemplate(t, o); err != nil {
				return nil, err
			}
		}
		text, err := t.serialize(o)
		if err != nil {
			return nil, err
		}
		file := fileName(kind, name, c.namespace)
		if inExample {
			// One per watched namespace, but none twice in the operator's own.
			text = strings.ReplaceAll(text, "namespace: "+c.exampleNS+"\n", "namespace: {{ . }}\n")
			text = "{{- range .Values.watchNamespaces }}\n{{- if ne . $.Release.Namespace }}\n---\n" + text + "{{- end }}\n{{- end }}\n"
			file = strings.TrimSuffix(file, ".yaml") + "-watched.yaml"
		}
		docs = append(docs, doc{file: file, cond: strings.Join(conds, " "), text: text})
	}

	// config/prometheus: off unless asked for. Its ServiceMonitor and the binding that lets
	// Prometheus read /metrics go with metrics.serviceMonitor; anything else (say alert rules)
	// with metrics.<kind>.enabled.
	for _, o := range prom {
		o = deepCopy(o)
		kind, name := kindOf(o), nameOf(o)
		replaceString(o, c.namespace, ns)
		labels, _ := meta(o)["labels"].(object)
		if labels == nil {
			labels = object{}
			meta(o)["labels"] = labels
		}
		labels["helm.sh/chart"] = t.scalar(`{{ $.Chart.Name }}-{{ $.Chart.Version | replace "+" "_" }}`)
		labels["app.kubernetes.io/managed-by"] = t.scalar(`{{ $.Release.Service }}`)
		labels["app.kubernetes.io/instance"] = t.scalar(`{{ $.Release.Name }}`)
		var cond string
		switch kind {
		case "ServiceMonitor":
			cond = ".Values.metrics.enabled .Values.metrics.serviceMonitor.enabled"
			labels["__HELM_LABELS__"] = t.mergeYaml(".Values.metrics.serviceMonitor.labels")
		case "ClusterRoleBinding":
			subjects, _ := get(o, "subjects").([]any)
			if len(subjects) != 1 {
				return nil, fmt.Errorf("config/prometheus: %s has %d subjects, chartgen templates one", name, len(subjects))
			}
			sa := subjects[0].(object)
			c.promSA = object{"name": sa["name"], "namespace": sa["namespace"]}
			sa["name"] = t.scalar("{{ .Values.metrics.serviceMonitor.prometheusServiceAccount.name }}")
			sa["namespace"] = t.scalar("{{ .Values.metrics.serviceMonitor.prometheusServiceAccount.namespace }}")
			cond = ".Values.metrics.enabled .Values.metrics.serviceMonitor.enabled"
		default:
			key := strings.ToLower(kind[:1]) + kind[1:]
			if !slices.Contains(c.promKinds, key) {
				c.promKinds = append(c.promKinds, key)
			}
			cond = ".Values.metrics." + key + ".enabled"
		}
		// Fix the key order of the merged labels: the placeholder key sorts last.
		text, err := t.serialize(o)
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc{file: "prometheus-" + fileName(kind, name, c.namespace), cond: "and " + cond, text: text})
	}
	if c.promSA == nil {
		return nil, fmt.Errorf("config/prometheus has no ClusterRoleBinding for Prometheus")
	}

	for _, d := range docs {
		text := "# Generated by hack/tools/helm/chartgen from config/: edit config/ and run `make chart`.\n"
		if d.cond != "" {
			text += "{{- if " + d.cond + " }}\n" + d.text + "{{- end }}\n"
		} else {
			text += d.text
		}
		if _, dup := files["templates/"+d.file]; dup {
			return nil, fmt.Errorf("two objects map to templates/%s", d.file)
		}
		files["templates/"+d.file] = []byte(text)
	}
	for _, o := range crds {
		data, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		files["crds/"+nameOf(o)+".yaml"] = append([]byte("# Generated by hack/tools/helm/chartgen from config/crd (make manifests, then make chart).\n# Helm installs these on the first install only: before `helm upgrade`, run\n#   kubectl apply --server-side -f charts/wechat-operator/crds\n"), data...)
	}
	nsData, err := yaml.Marshal(nsObj)
	if err != nil {
		return nil, err
	}
	files["namespace.yaml"] = append([]byte("# The operator namespace as config/default creates it (Pod Security \"restricted\" enforced).\n# Helm does not create it with these labels: apply this (or label yours alike) before\n#   helm install wechat-operator charts/wechat-operator -n "+c.namespace+"\n# Generated by hack/tools/helm/chartgen.\n"), nsData...)
	files["Chart.yaml"] = []byte(c.chartYAML())
	files["values.yaml"] = []byte(c.valuesYAML())
	files[".helmignore"] = []byte("# Generated by hack/tools/helm/chartgen.\n.git/\n*.orig\n*~\n")
	return files, nil
}

func mustYAML(o any) string {
	data, err := yaml.Marshal(o)
	if err != nil {
		panic(err)
	}
	return string(data)
}

// fileName is the template's file name: kind and the object's name without the prefix.
func fileName(kind, name, namespace string) string {
	prefix, _, _ := strings.Cut(namespace, "-system")
	short := strings.TrimPrefix(name, prefix+"-")
	return strings.ToLower(kind) + "-" + short + ".yaml"
}

// replaceString replaces every string in o that is old, or contains it between quotes (the
// admission policy's CEL expression), with the placeholder.
func replaceString(o any, old, tok string) any {
	switch v := o.(type) {
	case object:
		for k, e := range v {
			v[k] = replaceString(e, old, tok)
		}
	case []any:
		for i, e := range v {
			v[i] = replaceString(e, old, tok)
		}
	case string:
		if v == old {
			return tok
		}
		return strings.ReplaceAll(v, "'"+old+"'", "'"+tok+"'")
	}
	return o
}

// deployment templates a Deployment's replicas, image, pull policy, resources and arguments.
func (c *chart) deployment(t *templater, o object) (*component, error) {
	containers, _ := get(o, "spec", "template", "spec", "containers").([]any)
	if len(containers) != 1 {
		return nil, fmt.Errorf("Deployment %s: chartgen templates one container, it has %d", nameOf(o), len(containers))
	}
	ctr := containers[0].(object)
	reg, img, tag, err := image(ctr["image"].(string))
	if err != nil {
		return nil, err
	}
	if c.registry == "" {
		c.registry, c.tag = reg, tag
	} else if c.registry != reg || c.tag != tag {
		return nil, fmt.Errorf("the Deployments' images differ in registry or tag (%s:%s, %s:%s): chartgen has one image.registry and image.tag", c.registry, c.tag, reg, tag)
	}
	comp := &component{name: nameOf(o), image: img, resources: ctr["resources"]}
	switch get(o, "spec", "template", "metadata", "labels", "app.kubernetes.io/component") {
	case "manager":
		comp.key = "manager"
	case "webhook-receiver":
		comp.key = "receiver"
	default:
		return nil, fmt.Errorf("Deployment %s: unknown app.kubernetes.io/component", nameOf(o))
	}
	r, ok := get(o, "spec", "replicas").(float64)
	if !ok {
		return nil, fmt.Errorf("Deployment %s has no spec.replicas", nameOf(o))
	}
	comp.replicas = int64(r)
	v := ".Values." + comp.key
	get(o, "spec").(object)["replicas"] = t.scalar("{{ " + v + ".replicas }}")
	ctr["image"] = t.scalar(fmt.Sprintf(`{{ .Values.image.registry }}/%s:{{ .Values.image.tag | default $.Chart.AppVersion }}`, img))
	ctr["imagePullPolicy"] = t.optional("imagePullPolicy", ".Values.image.pullPolicy")
	ctr["resources"] = t.toYaml("resources", v+".resources")
	args, _ := ctr["args"].([]any)
	for i, a := range args {
		s, _ := a.(string)
		if comp.key == "manager" && strings.HasPrefix(s, "--metrics-bind-address=") {
			c.metricsFlag = "--metrics-bind-address="
			c.metricsAddress = strings.TrimPrefix(s, c.metricsFlag)
			args[i] = t.scalar(fmt.Sprintf("%s{{ if .Values.metrics.enabled }}%s{{ else }}0{{ end }}", c.metricsFlag, c.metricsAddress))
		}
	}
	extra := ""
	if comp.key == "manager" {
		extra = fmt.Sprintf("{{- with .Values.watchNamespaces }}\n%%s- %s{{ join \",\" . }}\n{{- end }}\n", c.watchFlag)
	}
	args = append(args, t.add(placeholder{block: func(in string) string {
		in = strings.TrimSuffix(in, "  ")
		s := extra
		if s != "" {
			s = fmt.Sprintf(s, in)
		}
		return s + fmt.Sprintf("{{- range %s.extraArgs }}\n%s- {{ . | quote }}\n{{- end }}", v, in)
	}}))
	ctr["args"] = args
	if comp.key == "manager" && c.metricsFlag == "" {
		return nil, fmt.Errorf("the manager has no --metrics-bind-address argument")
	}
	return comp, nil
}

// ingressTemplate templates the Ingress: class, annotations, hosts and TLS from values, each
// host with config/'s paths.
func (c *chart) ingressTemplate(t *templater, o object) error {
	rules, _ := get(o, "spec", "rules").([]any)
	if len(rules) == 0 {
		return fmt.Errorf("the Ingress has no rules")
	}
	http := get(rules[0], "http")
	var hosts []any
	for _, r := range rules {
		if mustYAML(get(r, "http")) != mustYAML(http) {
			return fmt.Errorf("the Ingress's rules differ in paths: chartgen templates one set of paths for every host")
		}
		hosts = append(hosts, get(r, "host"))
	}
	c.ingress = object{
		"className":   get(o, "spec", "ingressClassName"),
		"annotations": meta(o)["annotations"],
		"hosts":       hosts,
		"tls":         get(o, "spec", "tls"),
	}
	if c.ingress["className"] == nil {
		c.ingress["className"] = ""
	}
	httpYAML := mustYAML(http)
	meta(o)["annotations"] = t.optionalYaml("annotations", ".Values.ingress.annotations")
	o["spec"] = object{
		"ingressClassName": t.optional("ingressClassName", ".Values.ingress.className"),
		"tls":              t.optionalYaml("tls", ".Values.ingress.tls"),
		"rules": t.add(placeholder{block: func(in string) string {
			var b strings.Builder
			fmt.Fprintf(&b, "%srules:\n{{- range .Values.ingress.hosts }}\n%s- host: {{ . | quote }}\n%s  http:\n", in, in, in)
			for _, l := range strings.Split(strings.TrimSuffix(httpYAML, "\n"), "\n") {
				fmt.Fprintf(&b, "%s    %s\n", in, l)
			}
			b.WriteString("{{- end }}")
			return b.String()
		}}),
	}
	return nil
}

func (c *chart) chartYAML() string {
	return fmt.Sprintf(`# Generated by hack/tools/helm/chartgen from config/ (make chart).
apiVersion: v2
name: wechat-operator
description: Keeps WeChat Open Platform component and authorizer access tokens in Kubernetes Secrets, with the webhook receiver for WeChat's pushes.
type: application
version: 0.1.0
appVersion: %q
kubeVersion: ">=1.30.0-0"
home: https://github.com/wechat-operator/wechat-operator
sources:
- https://github.com/wechat-operator/wechat-operator
`, c.tag)
}

func indentYAML(v any, n int) string {
	s := strings.TrimSuffix(mustYAML(v), "\n")
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func (c *chart) valuesYAML() string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w(`# Values of the wechat-operator chart; docs/install.md explains each. The defaults are
# config/default's (the chart is generated from config/ by hack/tools/helm/chartgen).

image:
  # Registry of both images: <registry>/manager and <registry>/webhook-receiver.
  registry: %s
  # Tag of both images; empty: the chart's appVersion (%q).
  tag: ""
  # imagePullPolicy of both containers; empty: Kubernetes' default (Always for :latest,
  # IfNotPresent otherwise).
  pullPolicy: ""

`, c.registry, c.tag)
	for _, comp := range c.components {
		switch comp.key {
		case "manager":
			w("# The token refresher (leader-elected: one replica works, the others stand by).\n")
		case "receiver":
			w("# The webhook receiver for WeChat's pushes (stateless, internet-facing).\n")
		}
		w("%s:\n  replicas: %d\n  resources:\n%s\n", comp.key, comp.replicas, indentYAML(comp.resources, 4))
		switch comp.key {
		case "manager":
			w("  # More command-line flags (`manager --help`), e.g. --wechat-api-url=... or --min-refresh-margin=15m.\n")
		case "receiver":
			w("  # More command-line flags (`webhook-receiver --help`), e.g. --forward-allowed-hosts=shop.apps.internal.\n")
		}
		w("  extraArgs: []\n")
		if comp.key == "receiver" {
			w("  service:\n    # A fixed ClusterIP for the receiver's Service (empty: the cluster assigns one).\n    clusterIP: \"\"\n")
		}
		w("\n")
	}
	w(`# Namespaces whose WeChatComponents and WeChatAuthorizers the manager serves; empty: all.
# When set (as config/namespaced does) the manager runs with %s and holds a
# RoleBinding to its ClusterRole in each of them and in the release namespace instead of the
# cluster-wide binding: it can read Secrets nowhere else.
watchNamespaces: []

# NetworkPolicies of config/network-policy: deny all, then what each deployment needs.
networkPolicies:
  enabled: true

# The Ingress for WeChat's pushes (only /wechat/ is exposed). config/default deploys it as an
# example for wechat.example.com; here it is off until you set your host.
ingress:
  enabled: false
  className: %q
  annotations:
%s
  hosts:
%s
  tls:
%s

metrics:
  # The manager's HTTPS /metrics on %s (off: %s0) and its Service.
  enabled: true
  # config/prometheus: a ServiceMonitor (needs the Prometheus Operator's CRDs) and a
  # ClusterRoleBinding that lets Prometheus' ServiceAccount read /metrics.
  serviceMonitor:
    enabled: false
    # Extra labels, e.g. the one your Prometheus' serviceMonitorSelector matches.
    labels: {}
    prometheusServiceAccount:
%s
`, c.watchFlag+"a,b", c.ingress["className"], indentYAML(c.ingress["annotations"], 4), indentYAML(c.ingress["hosts"], 2),
		indentYAML(c.ingress["tls"], 2), c.metricsAddress, c.metricsFlag, indentYAML(c.promSA, 6))
	for _, k := range c.promKinds {
		w("  # The %s of config/prometheus.\n  %s:\n    enabled: false\n", strings.ToUpper(k[:1])+k[1:], k)
	}
	return b.String()
}
