/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestComponentTokenValidation(t *testing.T) {
	e := newEnv(t, nil)
	ticket, err := e.sim.IssueTicket(compID)
	if err != nil {
		t.Fatal(err)
	}
	otherTicket, _ := e.sim.IssueTicket(otherComp)
	cases := map[string]struct {
		body map[string]any
		want int
	}{
		"missing appid":          {map[string]any{"component_appsecret": compSecret, "component_verify_ticket": ticket}, 41002},
		"unknown appid":          {map[string]any{"component_appid": "wx9999999999999999", "component_appsecret": compSecret, "component_verify_ticket": ticket}, 40013},
		"missing appsecret":      {map[string]any{"component_appid": compID, "component_verify_ticket": ticket}, 41004},
		"wrong appsecret":        {map[string]any{"component_appid": compID, "component_appsecret": "nope", "component_verify_ticket": ticket}, 40125},
		"missing ticket":         {map[string]any{"component_appid": compID, "component_appsecret": compSecret}, 61006},
		"unknown ticket":         {map[string]any{"component_appid": compID, "component_appsecret": compSecret, "component_verify_ticket": "ticket@@@forged"}, 61006},
		"other component ticket": {map[string]any{"component_appid": compID, "component_appsecret": compSecret, "component_verify_ticket": otherTicket}, 61006},
		"valid":                  {map[string]any{"component_appid": compID, "component_appsecret": compSecret, "component_verify_ticket": ticket}, 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := e.post(t, APIComponentToken, "", tc.body)
			wantErrcode(t, m, tc.want)
			if tc.want == 0 {
				if str(m, "component_access_token") == "" || m["expires_in"] != float64(7200) {
					t.Fatalf("answer = %v, want a token with expires_in 7200", m)
				}
			} else if !strings.Contains(str(m, "errmsg"), "rid:") {
				t.Fatalf("errmsg %q lacks a rid", str(m, "errmsg"))
			}
		})
	}
}

func TestTicketValidFor12Hours(t *testing.T) {
	e := newEnv(t, nil)
	ticket, _ := e.sim.IssueTicket(compID)
	body := map[string]any{"component_appid": compID, "component_appsecret": compSecret, "component_verify_ticket": ticket}
	e.clock.Step(12*time.Hour - time.Second)
	wantErrcode(t, e.post(t, APIComponentToken, "", body), 0)
	e.clock.Step(time.Second)
	wantErrcode(t, e.post(t, APIComponentToken, "", body), 61005)
	// An older ticket stays usable while a newer one exists.
	old, _ := e.sim.IssueTicket(compID)
	e.clock.Step(10 * time.Minute)
	if _, err := e.sim.IssueTicket(compID); err != nil {
		t.Fatal(err)
	}
	body["component_verify_ticket"] = old
	wantErrcode(t, e.post(t, APIComponentToken, "", body), 0)
}

func TestComponentTokenExpiry(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.componentToken(t)
	body := map[string]any{"component_appid": compID}
	e.clock.Step(7200*time.Second - time.Second)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 0)
	e.clock.Step(time.Second)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 42001)
	if got := e.sim.TokenState(tok); got != 42001 {
		t.Fatalf("TokenState = %d, want 42001", got)
	}
}

func TestConfigurableTokenLifetime(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.TokenLifetime = 10 * time.Minute })
	ticket, _ := e.sim.IssueTicket(compID)
	m := e.post(t, APIComponentToken, "", map[string]any{"component_appid": compID, "component_appsecret": compSecret, "component_verify_ticket": ticket})
	if m["expires_in"] != float64(600) {
		t.Fatalf("expires_in = %v, want 600", m["expires_in"])
	}
	e.clock.Step(10 * time.Minute)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, str(m, "component_access_token"), map[string]any{"component_appid": compID}), 42001)
}

