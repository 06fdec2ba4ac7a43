/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeKubeconfig writes a kubeconfig with two contexts: "team" (current, namespace
// team-a) and "bare" (no namespace), both for server.
func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config")
	cfg := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: ` + server + `
users:
- name: u
  user:
    token: kube-bearer-token
contexts:
- name: team
  context: {cluster: c, user: u, namespace: team-a}
- name: bare
  context: {cluster: c, user: u}
current-context: team
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKubeconfig(t *testing.T) {
	path := writeKubeconfig(t, "https://203.0.113.7:6443")
	env := func(k string) string {
		if k == "KUBECONFIG" {
			return path
		}
		return ""
	}
	cases := []struct {
		name   string
		opts   kubeOptions
		getenv func(string) string
		ns     string
	}{
		{"--kubeconfig, current context's namespace", kubeOptions{kubeconfig: path}, noEnv, "team-a"},
		{"$KUBECONFIG", kubeOptions{}, env, "team-a"},
		{"$KUBECONFIG with missing files first", kubeOptions{}, func(k string) string {
			return filepath.Join(t.TempDir(), "none") + string(filepath.ListSeparator) + env(k)
		}, "team-a"},
		{"--context without a namespace", kubeOptions{kubeconfig: path, context: "bare"}, noEnv, "default"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ns, err := loadKubeconfig(tc.opts, tc.getenv)
			if err != nil {
				t.Fatal(err)
			}
			if ns != tc.ns || cfg.Host != "https://203.0.113.7:6443" || cfg.BearerToken != "kube-bearer-token" {
				t.Fatalf("namespace %q, host %q", ns, cfg.Host)
			}
			if got := namespaceFor(tc.opts, ns); got != tc.ns {
				t.Fatalf("namespaceFor = %q", got)
			}
			if got := namespaceFor(kubeOptions{namespace: "flag"}, ns); got != "flag" {
				t.Fatalf("-n does not win: %q", got)
			}
		})
	}
	for name, opts := range map[string]kubeOptions{
		"missing --kubeconfig": {kubeconfig: filepath.Join(t.TempDir(), "missing")},
		"unknown --context":    {kubeconfig: path, context: "nope"},
	} {
		if _, _, err := loadKubeconfig(opts, noEnv); err == nil || !strings.HasPrefix(err.Error(), "loading kubeconfig: ") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" { // else the in-cluster config is used
		missing := func(string) string { return filepath.Join(t.TempDir(), "missing") }
		if _, _, err := loadKubeconfig(kubeOptions{}, missing); err == nil || !strings.Contains(err.Error(), "none found: use --kubeconfig, set $KUBECONFIG") {
			t.Errorf("no kubeconfig at all: error %v", err)
		}
	}
}

// TestRealConnection runs the commands through the real kubeconfig loading and client,
// against an address where nothing listens: they fail with one line, not a hang or a
// stack of logs.
func TestRealConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	path := writeKubeconfig(t, "http://"+addr)
	for _, args := range [][]string{
		{"status", "--kubeconfig", path},
		{"auth-link", "platform", "--kubeconfig", path, "--redirect-uri", redirectURI, "--wechat-api-url", "http://" + addr},
	} {
		var stdout, stderr bytes.Buffer
		code := run(args, strings.NewReader(""), &stdout, &stderr, noEnv)
		if code != exitFailure || stdout.Len() != 0 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), addr) {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, stdout.String(), stderr.String())
		}
		if strings.Contains(stderr.String(), "kube-bearer-token") {
			t.Fatalf("stderr leaks the kubeconfig token: %q", stderr.String())
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ns := fs.String("n", "", "")
	b := fs.Bool("b", false, "")
	pos, err := parseInterspersed(fs, []string{"one", "-n", "ns", "two", "-b", "--", "-three", "-n"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pos, []string{"one", "two", "-three", "-n"}) || *ns != "ns" || !*b {
		t.Fatalf("positional %q, n %q, b %v", pos, *ns, *b)
	}
	if _, err := parseInterspersed(fs, []string{"one", "-x"}); err == nil {
		t.Fatal("unknown flag after a positional argument accepted")
	}
}

func TestSubcommandHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"kubectl-wechat auth-link COMPONENT", "kubectl-wechat status [-n NS | -A]", "kubectl-wechat decrypt", "COMMAND --help"}},
		{[]string{"auth-link", "--help"}, []string{"Usage: kubectl-wechat auth-link COMPONENT --redirect-uri URL", "-redirect-uri", "-auth-type", "-biz-appid", "-mobile", "-qr", "-kubeconfig", "-wechat-api-url", "-namespace", "/wechat/NAMESPACE/COMPONENT/authorized"}},
		{[]string{"auth-link", "platform", "-h"}, []string{"Usage: kubectl-wechat auth-link"}},
		{[]string{"status", "--help"}, []string{"Usage: kubectl-wechat status [-n NAMESPACE | -A]", "-all-namespaces", "-kubeconfig", "never a Secret"}},
	} {
		f := &fakeCluster{}
		code, stdout, stderr := runCLI(f, tc.args...)
		if code != 0 || stderr != "" || f.calls != 0 {
			t.Fatalf("%v: exit %d, stderr %q, connected %d", tc.args, code, stderr, f.calls)
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout, w) {
				t.Fatalf("%v: help lacks %q:\n%s", tc.args, w, stdout)
			}
		}
	}
}
