/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refreshtokens"
)

// Tokens in these tests are spelled so that any leak is found by one substring search.
const leak = "SECRET"

const (
	appA = "wx00000000000000a1"
	appB = "wx00000000000000b2"
	appC = "wx00000000000000c3"
	appD = "wx00000000000000d4"
)

func importComponent(ns string) *wechatv1alpha1.WeChatComponent {
	c := &wechatv1alpha1.WeChatComponent{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plat"},
		Spec:       wechatv1alpha1.WeChatComponentSpec{AppID: simAppID},
	}
	c.Spec.Authorizers.Template.Labels = map[string]string{"team": "shop"}
	return c
}

func runPlugin(t *testing.T, f *fakeCluster, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runWith(args, strings.NewReader(stdin), &out, &errOut, noEnv, f.deps())
	return code, out.String(), errOut.String()
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	ns := "wechat"
	// appA already has an authorizer under a name of the user's choosing; appB's import
	// Secret name is taken by a Secret of someone else.
	custom := &wechatv1alpha1.WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-shop"},
		Spec:       wechatv1alpha1.WeChatAuthorizerSpec{ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "plat"}, AppID: appA},
	}
	foreign := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: refreshtokens.ImportSecretName("plat-" + appB), Labels: map[string]string{"owner": "db-team"}},
		Data:       map[string][]byte{"password": []byte("db-password")},
	}
	c := newFakeClient(t, nil, importComponent(ns), custom, foreign)
	f := &fakeCluster{c: c, contextNS: "default"}
	in := "# from redis\n" + appA + ",ra" + leak + "\n" + appB + ",rb" + leak + "\n" + appC + ",rc" + leak + "\n"

	// --dry-run: the same report, nothing written.
	code, out, errOut := runPlugin(t, f, in, "import", "-", "--component", "plat", "-n", ns, "--dry-run")
	if code != exitOK || !strings.Contains(out, "would create WeChatAuthorizer plat-"+appC) ||
		!strings.Contains(out, "would create 2, skipped 1, failed 0") || !strings.Contains(out, "skipped "+appA+": WeChatAuthorizer my-shop exists") {
		t.Fatalf("dry run: %d\n%s%s", code, out, errOut)
	}
	var auths wechatv1alpha1.WeChatAuthorizerList
	if err := c.List(ctx, &auths); err != nil || len(auths.Items) != 1 {
		t.Fatalf("dry run created authorizers: %d, %v", len(auths.Items), err)
	}

	code, out, errOut = runPlugin(t, f, in, "import", "-", "--component", "plat", "-n", ns)
	if strings.Contains(out+errOut, leak) {
		t.Fatalf("output shows a refresh token:\n%s%s", out, errOut)
	}
	if code != exitFailure || !strings.Contains(out, "created 1, skipped 1, failed 1") ||
		!strings.Contains(out, "failed "+appB+": the Secret plat-"+appB+"-import exists and was not created by kubectl wechat import") {
		t.Fatalf("import: %d\n%s%s", code, out, errOut)
	}
	// The foreign Secret is untouched, and no authorizer was made for appB.
	got := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(foreign), got); err != nil || !maps.EqualFunc(got.Data, foreign.Data, bytes.Equal) ||
		len(got.Annotations) != 0 || !maps.Equal(got.Labels, foreign.Labels) {
		t.Fatalf("foreign Secret changed: %+v, %v", got, err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "plat-" + appB}, &wechatv1alpha1.WeChatAuthorizer{}); !apierrors.IsNotFound(err) {
		t.Fatalf("authorizer for appB: %v", err)
	}
	// appA: left alone, no Secret.
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "plat-" + appA + "-import"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Secret for the skipped appA: %v", err)
	}
	assertImported(t, c, ns, "plat", appC, "rc"+leak)

	// Re-run after the foreign Secret is gone: appC is skipped, appB is created.
	if err := c.Delete(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runPlugin(t, f, in, "import", "-", "--component", "plat", "-n", ns)
	if code != exitOK || !strings.Contains(out, "created 1, skipped 2, failed 0") || !strings.Contains(out, "skipped "+appC+": WeChatAuthorizer plat-"+appC+" exists") {
		t.Fatalf("re-run: %d\n%s%s", code, out, errOut)
	}
	assertImported(t, c, ns, "plat", appB, "rb"+leak)
}

