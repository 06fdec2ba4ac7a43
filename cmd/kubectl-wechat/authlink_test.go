/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"rsc.io/qr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/authstate"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

const (
	simAppID        = "wx3f8d3c2f4c2e6a1b"
	simAppSecret    = "appsecret-not-for-printing"
	simAuthorizerID = "wx0123456789abcdef"
	redirectURI     = "https://wx.example.com/wechat/wechat/platform/authorized?from=cli"
)

// fixedNow is the plugin's clock in these tests; the simulator runs on the real one.
var fixedNow = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// fakeCluster stands in for the API server: connect hands out its client and records how
// it was called.
type fakeCluster struct {
	c         client.Client
	contextNS string
	calls     int
	got       kubeOptions
	err       error
}

func (f *fakeCluster) deps() deps {
	return deps{
		connect: func(o kubeOptions) (client.Client, string, error) {
			f.calls++
			f.got = o
			return f.c, f.contextNS, f.err
		},
		now: func() time.Time { return fixedNow },
	}
}

func newFakeClient(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) client.Client {
	t.Helper()
	s, err := newScheme()
	if err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

// simEnv is a simulated WeChat with one component that holds a real component token.
type simEnv struct {
	sim   *wxsim.Simulator
	url   string
	token string
}

func newSimEnv(t *testing.T) simEnv {
	t.Helper()
	sim := wxsim.MustNew(wxsim.Options{Components: []wxsim.ComponentSeed{{
		AppID: simAppID, AppSecret: simAppSecret, Token: "msgtoken", EncodingAESKey: wxsim.GenerateEncodingAESKey(),
	}}})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	ticket, err := sim.IssueTicket(simAppID)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := wxapi.New(wxapi.Options{BaseURL: srv.URL}).ComponentToken(context.Background(), simAppID, simAppSecret, ticket)
	if err != nil {
		t.Fatal(err)
	}
	return simEnv{sim: sim, url: srv.URL, token: tok.AccessToken}
}

func component(ns, name, tokenSecret string) *wechatv1alpha1.WeChatComponent {
	return &wechatv1alpha1.WeChatComponent{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: wechatv1alpha1.WeChatComponentSpec{
			AppID:                simAppID,
			CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: name + "-credentials"},
		},
		Status: wechatv1alpha1.WeChatComponentStatus{TokenStatus: wechatv1alpha1.TokenStatus{TokenSecretName: tokenSecret}},
	}
}

func tokenSecret(ns, name, token string, expiresAt time.Time) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data: map[string][]byte{
			wechatv1alpha1.SecretKeyAccessToken: []byte(token),
			wechatv1alpha1.SecretKeyExpiresAt:   []byte(expiresAt.Format(time.RFC3339)),
			wechatv1alpha1.SecretKeyAppID:       []byte(simAppID),
		},
	}
}

// simMsgToken and simAESKey are the platform's message-verification Token and EncodingAESKey,
// in its credentials Secret.
const (
	simMsgToken = "msgtoken"
	simAESKey   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
)

func credentialsSecret(ns, name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data: map[string][]byte{"appSecret": []byte(simAppSecret), "token": []byte(simMsgToken),
			"encodingAESKey": []byte(simAESKey)},
	}
}

// checkRedirectURI checks that got is redirectURI with a state the receiver accepts for
// namespace/name until an hour from fixedNow, and not after.
func checkRedirectURI(t *testing.T, got, namespace, name string) {
	t.Helper()
	prefix := redirectURI + "&" + authstate.Param + "="
	if !strings.HasPrefix(got, prefix) {
		t.Fatalf("redirect_uri %q is not %q with a state appended", got, redirectURI)
	}
	u, _ := url.Parse(got)
	state := u.Query().Get(authstate.Param)
	key := authstate.Key(simMsgToken, simAESKey)
	if exp, err := authstate.Verify(key, namespace, name, state, fixedNow); err != nil || !exp.Equal(fixedNow.Add(authstate.DefaultLifetime)) {
		t.Fatalf("the receiver refuses the link's state: %v (expires %s)", err, exp)
	}
	if _, err := authstate.Verify(key, namespace, name, state, fixedNow.Add(authstate.DefaultLifetime)); err == nil {
		t.Fatal("the state is still accepted after its hour")
	}
	if _, err := authstate.Verify(key, namespace, name+"x", state, fixedNow); err == nil {
		t.Fatal("the state is accepted for another component")
	}
}

