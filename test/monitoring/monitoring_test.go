/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package monitoring tests what config/prometheus and config/argocd give platform teams: the
// alert rules (promtool's unit tests, run by the Prometheus module's own promtool, built from
// hack/tools/prometheus so the operator's go.mod stays free of it), the PrometheusRule that
// carries the same rules, the Grafana dashboard's queries against the metrics the real
// processes export, and the docs that show them.
package monitoring

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite config/prometheus/prometheusrule.yaml from alerts.yaml")

var (
	root       = filepath.Join("..", "..")
	promDir    = filepath.Join(root, "config", "prometheus")
	rulesFile  = filepath.Join(promDir, "alerts.yaml")
	ruleCRFile = filepath.Join(promDir, "prometheusrule.yaml")
	dashboard  = filepath.Join(promDir, "dashboard.json")
	docsFile   = filepath.Join(root, "docs", "monitoring.md")
	luaFile    = filepath.Join(root, "config", "argocd", "health.lua")
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// prometheusRuleHeader precedes alerts.yaml's groups, indented under spec, in prometheusrule.yaml.
const prometheusRuleHeader = `# Generated from alerts.yaml (the same groups, for the Prometheus Operator); a test
# (test/monitoring) fails when the two differ. Regenerate: make prometheus-rule.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: alerts
  namespace: system
  labels:
    app.kubernetes.io/name: wechat-operator
spec:
`

// generatedPrometheusRule is prometheusrule.yaml as alerts.yaml makes it: its groups, comments
// and all, two spaces in under spec.
func generatedPrometheusRule(rules string) string {
	var b strings.Builder
	b.WriteString(prometheusRuleHeader)
	for line := range strings.Lines(rules[strings.Index(rules, "\ngroups:")+1:]) {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.String()
}

func TestPrometheusRuleCarriesTheRulesFile(t *testing.T) {
	rules := read(t, rulesFile)
	want := generatedPrometheusRule(rules)
	if *update {
		if err := os.WriteFile(ruleCRFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, ruleCRFile); got != want {
		t.Fatalf("%s differs from what %s makes: run `make prometheus-rule`", ruleCRFile, rulesFile)
	}
	// And it means the same once parsed (the indentation did not change a block scalar).
	var plain struct {
		Groups []any `json:"groups"`
	}
	var cr struct {
		Kind string `json:"kind"`
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(rules), &plain); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(want), &cr); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(plain.Groups)
	b, _ := json.Marshal(cr.Spec.Groups)
	if cr.Kind != "PrometheusRule" || len(plain.Groups) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("the PrometheusRule's groups differ from the rules file's")
	}
	kustomization := read(t, filepath.Join(promDir, "kustomization.yaml"))
	if !strings.Contains(kustomization, "- prometheusrule.yaml") {
		t.Errorf("config/prometheus/kustomization.yaml does not list prometheusrule.yaml")
	}
}

// promtool runs the Prometheus module's promtool (hack/tools/prometheus/go.mod). The first
// build takes minutes; go caches it after that.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	modfile, err := filepath.Abs(filepath.Join(root, "hack", "tools", "prometheus", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command("go", append([]string{"tool", "-modfile=" + modfile, "promtool"}, args...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	t.Logf("promtool %s (%v, including any build of it):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("promtool %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

func TestAlertRules(t *testing.T) {
	// The test cache does not see files a subprocess reads; reading them here does.
	for _, f := range []string{rulesFile, filepath.Join(promDir, "alerts_test.yaml")} {
		read(t, f)
	}
	promtool(t, "check", "rules", "config/prometheus/alerts.yaml")
	out := promtool(t, "test", "rules", "config/prometheus/alerts_test.yaml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules did not report SUCCESS")
	}
	// Every alert has a unit test that expects it to fire.
	tests := read(t, filepath.Join(promDir, "alerts_test.yaml"))
	for _, name := range alertNames(t) {
		if !regexp.MustCompile(`alertname: ` + name + `\n\s+exp_alerts:\n\s+- exp_labels`).MatchString(tests) {
			t.Errorf("alert %s has no test in which it fires", name)
		}
		if !regexp.MustCompile(`alertname: ` + name + `\n\s+exp_alerts: \[\]`).MatchString(tests) {
			t.Errorf("alert %s has no test in which it stays quiet", name)
		}
	}
}

func alertNames(t *testing.T) []string {
	t.Helper()
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal([]byte(read(t, rulesFile)), &rules); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
		}
	}
	return names
}

// TestDocsCoverAlertsAndHealthCheck: docs/monitoring.md has a section per alert (the rules'
// runbook_url points there) and shows the Argo CD health check exactly as config/argocd has it.
func TestDocsCoverAlertsAndHealthCheck(t *testing.T) {
	docs := read(t, docsFile)
	for _, name := range alertNames(t) {
		if !strings.Contains(docs, "\n### "+name+"\n") {
			t.Errorf("docs/monitoring.md has no section \"### %s\" (the alert's runbook_url)", name)
		}
	}
	lua := read(t, luaFile)
	var indented strings.Builder
	for line := range strings.Lines(lua) {
		if strings.TrimSpace(line) != "" {
			indented.WriteString("    ")
		}
		indented.WriteString(line)
	}
	for _, kind := range []string{"WeChatComponent", "WeChatAuthorizer"} {
		key := "  resource.customizations.health.platform.wechat-operator.dev_" + kind + ": |\n"
		if !strings.Contains(docs, key+indented.String()) {
			t.Errorf("docs/monitoring.md does not show config/argocd/health.lua under %q", strings.TrimSpace(key))
		}
	}
}