// assertImported checks the WeChatAuthorizer and the Secret import made for appID.
func assertImported(t *testing.T, c client.Client, ns, component, appID, token string) {
	t.Helper()
	ctx := context.Background()
	a := &wechatv1alpha1.WeChatAuthorizer{}
	name := wechatv1alpha1.AutoCreatedAuthorizerName(component, appID)
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, a); err != nil {
		t.Fatalf("authorizer %s: %v", name, err)
	}
	ref := a.Spec.RefreshTokenSecretRef
	if a.Spec.AppID != appID || a.Spec.ComponentRef.Name != component || ref == nil || ref.Name != name+"-import" || ref.Key != "" ||
		a.Labels[wechatv1alpha1.LabelComponent] != component || a.Labels[wechatv1alpha1.LabelManagedBy] != wechatv1alpha1.ManagedByValue {
		t.Fatalf("authorizer %s: %+v %+v", name, a.ObjectMeta, a.Spec)
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, s); err != nil {
		t.Fatalf("Secret %s: %v", ref.Name, err)
	}
	if string(s.Data[wechatv1alpha1.DefaultRefreshTokenKey]) != token || len(s.Data) != 1 ||
		s.Annotations[wechatv1alpha1.AnnotationUsableBy] != "WeChatAuthorizer/"+name ||
		s.Labels[wechatv1alpha1.LabelManagedBy] != wechatv1alpha1.ManagedByPluginValue || s.Labels[wechatv1alpha1.LabelComponent] != component {
		t.Fatalf("Secret %s: %+v", ref.Name, s.ObjectMeta)
	}
}

func TestImportUsageErrors(t *testing.T) {
	f := &fakeCluster{c: newFakeClient(t, nil, importComponent("wechat")), contextNS: "wechat"}
	cases := []struct {
		name, stdin string
		args        []string
		code        int
		want        string
	}{
		{"no file", "", []string{"import", "--component", "plat"}, exitUsage, "want one argument"},
		{"no component", "", []string{"import", "-"}, exitUsage, "--component is required"},
		{"bad lines, nothing imported", appA + ",r" + leak + "\n" + leak + "," + appB + "\n", []string{"import", "-", "--component", "plat"}, exitFailure,
			"-: line 2: the appid is not"},
		{"empty input", "# nothing\n", []string{"import", "-", "--component", "plat"}, exitFailure, "no accounts in -"},
		{"missing component", appA + ",r" + leak, []string{"import", "-", "--component", "nope"}, exitFailure, `WeChatComponent "nope" in namespace "wechat" not found`},
		{"missing file", "", []string{"import", filepath.Join(t.TempDir(), "none"), "--component", "plat"}, exitFailure, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runPlugin(t, f, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Contains(out+errOut, leak) {
				t.Fatalf("%d\nstdout %q\nstderr %q", code, out, errOut)
			}
		})
	}
	var auths wechatv1alpha1.WeChatAuthorizerList
	if err := f.c.List(context.Background(), &auths); err != nil || len(auths.Items) != 0 {
		t.Fatalf("authorizers created: %d, %v", len(auths.Items), err)
	}
}

// stateSecret is a state Secret as the manager writes it (controllers/wechatauthorizer_state.go).
func stateSecret(ns, authorizer, appID, refreshToken string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: wechatv1alpha1.StateSecretName(authorizer), Labels: map[string]string{
			wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue, wechatv1alpha1.LabelAuthorizer: authorizer}},
		Data: map[string][]byte{
			wechatv1alpha1.SecretKeyRefreshToken: []byte(refreshToken),
			wechatv1alpha1.SecretKeyAppID:        []byte(appID),
			"access_token":                       []byte("access-token-not-exported"),
		},
	}
}

func authorizer(ns, name, component, appID string) *wechatv1alpha1.WeChatAuthorizer {
	return &wechatv1alpha1.WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       wechatv1alpha1.WeChatAuthorizerSpec{ComponentRef: wechatv1alpha1.LocalObjectReference{Name: component}, AppID: appID},
	}
}

func exportObjects(ns string) []client.Object {
	return []client.Object{
		importComponent(ns),
		authorizer(ns, "shop", "plat", appB), stateSecret(ns, "shop", appB, "rb"+leak),
		authorizer(ns, "plat-"+appA, "plat", appA), stateSecret(ns, "plat-"+appA, appA, "ra"+leak),
		authorizer(ns, "fresh", "plat", appC),                                               // never authorized: no state Secret
		authorizer(ns, "moved", "plat", appD), stateSecret(ns, "moved", appB, "stale"+leak), // state of another appid
		authorizer(ns, "other", "other-plat", "wx00000000000000e5"), stateSecret(ns, "other", "wx00000000000000e5", "re"+leak),
	}
}