func TestPreviousTokenValidFiveMinutes(t *testing.T) {
	e := newEnv(t, nil)
	first := e.componentToken(t)
	e.clock.Step(time.Hour)
	second := e.componentToken(t)
	if first == second {
		t.Fatal("second token equals the first")
	}
	body := map[string]any{"component_appid": compID}
	e.clock.Step(5*time.Minute - time.Second)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, first, body), 0)
	e.clock.Step(time.Second)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, first, body), 40001)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, second, body), 0)

	// Same rule for authorizer tokens.
	ai := e.authorize(t, second, authzID)
	oldAT, rt := str(ai, "authorizer_access_token"), str(ai, "authorizer_refresh_token")
	m := e.post(t, APIAuthorizerToken, second, map[string]any{"component_appid": compID, "authorizer_appid": authzID, "authorizer_refresh_token": rt})
	wantErrcode(t, m, 0)
	newAT := str(m, "authorizer_access_token")
	if got := e.sim.TokenState(oldAT); got != 0 {
		t.Fatalf("previous authorizer token state = %d right after refresh, want valid", got)
	}
	e.clock.Step(5 * time.Minute)
	if got := e.sim.TokenState(oldAT); got != 40001 {
		t.Fatalf("previous authorizer token state = %d after 5 min, want 40001", got)
	}
	if got := e.sim.TokenState(newAT); got != 0 {
		t.Fatalf("new authorizer token state = %d, want valid", got)
	}
}

func TestTokenChecks(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.componentToken(t)
	otherTicket, _ := e.sim.IssueTicket(otherComp)
	om := e.post(t, APIComponentToken, "", map[string]any{"component_appid": otherComp, "component_appsecret": "othersecret", "component_verify_ticket": otherTicket})
	otherTok := str(om, "component_access_token")
	cases := map[string]struct {
		token string
		body  map[string]any
		want  int
	}{
		"missing token":           {"", map[string]any{"component_appid": compID}, 41001},
		"malformed token":         {"short", map[string]any{"component_appid": compID}, 40014},
		"unknown token":           {strings.Repeat("A", 96), map[string]any{"component_appid": compID}, 40001},
		"missing appid":           {tok, map[string]any{}, 41002},
		"other component's token": {otherTok, map[string]any{"component_appid": compID}, 61011},
		"valid":                   {tok, map[string]any{"component_appid": compID}, 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			wantErrcode(t, e.post(t, APICreatePreAuthCode, tc.token, tc.body), tc.want)
		})
	}
}

func TestRequestFormat(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := http.Get(e.srv.URL + "/cgi-bin/component/api_component_token")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	decode(t, resp, &m)
	wantErrcode(t, m, 43002)

	resp, err = http.Post(e.srv.URL+"/cgi-bin/component/api_component_token", "application/json", strings.NewReader("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	decode(t, resp, &m)
	wantErrcode(t, m, 47001)
}

func TestIPWhitelist(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Components[0].IPWhitelist = []string{"192.0.2.10"} })
	ticket, _ := e.sim.IssueTicket(compID)
	m := e.post(t, APIComponentToken, "", map[string]any{"component_appid": compID, "component_appsecret": compSecret, "component_verify_ticket": ticket})
	wantErrcode(t, m, 61004)

	e2 := newEnv(t, func(o *Options) { o.Components[0].IPWhitelist = []string{"127.0.0.1", "::1"} })
	e2.componentToken(t)
}

