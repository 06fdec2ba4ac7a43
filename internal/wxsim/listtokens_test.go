/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import "testing"

// With the toggle off, the list names the account but not its refresh token; the token
// itself still works, and turning the toggle back on lists it again.
func TestListWithoutRefreshTokens(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.componentToken(t)
	rt := str(e.authorize(t, tok, authzID), "authorizer_refresh_token")
	list := func() map[string]any {
		t.Helper()
		m := e.post(t, APIGetAuthorizerList, tok, map[string]any{"component_appid": compID, "offset": 0, "count": 10})
		wantErrcode(t, m, 0)
		items := m["list"].([]any)
		if len(items) != 1 {
			t.Fatalf("list = %v", m)
		}
		return items[0].(map[string]any)
	}
	if got := str(list(), "refresh_token"); got != rt {
		t.Fatalf("listed refresh token = %q, want the account's", got)
	}
	if code, _ := e.admin(t, "POST", "/admin/list-refresh-tokens", map[string]any{"component_appid": compID, "listed": false}); code != 200 {
		t.Fatalf("list-refresh-tokens: %d", code)
	}
	item := list()
	if str(item, "authorizer_appid") != authzID || str(item, "refresh_token") != "" {
		t.Fatalf("entry with refresh tokens omitted = %v", item)
	}
	m := e.post(t, APIAuthorizerToken, tok, map[string]any{"component_appid": compID, "authorizer_appid": authzID, "authorizer_refresh_token": rt})
	wantErrcode(t, m, 0)
	if err := e.sim.SetListRefreshTokens(compID, true); err != nil {
		t.Fatal(err)
	}
	if str(list(), "refresh_token") == "" {
		t.Fatal("refresh tokens still omitted after they were listed again")
	}
	if code, _ := e.admin(t, "POST", "/admin/list-refresh-tokens", map[string]any{"component_appid": "wx9999999999999999", "listed": false}); code != 404 {
		t.Fatalf("unknown component: %d, want 404", code)
	}
}
