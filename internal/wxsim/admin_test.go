/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func (e *env) admin(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var m map[string]any
	if resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode, m
}

func TestAdminAPI(t *testing.T) {
	e := newEnv(t, nil)
	rc := newReceiver(t, compToken, compKey, compID, 0)
	_ = e.sim.SetReceiverURL(compID, rc.srv.URL)

	t.Run("push-ticket", func(t *testing.T) {
		code, m := e.admin(t, "POST", "/admin/push-ticket", map[string]any{"component_appid": compID})
		if code != 200 || m["delivered"] != true {
			t.Fatalf("%d %v", code, m)
		}
		if p := rc.next(t); p.InfoType != InfoTypeComponentVerifyTicket {
			t.Fatalf("push = %+v", p)
		}
		code, _ = e.admin(t, "POST", "/admin/push-ticket", map[string]any{"component_appid": otherComp})
		if code != http.StatusBadRequest {
			t.Fatalf("push to a component without receiver: %d", code)
		}
		code, _ = e.admin(t, "POST", "/admin/push-ticket", map[string]any{"component_appid": "wx9999999999999999"})
		if code != http.StatusNotFound {
			t.Fatalf("push to an unknown component: %d", code)
		}
	})

	t.Run("authorize and revoke", func(t *testing.T) {
		code, m := e.admin(t, "POST", "/admin/authorize", map[string]any{
			"component_appid": compID, "authorizer_appid": authzID2, "redirect_uri": "https://platform.example/done",
		})
		if code != 200 || m["info_type"] != "authorized" || m["expires_in"] != float64(3600) {
			t.Fatalf("%d %v", code, m)
		}
		ru, _ := url.Parse(m["redirect_url"].(string))
		if ru.Query().Get("auth_code") != m["auth_code"] || ru.Path != "/done" {
			t.Fatalf("redirect_url = %v", m["redirect_url"])
		}
		if push := m["push"].(map[string]any); push["delivered"] != true || push["attempts"] != float64(1) {
			t.Fatalf("push = %v", push)
		}
		if p := rc.next(t); p.AuthorizationCode != m["auth_code"] {
			t.Fatalf("pushed code differs from the redirect's")
		}
		code, m = e.admin(t, "POST", "/admin/revoke", map[string]any{"component_appid": compID, "authorizer_appid": authzID2})
		if code != 200 || m["push"].(map[string]any)["info_type"] != "unauthorized" {
			t.Fatalf("%d %v", code, m)
		}
		rc.next(t)
		code, _ = e.admin(t, "POST", "/admin/revoke", map[string]any{"component_appid": compID, "authorizer_appid": authzID2})
		if code != http.StatusConflict {
			t.Fatalf("second revoke: %d", code)
		}
		code, _ = e.admin(t, "POST", "/admin/authorize", map[string]any{"component_appid": compID, "authorizer_appid": authzID2, "pre_auth_code": "preauthcode@@@bogus"})
		if code != http.StatusConflict {
			t.Fatalf("authorize with a bogus pre_auth_code: %d", code)
		}
		code, _ = e.admin(t, "POST", "/admin/authorize", map[string]any{"component_appid": compID, "authorizer_appid": authzID2, "typo": 1})
		if code != http.StatusBadRequest {
			t.Fatalf("unknown field: %d", code)
		}
	})

	t.Run("faults", func(t *testing.T) {
		code, m := e.admin(t, "POST", "/admin/faults", map[string]any{"api": APIComponentToken, "count": 2, "errcode": -1})
		if code != 200 || m["fault"].(map[string]any)["count"] != float64(2) {
			t.Fatalf("%d %v", code, m)
		}
		code, _ = e.admin(t, "POST", "/admin/faults", map[string]any{"api": APIComponentToken, "latency": "2s"})
		if code != 200 {
			t.Fatalf("latency fault: %d", code)
		}
		code, _ = e.admin(t, "POST", "/admin/faults", map[string]any{"api": APIComponentToken})
		if code != http.StatusBadRequest {
			t.Fatalf("empty fault accepted: %d", code)
		}
		code, _ = e.admin(t, "POST", "/admin/faults", map[string]any{"api": APIComponentToken, "latency": "soon"})
		if code != http.StatusBadRequest {
			t.Fatalf("bad latency accepted: %d", code)
		}
		code, _ = e.admin(t, "POST", "/admin/faults", map[string]any{"api": APIAuthorizerToken, "hold_answer": true, "errcode": -1})
		if code != http.StatusBadRequest {
			t.Fatalf("hold_answer with errcode accepted: %d", code)
		}
		code, m = e.admin(t, "POST", "/admin/faults", map[string]any{"api": APIAuthorizerToken, "appid": authzID, "hold_answer": true})
		if code != 200 || m["fault"].(map[string]any)["hold_answer"] != true {
			t.Fatalf("hold_answer fault: %d %v", code, m)
		}
		_, m = e.admin(t, "GET", "/admin/faults", nil)
		fs := m["faults"].([]any)
		if len(fs) != 3 || fs[1].(map[string]any)["latency"] != "2s" || fs[2].(map[string]any)["hold_answer"] != true {
			t.Fatalf("faults = %v", fs)
		}
		wantErrcode(t, e.post(t, APIComponentToken, "", map[string]any{"component_appid": compID}), -1)
		if code, _ := e.admin(t, "DELETE", "/admin/faults", nil); code != http.StatusNoContent {
			t.Fatalf("delete faults: %d", code)
		}
		if len(e.sim.Faults()) != 0 {
			t.Fatal("faults left after DELETE")
		}
	})

	t.Run("counters", func(t *testing.T) {
		e.componentToken(t)
		_, m := e.admin(t, "GET", "/admin/counters", nil)
		c := m["counters"].(map[string]any)[APIComponentToken].(map[string]any)[compID].(map[string]any)
		if c["calls"].(float64) < 1 || c["errors"].(float64) < 1 {
			t.Fatalf("counters = %v", m)
		}
		if code, _ := e.admin(t, "DELETE", "/admin/counters", nil); code != http.StatusNoContent {
			t.Fatalf("reset counters: %d", code)
		}
		if _, m = e.admin(t, "GET", "/admin/counters", nil); len(m["counters"].(map[string]any)) != 0 {
			t.Fatalf("counters after reset = %v", m)
		}
	})

	t.Run("quotas", func(t *testing.T) {
		code, m := e.admin(t, "POST", "/admin/quotas", map[string]any{"api": APIComponentToken, "limit": 5})
		if code != 200 || m["quotas"].(map[string]any)[APIComponentToken] != float64(5) {
			t.Fatalf("%d %v", code, m)
		}
		if e.sim.Quotas()[APIComponentToken] != 5 {
			t.Fatal("quota not set")
		}
	})

	t.Run("components, authorizers and state", func(t *testing.T) {
		newComp := map[string]any{"appid": "wx3333333333333333", "appsecret": "s3", "token": "t3", "encoding_aes_key": GenerateEncodingAESKey()}
		if code, m := e.admin(t, "POST", "/admin/components", newComp); code != 200 {
			t.Fatalf("%d %v", code, m)
		}
		if code, _ := e.admin(t, "POST", "/admin/components", map[string]any{"appid": "wx4", "appsecret": "s", "token": "t", "encoding_aes_key": "short"}); code != http.StatusBadRequest {
			t.Fatalf("invalid component accepted: %d", code)
		}
		if code, m := e.admin(t, "POST", "/admin/authorizers", map[string]any{"component_appid": "wx3333333333333333", "appid": authzID, "nick_name": "Shop 3", "authorized": true}); code != 200 {
			t.Fatalf("%d %v", code, m)
		}
		if code, _ := e.admin(t, "POST", "/admin/authorizers", map[string]any{"component_appid": "wx9999999999999999", "appid": authzID}); code != http.StatusNotFound {
			t.Fatalf("authorizer of an unknown component: %d", code)
		}
		_, m := e.admin(t, "GET", "/admin/state", nil)
		raw, _ := json.Marshal(m)
		for _, secret := range []string{compSecret, compKey, "s3"} {
			if strings.Contains(string(raw), `"`+secret+`"`) {
				t.Fatalf("state leaks a secret: %s", raw)
			}
		}
		comps := m["components"].([]any)
		if len(comps) != 3 {
			t.Fatalf("components = %v", comps)
		}
		third := comps[1].(map[string]any) // sorted by appid
		if third["appid"] != "wx3333333333333333" || third["authorizers"].([]any)[0].(map[string]any)["authorized"] != true {
			t.Fatalf("third component = %v", third)
		}
	})

	t.Run("ticket-pushing and pushes", func(t *testing.T) {
		if code, _ := e.admin(t, "POST", "/admin/ticket-pushing", map[string]any{"component_appid": compID, "enabled": false}); code != 200 {
			t.Fatalf("ticket-pushing: %d", code)
		}
		for _, c := range e.sim.State() {
			if c.AppID == compID && c.PushingTickets {
				t.Fatal("pushing still enabled")
			}
		}
		_, m := e.admin(t, "GET", "/admin/pushes", nil)
		if len(m["pushes"].([]any)) != 3 {
			t.Fatalf("pushes = %v", m["pushes"])
		}
	})

	t.Run("healthz", func(t *testing.T) {
		resp, err := http.Get(e.srv.URL + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		_ = resp.Body.Close()
	})
}

func TestLoadSeedFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "seed.json")
	key := GenerateEncodingAESKey()
	if err := os.WriteFile(good, []byte(`{
  "components": [{"appid": "wx0123456789abcdef", "appsecret": "s", "token": "t", "encoding_aes_key": "`+key+`",
                  "receiver_url": "http://127.0.0.1:9443/wechat/default/demo"}],
  "authorizers": [{"component_appid": "wx0123456789abcdef", "appid": "wx1111111111111111", "nick_name": "Shop",
                   "business_info": {"open_pay": 1}, "func_info": [1, 2], "authorized": true}],
  "quotas": {"api_component_token": 2000}
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	sf, err := LoadSeedFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(sf.Components) != 1 || sf.Components[0].EncodingAESKey != key || sf.Authorizers[0].Business.OpenPay != 1 ||
		sf.Quotas[APIComponentToken] != 2000 || !sf.Authorizers[0].Authorized {
		t.Fatalf("seed = %+v", sf)
	}
	sim, err := New(Options{Components: sf.Components, Authorizers: sf.Authorizers, Quotas: sf.Quotas})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sim.RefreshToken("wx0123456789abcdef", "wx1111111111111111"); !ok {
		t.Fatal("seeded authorizer is not authorized")
	}

	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"components": [{"appid": "wx1", "app_secret": "typo"}]}`), 0o600)
	if _, err := LoadSeedFile(bad); err == nil || !strings.Contains(err.Error(), "app_secret") {
		t.Fatalf("typo not reported: %v", err)
	}
}

func TestNewRejectsBadSeeds(t *testing.T) {
	key := GenerateEncodingAESKey()
	cases := map[string]Options{
		"duplicate component": {Components: []ComponentSeed{
			{AppID: compID, AppSecret: "s", Token: "t", EncodingAESKey: key},
			{AppID: compID, AppSecret: "s", Token: "t", EncodingAESKey: key},
		}},
		"short key":         {Components: []ComponentSeed{{AppID: compID, AppSecret: "s", Token: "t", EncodingAESKey: "abc"}}},
		"non-alnum key":     {Components: []ComponentSeed{{AppID: compID, AppSecret: "s", Token: "t", EncodingAESKey: strings.Repeat("+", 43)}}},
		"missing secret":    {Components: []ComponentSeed{{AppID: compID, Token: "t", EncodingAESKey: key}}},
		"orphan authorizer": {Authorizers: []AuthorizerSeed{{ComponentAppID: compID, AppID: authzID}}},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := New(opts); err == nil {
				t.Fatal("New accepted an invalid seed")
			}
		})
	}
	for range 20 {
		k := GenerateEncodingAESKey()
		if len(k) != 43 || strings.ContainsAny(k, "+/=") {
			t.Fatalf("generated key %q", k)
		}
	}
}