func TestPreAuthCodeSingleUseAndExpiry(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.componentToken(t)
	m := e.post(t, APICreatePreAuthCode, tok, map[string]any{"component_appid": compID})
	wantErrcode(t, m, 0)
	if m["expires_in"] != float64(600) || !strings.HasPrefix(str(m, "pre_auth_code"), "preauthcode@@@") {
		t.Fatalf("answer = %v", m)
	}
	pac := str(m, "pre_auth_code")
	if _, err := e.sim.Authorize(t.Context(), AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID, PreAuthCode: pac}); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := e.sim.Authorize(t.Context(), AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID2, PreAuthCode: pac}); !errors.Is(err, ErrInvalidPreAuth) {
		t.Fatalf("second use: err = %v, want ErrInvalidPreAuth", err)
	}

	m = e.post(t, APICreatePreAuthCode, tok, map[string]any{"component_appid": compID})
	e.clock.Step(600 * time.Second)
	if _, err := e.sim.Authorize(t.Context(), AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID2, PreAuthCode: str(m, "pre_auth_code")}); !errors.Is(err, ErrInvalidPreAuth) {
		t.Fatalf("expired: err = %v, want ErrInvalidPreAuth", err)
	}
}

func TestAuthorizationCodeSingleUseAndExpiry(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.componentToken(t)
	res, err := e.sim.Authorize(t.Context(), AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID, RedirectURI: "https://platform.example/cb?x=1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.InfoType != InfoTypeAuthorized || res.ExpiresIn != time.Hour {
		t.Fatalf("result = %+v", res)
	}
	ru, err := url.Parse(res.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	if ru.Host != "platform.example" || ru.Query().Get("auth_code") != res.AuthCode || ru.Query().Get("expires_in") != "3600" || ru.Query().Get("x") != "1" {
		t.Fatalf("redirect URL = %s", res.RedirectURL)
	}
	body := map[string]any{"component_appid": compID, "authorization_code": res.AuthCode}
	m := e.post(t, APIQueryAuth, tok, body)
	wantErrcode(t, m, 0)
	ai := m["authorization_info"].(map[string]any)
	if str(ai, "authorizer_appid") != authzID || str(ai, "authorizer_access_token") == "" || !strings.HasPrefix(str(ai, "authorizer_refresh_token"), "refreshtoken@@@") || ai["expires_in"] != float64(7200) {
		t.Fatalf("authorization_info = %v", ai)
	}
	if fi := ai["func_info"].([]any); len(fi) != 3 || fi[2].(map[string]any)["funcscope_category"].(map[string]any)["id"] != float64(3) {
		t.Fatalf("func_info = %v", fi)
	}
	wantErrcode(t, e.post(t, APIQueryAuth, tok, body), 61009)
	wantErrcode(t, e.post(t, APIQueryAuth, tok, map[string]any{"component_appid": compID, "authorization_code": "queryauthcode@@@nope"}), 61009)

	res2, _ := e.sim.Authorize(t.Context(), AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID})
	if res2.InfoType != InfoTypeUpdateAuthorized {
		t.Fatalf("second authorization InfoType = %q, want updateauthorized", res2.InfoType)
	}
	e.clock.Step(3600*time.Second - time.Second)
	tok = e.componentToken(t)
	e.clock.Step(time.Second)
	wantErrcode(t, e.post(t, APIQueryAuth, tok, map[string]any{"component_appid": compID, "authorization_code": res2.AuthCode}), 61010)
}

func TestRefreshTokenRotation(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		name := "stable"
		if rotate {
			name = "rotating"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.RotateRefreshTokens = rotate })
			tok := e.componentToken(t)
			rt0 := str(e.authorize(t, tok, authzID), "authorizer_refresh_token")
			call := func(rt string) map[string]any {
				return e.post(t, APIAuthorizerToken, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID, "authorizer_refresh_token": rt})
			}
			m := call(rt0)
			wantErrcode(t, m, 0)
			rt1 := str(m, "authorizer_refresh_token")
			if m["expires_in"] != float64(7200) || str(m, "authorizer_access_token") == "" {
				t.Fatalf("answer = %v", m)
			}
			if rotate {
				if rt1 == rt0 || rt1 == "" {
					t.Fatalf("refresh token not rotated: %q", rt1)
				}
				wantErrcode(t, call(rt0), 61023)
				wantErrcode(t, call(rt1), 0)
			} else {
				if rt1 != rt0 {
					t.Fatalf("refresh token changed without rotation")
				}
				wantErrcode(t, call(rt0), 0)
			}
			if cur, _ := e.sim.RefreshToken(compID, authzID); rotate == (cur == rt0) {
				t.Fatalf("RefreshToken() = %q, rotate=%v rt0=%q", cur, rotate, rt0)
			}
			wantErrcode(t, call("refreshtoken@@@wrong"), 61023)
		})
	}
}