// query is one PromQL expression of the dashboard, with the legend that names its labels.
type query struct {
	panel, expr, legend string
}

func dashboardQueries(t *testing.T) []query {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr         string `json:"expr"`
				LegendFormat string `json:"legendFormat"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(read(t, dashboard)), &d); err != nil {
		t.Fatal(err)
	}
	var qs []query
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			qs = append(qs, query{panel: p.Title, expr: tg.Expr, legend: tg.LegendFormat})
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			// label_values(metric, label) lists the label's values of the metric.
			m := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`).FindStringSubmatch(q["query"].(string))
			if m == nil {
				t.Fatalf("variable %s: unexpected query %v", v.Name, q["query"])
			}
			qs = append(qs, query{panel: "variable " + v.Name, expr: m[1] + `{` + m[2] + `=~".*"}`})
		}
	}
	if len(qs) < 8 {
		t.Fatalf("only %d queries in the dashboard", len(qs))
	}
	return qs
}

// grafanaVariables are replaced by what Grafana would put there.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*")

// TestDashboardQueriesParse runs every dashboard query through Prometheus' parser (as
// recording rules checked by promtool).
func TestDashboardQueriesParse(t *testing.T) {
	var b strings.Builder
	b.WriteString("groups:\n- name: dashboard\n  rules:\n")
	for i, q := range dashboardQueries(t) {
		expr, _ := json.Marshal(grafanaVariables.Replace(q.expr))
		b.WriteString("  - record: dashboard:query" + strings.Repeat("x", i+1) + "\n    expr: " + string(expr) + "\n")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "dashboard-rules.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "rules", path)
}

// The metric names and labels a query uses. The queries are ours and simple: metrics are
// the identifiers with our prefixes, labels those in matchers, by (...) and the legend.
var (
	metricRe  = regexp.MustCompile(`\b(wechat_[a-z0-9_]+|controller_runtime_[a-z0-9_]+|workqueue_[a-z0-9_]+|leader_election_[a-z0-9_]+)\b`)
	matcherRe = regexp.MustCompile(`\{([^}]*)\}`)
	labelRe   = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	byRe      = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	legendRe  = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
)

func (q query) metrics() []string {
	seen := metricRe.FindAllString(q.expr, -1)
	slices.Sort(seen)
	return slices.Compact(seen)
}

func (q query) labels() []string {
	var labels []string
	for _, m := range matcherRe.FindAllStringSubmatch(q.expr, -1) {
		for _, l := range labelRe.FindAllStringSubmatch(m[1], -1) {
			labels = append(labels, l[1])
		}
	}
	for _, m := range byRe.FindAllStringSubmatch(q.expr, -1) {
		for l := range strings.SplitSeq(m[1], ",") {
			labels = append(labels, strings.TrimSpace(l))
		}
	}
	for _, m := range legendRe.FindAllStringSubmatch(q.legend, -1) {
		labels = append(labels, m[1])
	}
	slices.Sort(labels)
	return slices.Compact(labels)
}

// exposition is a scrape: metric name → the label names seen on its series.
type exposition map[string]map[string]bool

var (
	sampleRe    = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s`)
	sampleLabel = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)
)

func parseExposition(text string, into exposition) {
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if into[m[1]] == nil {
			into[m[1]] = map[string]bool{}
		}
		for _, l := range sampleLabel.FindAllStringSubmatch(m[2], -1) {
			into[m[1]][l[1]] = true
		}
	}
}

// queryProblems lists every query whose metrics the scrape lacks, or whose labels none of
// its metrics carries.
func queryProblems(qs []query, scraped exposition) []string {
	var problems []string
	for _, q := range qs {
		metrics := q.metrics()
		if len(metrics) == 0 {
			problems = append(problems, fmt.Sprintf("%s: no metric found in %q", q.panel, q.expr))
		}
		for _, m := range metrics {
			if scraped[m] == nil {
				problems = append(problems, fmt.Sprintf("%s: metric %s is not exported (query %q)", q.panel, m, q.expr))
			}
		}
		for _, l := range q.labels() {
			if !slices.ContainsFunc(metrics, func(m string) bool { return scraped[m][l] }) {
				problems = append(problems, fmt.Sprintf("%s: label %q is on none of %v (query %q, legend %q)", q.panel, l, metrics, q.expr, q.legend))
			}
		}
	}
	return problems
}

// TestQueryCheckerCatchesMistakes: the checker itself fails on a wrong name or label.
func TestQueryCheckerCatchesMistakes(t *testing.T) {
	scraped := exposition{}
	parseExposition(`# HELP wechat_api_requests_total x
wechat_api_requests_total{api="api_component_token",errcode="0"} 3
wechat_token_expiration_timestamp_seconds{kind="WeChatComponent",name="p",namespace="n"} 1.7e+09
`, scraped)
	for _, q := range []query{
		{panel: "typo in a name", expr: `rate(wechat_api_request_total[5m])`},
		{panel: "label not exported", expr: `sum by (endpoint) (rate(wechat_api_requests_total[5m]))`},
		{panel: "legend label not exported", expr: `wechat_token_expiration_timestamp_seconds`, legend: "{{component}}"},
	} {
		if len(queryProblems([]query{q}, scraped)) == 0 {
			t.Errorf("%s: the checker passed %q", q.panel, q.expr)
		}
	}
	fine := query{panel: "fine", expr: `sum by (api, errcode) (rate(wechat_api_requests_total{errcode!="0"}[5m]))`, legend: "{{api}}"}
	if p := queryProblems([]query{fine}, scraped); len(p) > 0 {
		t.Errorf("the checker failed a correct query: %v", p)
	}
}