func TestExport(t *testing.T) {
	f := &fakeCluster{c: newFakeClient(t, nil, exportObjects("wechat")...), contextNS: "wechat"}
	code, out, errOut := runPlugin(t, f, "", "export", "--component", "plat")
	lines := nonComment(out)
	want := []string{appA + ",ra" + leak, appB + ",rb" + leak}
	if code != exitOK || strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("export: %d\n%s%s", code, out, errOut)
	}
	for _, w := range []string{"skipped WeChatAuthorizer fresh (" + appC + "): no refresh token yet (no Secret fresh-state)",
		"skipped WeChatAuthorizer moved (" + appD + "): no refresh token yet in Secret moved-state"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	if strings.Contains(out+errOut, "access-token") || strings.Contains(errOut, leak) {
		t.Fatalf("leaked:\n%s%s", out, errOut)
	}
	// Without --component: all components' accounts.
	if code, out, _ := runPlugin(t, f, "", "export"); code != exitOK || len(nonComment(out)) != 3 {
		t.Fatalf("export all: %d\n%s", code, out)
	}
}

func TestExportRefusesAmbiguousAppID(t *testing.T) {
	objs := append(exportObjects("wechat"), authorizer("wechat", "twice", "other-plat", appA), stateSecret("wechat", "twice", appA, "r2"+leak))
	f := &fakeCluster{c: newFakeClient(t, nil, objs...), contextNS: "wechat"}
	code, out, errOut := runPlugin(t, f, "", "export")
	if code != exitFailure || out != "" || !strings.Contains(errOut, "appid "+appA+" is authorized to components") {
		t.Fatalf("%d\n%s%s", code, out, errOut)
	}
}

func TestExportFile(t *testing.T) {
	f := &fakeCluster{c: newFakeClient(t, nil, exportObjects("wechat")...), contextNS: "wechat"}
	path := filepath.Join(t.TempDir(), "tokens.csv")
	code, out, errOut := runPlugin(t, f, "", "export", "--component", "plat", "-o", path)
	if code != exitOK || out != "" || !strings.Contains(errOut, "exported 2 accounts to "+path) {
		t.Fatalf("%d\n%s%s", code, out, errOut)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v", st.Mode(), err)
	}
	first, _ := os.ReadFile(path)
	if len(nonComment(string(first))) != 2 {
		t.Fatalf("file:\n%s", first)
	}
	// An existing file is refused, and left as it was, without --force.
	if err := os.WriteFile(path, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := f.calls
	code, _, errOut = runPlugin(t, f, "", "export", "-o", path)
	if b, _ := os.ReadFile(path); code != exitFailure || string(b) != "keep\n" || !strings.Contains(errOut, "exists: use --force") || f.calls != calls {
		t.Fatalf("overwrote without --force: %d %q %s", code, b, errOut)
	}
	code, _, errOut = runPlugin(t, f, "", "export", "--component", "plat", "-o", path, "--force")
	st, _ = os.Stat(path)
	if b, _ := os.ReadFile(path); code != exitOK || len(nonComment(string(b))) != 2 || st.Mode().Perm() != 0o600 {
		t.Fatalf("--force: %d %v %q %s", code, st.Mode(), b, errOut)
	}
	if code, _, errOut := runPlugin(t, f, "", "export", "--force"); code != exitUsage || !strings.Contains(errOut, "--force needs -o") {
		t.Fatalf("--force without -o: %d %s", code, errOut)
	}
}

// TestExportImportRoundTrip exports a namespace's accounts and imports them into a fresh
// namespace: each imported Secret holds the refresh token the state Secret held.
func TestExportImportRoundTrip(t *testing.T) {
	objs := append(exportObjects("old"), importComponent("new"))
	f := &fakeCluster{c: newFakeClient(t, nil, objs...), contextNS: "old"}
	code, exported, errOut := runPlugin(t, f, "", "export", "--component", "plat", "-n", "old")
	if code != exitOK {
		t.Fatalf("export: %d %s", code, errOut)
	}
	code, out, errOut := runPlugin(t, f, exported, "import", "-", "--component", "plat", "-n", "new")
	if code != exitOK || !strings.Contains(out, "created 2, skipped 0, failed 0") {
		t.Fatalf("import: %d\n%s%s", code, out, errOut)
	}
	assertImported(t, f.c, "new", "plat", appA, "ra"+leak)
	assertImported(t, f.c, "new", "plat", appB, "rb"+leak)
}

func TestImportExportHelp(t *testing.T) {
	f := &fakeCluster{}
	for cmd, want := range map[string][]string{
		"import": {"never a token", "usable-by", "-dry-run", "-component"},
		"export": {"as sensitive as the refresh tokens", "RBAC", "0600", "-force"},
	} {
		code, out, _ := runPlugin(t, f, "", cmd, "--help")
		for _, w := range want {
			if code != exitOK || !strings.Contains(out, w) {
				t.Errorf("%s --help lacks %q", cmd, w)
			}
		}
	}
	if f.calls != 0 {
		t.Fatal("--help connected")
	}
}

func nonComment(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}