func TestAuthorizerTokenChecks(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.componentToken(t)
	wantErrcode(t, e.post(t, APIAuthorizerToken, tok, map[string]any{"component_appid": compID, "authorizer_refresh_token": "x"}), 40097)
	wantErrcode(t, e.post(t, APIAuthorizerToken, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID, "authorizer_refresh_token": "x"}), 61003)
	wantErrcode(t, e.post(t, APIGetAuthorizerInfo, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID}), 61003)
}

func TestSeededAuthorization(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Authorizers = append(o.Authorizers, AuthorizerSeed{ComponentAppID: compID, AppID: authzID2, Authorized: true, RefreshToken: "refreshtoken@@@seeded"})
	})
	tok := e.componentToken(t)
	m := e.post(t, APIAuthorizerToken, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID2, "authorizer_refresh_token": "refreshtoken@@@seeded"})
	wantErrcode(t, m, 0)
}

func TestGetAuthorizerInfo(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Authorizers = append(o.Authorizers, AuthorizerSeed{ComponentAppID: compID, AppID: authzID2, MiniProgram: true, Authorized: true})
	})
	tok := e.componentToken(t)
	rt := str(e.authorize(t, tok, authzID), "authorizer_refresh_token")
	m := e.post(t, APIGetAuthorizerInfo, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID})
	wantErrcode(t, m, 0)
	info := m["authorizer_info"].(map[string]any)
	if str(info, "nick_name") != "Demo Shop" || str(info, "user_name") != "gh_eb5e3a772040" || str(info, "alias") != "demoshop" ||
		str(info, "principal_name") != "Demo Ltd." || str(info, "qrcode_url") != "http://qr.example/demo" || str(info, "head_img") == "" {
		t.Fatalf("authorizer_info = %v", info)
	}
	if info["service_type_info"].(map[string]any)["id"] != float64(2) || info["verify_type_info"].(map[string]any)["id"] != float64(0) {
		t.Fatalf("type infos = %v", info)
	}
	bi := info["business_info"].(map[string]any)
	if bi["open_pay"] != float64(1) || bi["open_card"] != float64(1) || bi["open_store"] != float64(0) || bi["open_shake"] != float64(0) || bi["open_scan"] != float64(0) {
		t.Fatalf("business_info = %v", bi)
	}
	if _, ok := info["MiniProgramInfo"]; ok {
		t.Fatal("official account has MiniProgramInfo")
	}
	az := m["authorization_info"].(map[string]any)
	if str(az, "authorizer_appid") != authzID || str(az, "authorizer_refresh_token") != rt || len(az["func_info"].([]any)) != 3 {
		t.Fatalf("authorization_info = %v", az)
	}
	m = e.post(t, APIGetAuthorizerInfo, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID2})
	if _, ok := m["authorizer_info"].(map[string]any)["MiniProgramInfo"]; !ok {
		t.Fatalf("mini program lacks MiniProgramInfo: %v", m)
	}
}

