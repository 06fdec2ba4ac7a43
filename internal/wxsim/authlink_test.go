/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestAnAuthorizationLinkOpensOnceAndOnlyFromTheAuthorizationDomain(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.componentToken(t)
	link := func(page, extra string) string {
		m := e.post(t, APICreatePreAuthCode, tok, map[string]any{"component_appid": compID})
		wantErrcode(t, m, 0)
		q := "component_appid=" + compID + "&pre_auth_code=" + url.QueryEscape(str(m, "pre_auth_code")) +
			"&redirect_uri=" + url.QueryEscape("https://wx.platform.example/wechat/ns/c/authorized?state=v1.x") + extra
		if page == "mobile" {
			return "https://mp.weixin.qq.com/safe/bindcomponent?action=bindcomponent&no_scan=1&" + q + "#wechat_redirect"
		}
		return "https://mp.weixin.qq.com/cgi-bin/componentloginpage?" + q
	}
	const referer = "https://wx.platform.example/wechat/ns/c/authorize"

	pc := link("pc", "&auth_type=1")
	for name, tc := range map[string]struct {
		req  OpenLinkRequest
		want error
	}{
		"no Referer":                  {OpenLinkRequest{Link: pc, AuthorizerAppID: authzID}, ErrRefererDomain},
		"a Referer on another host":   {OpenLinkRequest{Link: pc, Referer: "https://evil.example/", AuthorizerAppID: authzID}, ErrRefererDomain},
		"a mini program, auth_type 1": {OpenLinkRequest{Link: pc, Referer: referer, AuthorizerAppID: authzID, MiniProgram: true}, ErrWrongAccountType},
		"not WeChat's page":           {OpenLinkRequest{Link: strings.Replace(pc, "mp.weixin.qq.com", "mp.example", 1), Referer: referer, AuthorizerAppID: authzID}, ErrNotAuthorizationLink},
	} {
		if _, err := e.sim.OpenAuthorizationLink(t.Context(), tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// The refusals above did not spend the code.
	res, err := e.sim.OpenAuthorizationLink(t.Context(), OpenLinkRequest{Link: pc, Referer: referer, AuthorizerAppID: authzID})
	if err != nil {
		t.Fatal(err)
	}
	redirect, _ := url.Parse(res.RedirectURL)
	if redirect.Host != "wx.platform.example" || redirect.Query().Get("state") != "v1.x" || redirect.Query().Get("auth_code") != res.AuthCode {
		t.Fatalf("redirect %q: want the redirect_uri with its state and the auth_code", res.RedirectURL)
	}
	if _, err := e.sim.OpenAuthorizationLink(t.Context(), OpenLinkRequest{Link: pc, Referer: referer, AuthorizerAppID: authzID}); !errors.Is(err, ErrInvalidPreAuth) {
		t.Fatalf("the same link again: %v, want ErrInvalidPreAuth (single use)", err)
	}

	// Inside WeChat there is no Referer; biz_appid restricts the account.
	mobile := link("mobile", "&biz_appid="+authzID)
	if _, err := e.sim.OpenAuthorizationLink(t.Context(), OpenLinkRequest{Link: mobile, AuthorizerAppID: "wx9999999999999999"}); !errors.Is(err, ErrWrongAccount) {
		t.Fatalf("another account: %v, want ErrWrongAccount", err)
	}
	if _, err := e.sim.OpenAuthorizationLink(t.Context(), OpenLinkRequest{Link: mobile, AuthorizerAppID: authzID}); err != nil {
		t.Fatalf("the mobile link: %v", err)
	}
}