func runCLI(f *fakeCluster, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = runWith(args, strings.NewReader(""), &out, &errOut, noEnv, f.deps())
	return code, out.String(), errOut.String()
}

// parseLink checks the link's page and returns its query.
func parseLink(t *testing.T, link, path string) url.Values {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatalf("link %q: %v", link, err)
	}
	if u.Scheme != "https" || u.Host != "mp.weixin.qq.com" || u.Path != path {
		t.Fatalf("link %q is not https://mp.weixin.qq.com%s", link, path)
	}
	return u.Query()
}

func TestAuthLink(t *testing.T) {
	env := newSimEnv(t)
	objs := []client.Object{
		component("wechat", "platform", ""), // no status yet: the default Secret name
		tokenSecret("wechat", "platform-component-token", env.token, fixedNow.Add(time.Hour)),
		credentialsSecret("wechat", "platform-credentials"),
		component("other", "renamed", "renamed-token"),
		tokenSecret("other", "renamed-token", env.token, fixedNow.Add(time.Hour)),
		credentialsSecret("other", "renamed-credentials"),
	}
	noLeak := func(t *testing.T, outputs ...string) {
		t.Helper()
		for _, o := range outputs {
			for _, secret := range []string{env.token, simAppSecret, simMsgToken, simAESKey} {
				if strings.Contains(o, secret) {
					t.Fatalf("output leaks a secret: %q", o)
				}
			}
		}
	}

	t.Run("PC link by default, namespace of the kubeconfig context", func(t *testing.T) {
		f := &fakeCluster{c: newFakeClient(t, nil, objs...), contextNS: "wechat"}
		before := env.sim.Calls(wxapi.APICreatePreAuthCode, simAppID)
		code, stdout, stderr := runCLI(f, "auth-link", "platform", "--redirect-uri", redirectURI, "--wechat-api-url", env.url)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		noLeak(t, stdout, stderr)
		if f.calls != 1 || f.got.namespace != "" {
			t.Fatalf("connect called %d times with %+v", f.calls, f.got)
		}
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(lines) != 1 {
			t.Fatalf("stdout is not one link: %q", stdout)
		}
		q := parseLink(t, lines[0], "/cgi-bin/componentloginpage")
		if q.Get("component_appid") != simAppID || q.Get("auth_type") != "3" || q.Has("biz_appid") {
			t.Fatalf("link parameters %v", q)
		}
		checkRedirectURI(t, q.Get("redirect_uri"), "wechat", "platform")
		if got := env.sim.Calls(wxapi.APICreatePreAuthCode, simAppID) - before; got != 1 {
			t.Fatalf("%d api_create_preauthcode calls, want 1", got)
		}
		if !strings.Contains(stderr, "PC authorization link") || !strings.Contains(stderr, "expires in 10m") {
			t.Fatalf("stderr does not explain the link: %q", stderr)
		}
		// The code in the link is one WeChat issued: the authorization page accepts it, once.
		req := wxsim.AuthorizeRequest{ComponentAppID: simAppID, AuthorizerAppID: simAuthorizerID, PreAuthCode: q.Get("pre_auth_code")}
		if _, err := env.sim.Authorize(context.Background(), req); err != nil {
			t.Fatalf("the simulator rejects the link's pre_auth_code: %v", err)
		}
		if _, err := env.sim.Authorize(context.Background(), req); !errors.Is(err, wxsim.ErrInvalidPreAuth) {
			t.Fatalf("second use of the pre_auth_code: %v, want ErrInvalidPreAuth", err)
		}
	})

	t.Run("mobile link, flags after the component, -n, auth type and biz appid", func(t *testing.T) {
		f := &fakeCluster{c: newFakeClient(t, nil, objs...), contextNS: "wechat"}
		code, stdout, stderr := runCLI(f, "auth-link", "renamed", "-n", "other", "--redirect-uri", redirectURI,
			"--auth-type", "2", "--biz-appid", simAuthorizerID, "--mobile", "--wechat-api-url", env.url)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		noLeak(t, stdout, stderr)
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("stdout is not two links: %q", stdout)
		}
		pc := parseLink(t, lines[0], "/cgi-bin/componentloginpage")
		if !strings.HasSuffix(lines[1], "#wechat_redirect") {
			t.Fatalf("mobile link %q lacks #wechat_redirect", lines[1])
		}
		m := parseLink(t, lines[1], "/safe/bindcomponent")
		for k, want := range map[string]string{
			"action": "bindcomponent", "no_scan": "1", "component_appid": simAppID, "redirect_uri": pc.Get("redirect_uri"),
			"auth_type": "2", "biz_appid": simAuthorizerID, "pre_auth_code": pc.Get("pre_auth_code"),
		} {
			if m.Get(k) != want {
				t.Fatalf("mobile link %s = %q, want %q", k, m.Get(k), want)
			}
		}
		checkRedirectURI(t, m.Get("redirect_uri"), "other", "renamed")
		if pc.Get("auth_type") != "2" || pc.Get("biz_appid") != simAuthorizerID {
			t.Fatalf("PC link parameters %v", pc)
		}
		if !strings.Contains(stderr, "Mobile authorization link") {
			t.Fatalf("stderr %q", stderr)
		}
		req := wxsim.AuthorizeRequest{ComponentAppID: simAppID, AuthorizerAppID: simAuthorizerID, PreAuthCode: m.Get("pre_auth_code")}
		if _, err := env.sim.Authorize(context.Background(), req); err != nil {
			t.Fatalf("the simulator rejects the link's pre_auth_code: %v", err)
		}
	})

	t.Run("QR code of the mobile link", func(t *testing.T) {
		f := &fakeCluster{c: newFakeClient(t, nil, objs...), contextNS: "wechat"}
		code, stdout, stderr := runCLI(f, "auth-link", "--qr", "platform", "--redirect-uri", redirectURI, "--wechat-api-url", env.url)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		noLeak(t, stdout, stderr)
		pcLine, art, _ := strings.Cut(stdout, "\n")
		pc := parseLink(t, pcLine, "/cgi-bin/componentloginpage")
		if n := strings.Count(art, "\n"); n < 15 {
			t.Fatalf("QR code has %d lines: %q", n, art)
		}
		if strings.Contains(art, "http") || strings.Contains(art, pc.Get("pre_auth_code")) {
			t.Fatalf("the QR code part holds text: %q", art)
		}
		mobile := wxapi.AuthorizationLink{
			ComponentAppID: simAppID, PreAuthCode: pc.Get("pre_auth_code"), RedirectURI: pc.Get("redirect_uri"), AuthType: wxapi.AuthTypeBoth,
		}.MobileURL()
		checkQR(t, art, mobile)
		if !strings.Contains(stderr, "scan it with WeChat") {
			t.Fatalf("stderr %q", stderr)
		}
	})
}