func TestGetAuthorizerListPaging(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.componentToken(t)
	ids := []string{"wx000000000000000a", "wx000000000000000b", "wx000000000000000c"}
	for _, id := range ids {
		e.authorize(t, tok, id)
		e.clock.Step(time.Minute)
	}
	page := func(offset, count int) map[string]any {
		return e.post(t, APIGetAuthorizerList, tok, map[string]any{"component_appid": compID, "offset": offset, "count": count})
	}
	m := page(0, 2)
	wantErrcode(t, m, 0)
	list := m["list"].([]any)
	if m["total_count"] != float64(3) || len(list) != 2 || str(list[0].(map[string]any), "authorizer_appid") != ids[0] {
		t.Fatalf("page 1 = %v", m)
	}
	first := list[0].(map[string]any)
	if first["auth_time"] != float64(epoch.Unix()) || !strings.HasPrefix(str(first, "refresh_token"), "refreshtoken@@@") {
		t.Fatalf("entry = %v", first)
	}
	m = page(2, 2)
	if list := m["list"].([]any); len(list) != 1 || str(list[0].(map[string]any), "authorizer_appid") != ids[2] {
		t.Fatalf("page 2 = %v", m)
	}
	wantErrcode(t, page(0, 501), 40097)
	wantErrcode(t, page(0, 0), 40097)
	wantErrcode(t, page(-1, 10), 40097)
	wantErrcode(t, page(0, 500), 0)
}

func TestQuotaAndClearQuota(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Quotas = map[string]int{APICreatePreAuthCode: 2}
		o.ClearQuotaPerMonth = 1
	})
	tok := e.componentToken(t)
	body := map[string]any{"component_appid": compID}
	wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 0)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 0)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 45009)
	if got := e.sim.Usage(compID, APICreatePreAuthCode); got != 2 {
		t.Fatalf("usage = %d, want 2", got)
	}
	// Quotas are per component.
	otherTicket, _ := e.sim.IssueTicket(otherComp)
	otherTok := str(e.post(t, APIComponentToken, "", map[string]any{"component_appid": otherComp, "component_appsecret": "othersecret", "component_verify_ticket": otherTicket}), "component_access_token")
	wantErrcode(t, e.post(t, APICreatePreAuthCode, otherTok, map[string]any{"component_appid": otherComp}), 0)

	wantErrcode(t, e.post(t, APIClearQuota, tok, body), 0)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 0)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 0)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 45009)
	// One reset a month here.
	wantErrcode(t, e.post(t, APIClearQuota, tok, body), 48006)

	// Quotas roll over at midnight Beijing time (epoch is 20:00 there).
	e.clock.Step(3*time.Hour + 59*time.Minute)
	tok = e.componentToken(t)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 45009)
	e.clock.Step(time.Minute)
	wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 0)

	e.sim.SetQuota(APICreatePreAuthCode, 0)
	for range 3 {
		wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 0)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, nil)
	rc := newReceiver(t, compToken, compKey, compID, 0)
	if err := e.sim.SetReceiverURL(compID, rc.srv.URL+"/wechat/ns/comp"); err != nil {
		t.Fatal(err)
	}
	tok := e.componentToken(t)
	if _, err := e.sim.Authorize(t.Context(), AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID}); err != nil {
		t.Fatal(err)
	}
	authPush := rc.next(t)
	ai := e.post(t, APIQueryAuth, tok, map[string]any{"component_appid": compID, "authorization_code": authPush.AuthorizationCode})
	wantErrcode(t, ai, 0)
	at := str(ai["authorization_info"].(map[string]any), "authorizer_access_token")
	rt := str(ai["authorization_info"].(map[string]any), "authorizer_refresh_token")
	if got := getAPIDomainIP(t, e, at); got != 0 {
		t.Fatalf("token check before revoke = %d", got)
	}
	// A second code, not yet exchanged, dies with the revocation too.
	res2, _ := e.sim.Authorize(t.Context(), AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID})
	rc.next(t)

	rec, err := e.sim.Revoke(t.Context(), compID, authzID)
	if err != nil || !rec.Delivered {
		t.Fatalf("Revoke = %+v, %v", rec, err)
	}
	p := rc.next(t)
	if p.InfoType != InfoTypeUnauthorized || p.AuthorizerAppid != authzID || p.AppID != compID || p.CreateTime != epoch.Unix() {
		t.Fatalf("push = %+v", p)
	}
	if got := getAPIDomainIP(t, e, at); got != 40001 {
		t.Fatalf("token check after revoke = %d, want 40001", got)
	}
	wantErrcode(t, e.post(t, APIAuthorizerToken, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID, "authorizer_refresh_token": rt}), 61003)
	wantErrcode(t, e.post(t, APIQueryAuth, tok, map[string]any{"component_appid": compID, "authorization_code": res2.AuthCode}), 61009)
	m := e.post(t, APIGetAuthorizerList, tok, map[string]any{"component_appid": compID, "offset": 0, "count": 100})
	if m["total_count"] != float64(0) {
		t.Fatalf("list after revoke = %v", m)
	}
	if _, err := e.sim.Revoke(t.Context(), compID, authzID); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("second revoke err = %v", err)
	}
	// Authorizing again issues a new refresh token; the old one stays dead.
	res3, _ := e.sim.Authorize(t.Context(), AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID})
	if res3.InfoType != InfoTypeAuthorized {
		t.Fatalf("re-authorization InfoType = %q", res3.InfoType)
	}
	rc.next(t)
	wantErrcode(t, e.post(t, APIAuthorizerToken, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID, "authorizer_refresh_token": rt}), 61023)
}

