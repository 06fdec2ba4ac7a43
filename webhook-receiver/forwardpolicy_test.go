/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

func TestForwardPolicyAllowsInClusterServicesAndListedHostsOnly(t *testing.T) {
	policy := newForwardPolicy("", []string{"127.0.0.1", "Apps.Example.NET", ".internal.example", "[fd00::1]"})
	for raw, want := range map[string]bool{
		"http://shop.team-a.svc:8080/wechat":                true,
		"https://shop.team-a.svc.cluster.local/wechat":      true,
		"http://shop.team-a.svc.cluster.local.:80/":         true,
		"http://SHOP.Team-A.svc/":                           true,
		"http://127.0.0.1:9999/":                            true, // listed
		"http://apps.example.net/x":                         true, // listed, case-insensitive
		"http://a.b.internal.example/":                      true, // listed domain
		"http://[fd00::1]:80/":                              true,
		"http://internal.example/":                          false, // the suffix, not a host under it
		"http://evil.example/":                              false,
		"http://shop.svc/":                                  false, // no namespace
		"http://a.shop.team-a.svc/":                         false, // not a Service name
		"http://shop.team-a.svc.evil.example/":              false,
		"http://shop.team-a.svc.cluster.local.evil.example": false,
		"http://169.254.169.254/latest/meta-data/":          false,
		"http://10.0.0.1/":                                  false, // an IP, even in-cluster
		"http://[::1]/":                                     false,
		"http://127.0.0.2/":                                 false,
		"http://user:pw@shop.team-a.svc/":                   false,
		"ftp://shop.team-a.svc/":                            false,
		"http://shop_x.team-a.svc/":                         false,
		"http:///path":                                      false,
	} {
		err := policy.check(raw)
		if (err == nil) != want {
			t.Errorf("check(%q) = %v, want allowed=%v", raw, err, want)
		}
	}
	if err := newForwardPolicy("corp.example", nil).check("http://shop.team-a.svc.corp.example/"); err != nil {
		t.Errorf("a custom cluster domain: %v", err)
	}
	if err := newForwardPolicy("corp.example", nil).check("http://shop.team-a.svc.cluster.local/"); err == nil {
		t.Error("the default cluster domain is allowed with a custom one set")
	}
}

func TestTheForwardDialerRefusesMetadataAndLoopbackAddresses(t *testing.T) {
	for address, allowed := range map[string]bool{
		"10.96.0.10:80":        true,
		"[fd00::10]:80":        true,
		"169.254.169.254:80":   false,
		"[fe80::1]:80":         false,
		"0.0.0.0:80":           false,
		"[::]:80":              false,
		"224.0.0.1:80":         false,
		"127.0.0.1:80":         false,
		"[::ffff:127.0.0.1]:1": false,
		"[::1]:80":             false,
	} {
		err := dialControl(false)("tcp", address, nil)
		if (err == nil) != allowed {
			t.Errorf("dial %s: %v, want allowed=%v", address, err, allowed)
		}
	}
	if err := dialControl(true)("tcp", "127.0.0.1:80", nil); err != nil {
		t.Errorf("loopback with loopback allowed: %v", err)
	}
	if err := dialControl(true)("tcp", "169.254.169.254:80", nil); !errors.Is(err, errForbiddenAddress) {
		t.Errorf("link-local with loopback allowed: %v", err)
	}
}

// An authorizer editor points forwarding at a host outside the cluster: the message is not
// sent, WeChat still gets its answer, and the refusal is counted and logged with the reason.
func TestAForwardToAnUnlistedHostIsNotSent(t *testing.T) {
	app := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, "success") })
	e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: app.srv.URL + "/wechat"}),
		func(_ *wechatv1alpha1.WeChatComponent, _ *corev1.Secret, o *Options) { o.ForwardAllowedHosts = nil })
	e.addAccount("shop", tAccountAppID, tAccountUser, nil) // a known account: only the policy stops the forward
	reply := e.send("text", "hello", "")
	if reply.StatusCode != http.StatusOK || !reply.Empty {
		t.Fatalf("answer HTTP %d %q, want success", reply.StatusCode, reply.Body)
	}
	if n := len(app.received()); n != 0 {
		t.Fatalf("the app outside the policy got %d requests", n)
	}
	if e.forwards(forwardRefused) != 1 {
		t.Fatalf("forwards refused = %v, want 1", e.forwards(forwardRefused))
	}
	u, _ := url.Parse(app.srv.URL)
	if logs := e.logs.String(); !strings.Contains(logs, "forwarding URL refused") || !strings.Contains(logs, u.Hostname()) {
		t.Fatalf("the refusal is not logged with its host: %s", logs)
	}
}

// The default client dials through the address check: a listed link-local host is still refused.
func TestTheDefaultForwardClientRefusesLinkLocalEvenWhenListed(t *testing.T) {
	client := newForwardClient(false)
	_, err := client.Get("http://169.254.169.254:1/latest/meta-data/")
	if err == nil || !errors.Is(err, errForbiddenAddress) {
		t.Fatalf("GET 169.254.169.254: %v, want the address refused", err)
	}
}

func TestRedactedURLDropsWhatMayCarryACredential(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"a query":           {"http://203.0.113.7:8080/wechat?token=s3cret", "http://203.0.113.7:8080/wechat"},
		"user information":  {"https://user:s3cret@app.example.com/x", "https://app.example.com/x"},
		"a fragment":        {"http://app.example.com/x#s3cret", "http://app.example.com/x"},
		"nothing to redact": {"http://app.team-a.svc:8080/wechat", "http://app.team-a.svc:8080/wechat"},
		"not a URL at all":  {"http://[::1%s3cret", "(not a URL)"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := redactedURL(tc.in); got != tc.want {
				t.Fatalf("redactedURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
