/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

func TestAuthorizerOptionRules(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Quotas = map[string]int{APIGetAuthorizerOption: 4} })
	tok := e.componentToken(t)
	get := func(name string) map[string]any {
		return e.post(t, APIGetAuthorizerOption, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID, "option_name": name})
	}
	set := func(name string, value any) map[string]any {
		return e.post(t, APISetAuthorizerOption, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID, "option_name": name, "option_value": value})
	}
	wantErrcode(t, get("voice_recognize"), 61003) // not authorized yet
	e.authorize(t, tok, authzID)

	m := get("voice_recognize")
	wantErrcode(t, m, 0)
	if str(m, "option_value") != "0" || str(m, "option_name") != "voice_recognize" || str(m, "authorizer_appid") != authzID {
		t.Fatalf("a new account's option = %v, want the string \"0\"", m)
	}
	wantErrcode(t, set("location_report", "2"), 0)
	if m := get("location_report"); str(m, "option_value") != "2" {
		t.Fatalf("after setting 2: %v", m)
	}
	wantErrcode(t, set("location_report", "3"), 40097)   // out of range
	wantErrcode(t, set("customer_service", "01"), 40097) // not a plain number
	wantErrcode(t, set("no_such_option", "1"), 40097)
	wantErrcode(t, set("customer_service", 1), 47001) // WeChat takes the value as a string
	wantErrcode(t, get("no_such_option"), 40097)
	wantErrcode(t, get("voice_recognize"), 45009) // the fifth call: the quota of 4 is used up
	wantErrcode(t, e.post(t, APISetAuthorizerOption, "", map[string]any{"component_appid": compID}), 41001)

	got, err := e.sim.AuthorizerOptions(compID, authzID)
	if err != nil || got["location_report"] != 2 || got["customer_service"] != 0 {
		t.Fatalf("AuthorizerOptions = %v, %v", got, err)
	}
	if n := e.sim.Calls(APISetAuthorizerOption, authzID); n != 4 {
		t.Fatalf("set calls counted = %d, want 4 (neither the unparsable body nor the call without an appid is the account's)", n)
	}
}

func TestAuthorizerOptionAdmin(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.componentToken(t)
	e.authorize(t, tok, authzID)
	post := func(path string, body any) int {
		b, _ := json.Marshal(body)
		resp, err := http.Post(e.srv.URL+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	callsBefore := e.sim.Calls(APISetAuthorizerOption, authzID)
	if code := post("/admin/authorizer-options", map[string]any{"component_appid": compID, "authorizer_appid": authzID, "option_name": "customer_service", "option_value": 1}); code != 200 {
		t.Fatalf("admin set: HTTP %d", code)
	}
	if code := post("/admin/authorizer-options", map[string]any{"component_appid": compID, "authorizer_appid": authzID, "option_name": "customer_service", "option_value": 2}); code != 400 {
		t.Fatalf("admin set out of range: HTTP %d, want 400", code)
	}
	if code := post("/admin/authorizer-options", map[string]any{"component_appid": compID, "authorizer_appid": authzID2, "option_name": "customer_service", "option_value": 1}); code != 404 {
		t.Fatalf("admin set of an unknown account: HTTP %d, want 404", code)
	}
	m := e.post(t, APIGetAuthorizerOption, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID, "option_name": "customer_service"})
	if str(m, "option_value") != "1" {
		t.Fatalf("the API does not see the admin's change: %v", m)
	}
	if e.sim.Calls(APISetAuthorizerOption, authzID) != callsBefore {
		t.Fatal("an admin change counted as an API call")
	}

	resp, err := http.Get(e.srv.URL + "/admin/authorizer-options?component_appid=" + compID + "&authorizer_appid=" + authzID)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Options map[string]int }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Options["customer_service"] != 1 || len(body.Options) != 3 {
		t.Fatalf("GET /admin/authorizer-options = %+v, %v", body, err)
	}
	_ = resp.Body.Close()

	if code := post("/admin/func-info", map[string]any{"component_appid": compID, "authorizer_appid": authzID, "func_info": []int{2, 3}}); code != 200 {
		t.Fatalf("admin func-info: HTTP %d", code)
	}
	info := e.post(t, APIGetAuthorizerInfo, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID})
	var ids []int
	for _, f := range info["authorization_info"].(map[string]any)["func_info"].([]any) {
		ids = append(ids, int(f.(map[string]any)["funcscope_category"].(map[string]any)["id"].(float64)))
	}
	if !slices.Equal(ids, []int{2, 3}) {
		t.Fatalf("func_info after the admin change = %v, want [2 3]", ids)
	}
}