func getAPIDomainIP(t *testing.T, e *env, token string) int {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/cgi-bin/get_api_domain_ip?access_token=" + url.QueryEscape(token))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	decode(t, resp, &m)
	return errcode(m)
}

func TestFaults(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.componentToken(t)
	body := map[string]any{"component_appid": compID}

	t.Run("errcode for the next N calls", func(t *testing.T) {
		e.sim.AddFault(Fault{API: APICreatePreAuthCode, Count: 2, ErrCode: -1})
		wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), -1)
		if f := e.sim.Faults(); len(f) != 1 || f[0].Count != 1 {
			t.Fatalf("pending faults = %+v", f)
		}
		wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), -1)
		wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 0)
	})
	t.Run("other endpoints and appids are untouched", func(t *testing.T) {
		e.sim.AddFault(Fault{API: APIClearQuota, AppID: otherComp, ErrCode: 48001})
		wantErrcode(t, e.post(t, APIClearQuota, tok, body), 0)
		wantErrcode(t, e.post(t, APICreatePreAuthCode, tok, body), 0)
		if len(e.sim.Faults()) != 1 {
			t.Fatal("fault for another appid was consumed")
		}
		e.sim.ClearFaults()
		if len(e.sim.Faults()) != 0 {
			t.Fatal("ClearFaults left faults")
		}
	})
	t.Run("custom errmsg", func(t *testing.T) {
		e.sim.AddFault(Fault{API: "*", ErrCode: 61004, ErrMsg: "ip 1.2.3.4 not in whitelist"})
		m := e.post(t, APICreatePreAuthCode, tok, body)
		wantErrcode(t, m, 61004)
		if !strings.HasPrefix(str(m, "errmsg"), "ip 1.2.3.4 not in whitelist") {
			t.Fatalf("errmsg = %q", str(m, "errmsg"))
		}
	})
	t.Run("http status", func(t *testing.T) {
		e.sim.AddFault(Fault{API: APICreatePreAuthCode, HTTPStatus: 502})
		resp, err := http.Post(e.srv.URL+"/cgi-bin/component/api_create_preauthcode?component_access_token="+tok, "application/json", strings.NewReader(`{"component_appid":"`+compID+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 502 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
	t.Run("latency on the simulator's clock", func(t *testing.T) {
		e.sim.AddFault(Fault{API: APICreatePreAuthCode, Latency: 3 * time.Second})
		done := make(chan map[string]any, 1)
		go func() { done <- e.post(t, APICreatePreAuthCode, tok, body) }()
		waitFor(t, "the delayed call to wait on the clock", e.clock.HasWaiters)
		select {
		case m := <-done:
			t.Fatalf("call answered before the latency elapsed: %v", m)
		default:
		}
		e.clock.Step(3 * time.Second)
		select {
		case m := <-done:
			wantErrcode(t, m, 0)
		case <-time.After(10 * time.Second):
			t.Fatal("delayed call never answered")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		e.sim.AddFault(Fault{API: APICreatePreAuthCode, Timeout: true})
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/cgi-bin/component/api_create_preauthcode?component_access_token="+tok, strings.NewReader(`{"component_appid":"`+compID+`"}`))
		_, err := http.DefaultClient.Do(req)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
	})
}

// A held answer is a connection lost after WeChat acted: the call is processed and counted
// (with rotation, the refresh token is replaced) but the client never hears of it.
func TestHoldAnswerFault(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RotateRefreshTokens = true })
	tok := e.componentToken(t)
	e.authorize(t, tok, authzID)
	rt, _ := e.sim.RefreshToken(compID, authzID)
	body := map[string]any{"component_appid": compID, "authorizer_appid": authzID, "authorizer_refresh_token": rt}

	e.sim.AddFault(Fault{API: APIAuthorizerToken, AppID: authzID, HoldAnswer: true})
	data, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/cgi-bin/component/api_authorizer_token?component_access_token="+tok, bytes.NewReader(data))
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the answer held until the client gave up", err)
	}
	if len(e.sim.Faults()) != 0 {
		t.Fatal("the hold fault was not consumed")
	}
	if st := e.sim.Counters()[APIAuthorizerToken][authzID]; st.Calls != 1 || st.Errors != 0 {
		t.Fatalf("counters = %+v, want the processed call counted once, without error", st)
	}
	rotated, _ := e.sim.RefreshToken(compID, authzID)
	if rotated == rt || rotated == "" {
		t.Fatal("the held call was not processed: the refresh token did not rotate")
	}
	// The client retries with the refresh token it knows: WeChat rejects it, the list has the new one.
	wantErrcode(t, e.post(t, APIAuthorizerToken, tok, body), 61023)
	list := e.post(t, APIGetAuthorizerList, tok, map[string]any{"component_appid": compID, "offset": 0, "count": 10})
	items, _ := list["list"].([]any)
	if len(items) != 1 || str(items[0].(map[string]any), "refresh_token") != rotated {
		t.Fatal("api_get_authorizer_list does not list the rotated refresh token")
	}
	body["authorizer_refresh_token"] = rotated
	wantErrcode(t, e.post(t, APIAuthorizerToken, tok, body), 0)

}

func TestCounters(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.componentToken(t)
	e.authorize(t, tok, authzID)
	rt, _ := e.sim.RefreshToken(compID, authzID)
	for range 3 {
		e.post(t, APIAuthorizerToken, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID, "authorizer_refresh_token": rt})
	}
	e.post(t, APIAuthorizerToken, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID2, "authorizer_refresh_token": rt})
	checks := []struct {
		api, appID string
		want       int
	}{
		{APIComponentToken, compID, 1},
		{APIQueryAuth, compID, 1},
		{APIAuthorizerToken, compID, 4},
		{APIAuthorizerToken, authzID, 3},
		{APIAuthorizerToken, authzID2, 1},
		{APIGetAuthorizerList, compID, 0},
	}
	for _, c := range checks {
		if got := e.sim.Calls(c.api, c.appID); got != c.want {
			t.Errorf("Calls(%s, %s) = %d, want %d", c.api, c.appID, got, c.want)
		}
	}
	if st := e.sim.Counters()[APIAuthorizerToken][authzID2]; st.Calls != 1 || st.Errors != 1 {
		t.Errorf("stats for the failing authorizer = %+v, want 1 call 1 error", st)
	}
	e.sim.ResetCounters()
	if got := e.sim.Calls(APIAuthorizerToken, compID); got != 0 {
		t.Errorf("after reset: %d", got)
	}
}