// checkQR decodes the half-block drawing in art (light modules drawn, dark ones blank) and
// checks it is the QR code of text with a quiet zone of at least 4 modules.
func checkQR(t *testing.T, art, text string) {
	t.Helper()
	want, err := qr.Encode(text, qrLevel)
	if err != nil {
		t.Fatal(err)
	}
	var grid [][]bool // grid[y][x]: dark module
	for _, line := range strings.Split(strings.TrimSuffix(art, "\n"), "\n") {
		var top, bottom []bool
		for _, r := range line {
			switch r {
			case '█':
				top, bottom = append(top, false), append(bottom, false)
			case '▀':
				top, bottom = append(top, false), append(bottom, true)
			case '▄':
				top, bottom = append(top, true), append(bottom, false)
			case ' ':
				top, bottom = append(top, true), append(bottom, true)
			default:
				t.Fatalf("unexpected rune %q in the QR code", r)
			}
		}
		grid = append(grid, top, bottom)
	}
	dark := func(x, y int) (bool, bool) {
		if y < 0 || y >= len(grid) || x < 0 || x >= len(grid[y]) {
			return false, false
		}
		return grid[y][x], true
	}
	// The first dark module is the top-left corner of the finder pattern.
	x0, y0 := -1, -1
	for y := 0; y < len(grid) && x0 < 0; y++ {
		for x := range grid[y] {
			if grid[y][x] {
				x0, y0 = x, y
				break
			}
		}
	}
	if x0 < 0 {
		t.Fatalf("no dark module in %q", art)
	}
	const quiet = 4
	for y := -quiet; y < want.Size+quiet; y++ {
		for x := -quiet; x < want.Size+quiet; x++ {
			got, ok := dark(x0+x, y0+y)
			if !ok {
				t.Fatalf("module (%d,%d) is outside the drawing: the quiet zone is too small", x, y)
			}
			if got != want.Black(x, y) {
				t.Fatalf("module (%d,%d) is dark=%v, want %v", x, y, got, want.Black(x, y))
			}
		}
	}
}

