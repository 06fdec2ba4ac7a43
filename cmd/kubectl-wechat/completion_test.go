/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func names(cands []string) []string {
	var out []string
	for _, c := range cands {
		n, _, _ := strings.Cut(c, "\t")
		out = append(out, n)
	}
	return out
}

func TestComplete(t *testing.T) {
	cases := []struct {
		args      []string
		want      []string // exactly these, in this order
		contains  []string // at least these
		not       []string
		directive int
	}{
		{args: nil, want: []string{"auth-link", "status", "import", "export", "decrypt", "completion", "help"}, directive: compDirectiveNoFileComp},
		{args: []string{"st"}, want: []string{"status"}, directive: compDirectiveNoFileComp},
		{args: []string{"completion", ""}, want: []string{"bash", "zsh"}, directive: compDirectiveNoFileComp},
		{args: []string{"completion", "z"}, want: []string{"zsh"}, directive: compDirectiveNoFileComp},
		// Flags come from the commands' own flag sets.
		{args: []string{"auth-link", "--re"}, want: []string{"--redirect-uri"}, directive: compDirectiveNoFileComp},
		{args: []string{"auth-link", "demo", "-"}, contains: []string{"--redirect-uri", "--auth-type", "--biz-appid", "--mobile", "--qr", "--wechat-api-url", "--timeout", "--kubeconfig", "--context", "--namespace", "-n"},
			not: []string{"--all-namespaces", "-A", "--token"}, directive: compDirectiveNoFileComp},
		{args: []string{"status", "-"}, contains: []string{"--all-namespaces", "-A", "-n", "--timeout"}, not: []string{"--redirect-uri"}, directive: compDirectiveNoFileComp},
		{args: []string{"decrypt", "--"}, contains: []string{"--token", "--encoding-aes-key", "--app-id", "--timestamp", "--nonce", "--msg-signature"}, directive: compDirectiveNoFileComp},
		// Flag values.
		{args: []string{"auth-link", "--auth-type", ""}, want: []string{"1", "2", "3"}, directive: compDirectiveNoFileComp},
		{args: []string{"status", "--kubeconfig", ""}, want: nil, directive: compDirectiveDefault},
		{args: []string{"status", "-n", ""}, want: nil, directive: compDirectiveNoFileComp},
		{args: []string{"import", ""}, want: nil, directive: compDirectiveDefault},
		{args: []string{"import", "-"}, contains: []string{"--component", "--dry-run", "-n"}, not: []string{"-o"}, directive: compDirectiveNoFileComp},
		{args: []string{"export", "-o", ""}, want: nil, directive: compDirectiveDefault},
		{args: []string{"export", "--component", ""}, want: nil, directive: compDirectiveNoFileComp},
		{args: []string{"export", ""}, want: nil, directive: compDirectiveNoFileComp},
		// --mobile takes no value: the word after it is not its value.
		{args: []string{"auth-link", "--mobile", "--q"}, want: []string{"--qr"}, directive: compDirectiveNoFileComp},
		{args: []string{"nope", "-"}, want: nil, directive: compDirectiveNoFileComp},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cands, directive := complete(tc.args, noEnv)
			got := names(cands)
			if directive != tc.directive {
				t.Errorf("directive %d, want %d", directive, tc.directive)
			}
			if tc.contains == nil && !slices.Equal(got, tc.want) {
				t.Errorf("candidates %q, want %q", got, tc.want)
			}
			for _, c := range tc.contains {
				if !slices.Contains(got, c) {
					t.Errorf("candidates %q lack %s", got, c)
				}
			}
			for _, c := range tc.not {
				if slices.Contains(got, c) {
					t.Errorf("candidates %q offer %s, which this command does not take", got, c)
				}
			}
		})
	}
	// Flags carry their help for shells that show it.
	cands, _ := complete([]string{"auth-link", "--redirect-uri"}, noEnv)
	if len(cands) != 1 || !strings.Contains(cands[0], "\twhere WeChat redirects the administrator") {
		t.Errorf("candidates %q: want --redirect-uri with its usage text", cands)
	}
}

func TestCompletionCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runWith([]string{"__complete", "status", "--all"}, strings.NewReader(""), &out, &errOut, noEnv, deps{}); code != exitOK {
		t.Fatalf("__complete exit %d: %s", code, errOut.String())
	}
	if lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "--all-namespaces\t") || lines[1] != ":4" {
		t.Fatalf("__complete printed %q, want the candidate and the directive line :4", out.String())
	}
	for _, shell := range []string{"bash", "zsh"} {
		out.Reset()
		if code := runWith([]string{"completion", shell}, strings.NewReader(""), &out, &errOut, noEnv, deps{}); code != exitOK || !strings.Contains(out.String(), "__complete") {
			t.Fatalf("completion %s: exit %d, %q", shell, code, out.String())
		}
	}
	errOut.Reset()
	if code := runWith([]string{"completion", "fish"}, strings.NewReader(""), &out, &errOut, noEnv, deps{}); code != exitUsage || strings.Count(errOut.String(), "\n") != 1 {
		t.Fatalf("completion fish: exit %d, stderr %q; want 2 and one line", code, errOut.String())
	}
}

// buildPlugin builds kubectl-wechat into a directory that also holds
// plugins/kubectl_complete-wechat, as krew lays them out, and returns it.
func buildPlugin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "kubectl-wechat"), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	script, err := os.ReadFile(filepath.Join("..", "..", "plugins", "kubectl_complete-wechat"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kubectl_complete-wechat"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The scripts as a shell runs them: bash's function, and the executable kubectl runs for
// "kubectl wechat <TAB>".
func TestCompletionScripts(t *testing.T) {
	dir := buildPlugin(t)
	env := append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	bash := func(words string, cword int) []string {
		t.Helper()
		script := `source <(kubectl-wechat completion bash)
COMP_WORDS=(` + words + `); COMP_CWORD=` + string(rune('0'+cword)) + `
_kubectl_wechat
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	if got := bash(`kubectl-wechat auth-link --red`, 2); !slices.Equal(got, []string{"--redirect-uri"}) {
		t.Errorf("bash completes %q, want --redirect-uri", got)
	}
	if got := bash(`kubectl-wechat ""`, 1); !slices.Equal(got, []string{"auth-link", "status", "import", "export", "decrypt", "completion", "help"}) {
		t.Errorf("bash completes %q, want the commands", got)
	}

	// kubectl passes the words after the plugin's name, the one being completed last.
	cmd := exec.Command(filepath.Join(dir, "kubectl_complete-wechat"), "completion", "")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl_complete-wechat: %v\n%s", err, out)
	}
	if string(out) != "bash\nzsh\n:4\n" {
		t.Errorf("kubectl_complete-wechat completion '' printed %q", out)
	}
}