func TestAuthLinkErrors(t *testing.T) {
	env := newSimEnv(t)
	good := func() []client.Object {
		return []client.Object{
			component("wechat", "platform", "platform-component-token"),
			tokenSecret("wechat", "platform-component-token", env.token, fixedNow.Add(time.Hour)),
			credentialsSecret("wechat", "platform-credentials"),
		}
	}
	base := []string{"auth-link", "platform", "--redirect-uri", redirectURI, "--wechat-api-url", env.url}
	noTokenSecret := good()[:1]
	emptyToken := append(good()[:1], tokenSecret("wechat", "platform-component-token", "", fixedNow.Add(time.Hour)))
	expired := append(good()[:1], tokenSecret("wechat", "platform-component-token", env.token, fixedNow.Add(-3*time.Minute)))
	unknownToken := append(good()[:1], tokenSecret("wechat", "platform-component-token", strings.Repeat("x", 96), fixedNow.Add(time.Hour)),
		credentialsSecret("wechat", "platform-credentials"))
	noCredentials := good()[:2]
	noMsgToken := append(good()[:2], &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "wechat", Name: "platform-credentials"},
		Data: map[string][]byte{"appSecret": []byte(simAppSecret), "token": []byte(simMsgToken)}})
	noCRD := &interceptor.Funcs{Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
		return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: wechatv1alpha1.GroupVersion.Group, Kind: "WeChatComponent"}}
	}}
	forbidden := &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*corev1.Secret); ok {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, key.Name, errors.New("user cannot get"))
		}
		return c.Get(ctx, key, obj, opts...)
	}}

	cases := []struct {
		name    string
		args    []string
		objs    []client.Object
		funcs   *interceptor.Funcs
		connErr error
		fault   *wxsim.Fault
		code    int
		want    []string // substrings of the one stderr line
		connect bool     // the cluster was contacted
	}{
		{name: "component not found", args: append([]string{"auth-link", "nope"}, base[2:]...), objs: good(), code: 1,
			want: []string{`WeChatComponent "nope" in namespace "wechat" not found`}, connect: true},
		{name: "wrong namespace", args: append(base, "-n", "elsewhere"), objs: good(), code: 1,
			want: []string{`WeChatComponent "platform" in namespace "elsewhere" not found`}, connect: true},
		{name: "token Secret missing", args: base, objs: noTokenSecret, code: 1,
			want: []string{"the component has no token yet", "check `kubectl get wxc platform -n wechat`"}, connect: true},
		{name: "token Secret empty", args: base, objs: emptyToken, code: 1,
			want: []string{"the component has no token yet", "kubectl get wxc platform"}, connect: true},
		{name: "token expired", args: base, objs: expired, code: 1,
			want: []string{"token expired 3m ago", "kubectl get wxc platform"}, connect: true},
		{name: "token unknown to WeChat", args: base, objs: unknownToken, code: 1,
			want: []string{"api_create_preauthcode", "errcode 4", "retry in a minute"}, connect: true},
		{name: "credentials Secret missing (the Token signs the state)", args: base, objs: noCredentials, code: 1,
			want: []string{`Secret "platform-credentials" in namespace "wechat" (the credentials, whose Token and EncodingAESKey sign the link's state) not found`}, connect: true},
		{name: "no EncodingAESKey in the credentials", args: base, objs: noMsgToken, code: 1,
			want: []string{`the credentials Secret "platform-credentials" lacks token or encodingAESKey`}, connect: true},
		{name: "redirect uri that already carries a state", args: []string{"auth-link", "platform", "--redirect-uri", redirectURI + "&state=mine"},
			code: 2, want: []string{"must carry neither state="}},
		{name: "IP not whitelisted", args: base, objs: good(), fault: &wxsim.Fault{API: wxapi.APICreatePreAuthCode, ErrCode: wxapi.CodeIPNotWhitelisted},
			code: 1, want: []string{"errcode 61004", "IP whitelist"}, connect: true},
		{name: "quota", args: base, objs: good(), fault: &wxsim.Fault{API: wxapi.APICreatePreAuthCode, ErrCode: wxapi.CodeQuotaReached},
			code: 1, want: []string{"wechat api_create_preauthcode: errcode 45009"}, connect: true},
		{name: "CRDs not installed", args: base, funcs: noCRD, code: 1, want: []string{"CRDs", "not installed"}, connect: true},
		{name: "Secret forbidden", args: base, objs: good(), funcs: forbidden, code: 1,
			want: []string{`reading Secret "platform-component-token" in namespace "wechat"`, "forbidden"}, connect: true},
		{name: "kubeconfig error", args: base, connErr: errors.New("loading kubeconfig: no configuration has been provided"), code: 1,
			want: []string{"loading kubeconfig"}, connect: true},

		{name: "no component", args: []string{"auth-link", "--redirect-uri", redirectURI}, code: 2, want: []string{"COMPONENT is required"}},
		{name: "two components", args: append(base, "extra"), code: 2, want: []string{`unexpected argument "extra"`}},
		{name: "no redirect uri", args: []string{"auth-link", "platform"}, code: 2, want: []string{"--redirect-uri is required"}},
		{name: "relative redirect uri", args: []string{"auth-link", "platform", "--redirect-uri", "/authorized"}, code: 2, want: []string{"absolute http or https URL"}},
		{name: "auth type", args: append(base, "--auth-type", "4"), code: 2, want: []string{"--auth-type must be 1"}},
		{name: "auth type not a number", args: append(base, "--auth-type", "both"), code: 2, want: []string{"invalid value"}},
		{name: "biz appid", args: append(base, "--biz-appid", "gh_123"), code: 2, want: []string{"is not an appid"}},
		{name: "api url", args: append(base, "--wechat-api-url", "api.weixin.qq.com"), code: 2, want: []string{"--wechat-api-url must be"}},
		{name: "unknown flag", args: append(base, "--all-namespaces"), code: 2, want: []string{"not defined"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				env.sim.AddFault(*tc.fault)
				t.Cleanup(env.sim.ClearFaults)
			}
			f := &fakeCluster{c: newFakeClient(t, tc.funcs, tc.objs...), contextNS: "wechat", err: tc.connErr}
			code, stdout, stderr := runCLI(f, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			if stdout != "" {
				t.Fatalf("stdout not empty on failure: %q", stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "kubectl-wechat auth-link: ") {
				t.Fatalf("stderr is not one line: %q", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Fatalf("stderr %q does not mention %q", stderr, w)
				}
			}
			if strings.Contains(stderr, env.token) || strings.Contains(stderr, "preauthcode@@@") {
				t.Fatalf("stderr leaks a secret: %q", stderr)
			}
			if (f.calls > 0) != tc.connect {
				t.Fatalf("cluster contacted %d times", f.calls)
			}
		})
	}
}
