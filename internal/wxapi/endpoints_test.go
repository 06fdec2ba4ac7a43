/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

func TestEveryEndpointAgainstTheSimulator(t *testing.T) {
	e := newTestEnv(t, func(o *wxsim.Options) { o.RotateRefreshTokens = true }, nil)
	ctx := t.Context()

	if err := e.client.StartPushTicket(ctx, compID, compSecret); err != nil {
		t.Fatalf("StartPushTicket: %v", err)
	}
	ct, err := e.client.ComponentToken(ctx, compID, compSecret, e.ticket(t))
	if err != nil {
		t.Fatalf("ComponentToken: %v", err)
	}
	if ct.AccessToken == "" || ct.ExpiresIn != 2*time.Hour {
		t.Fatalf("component token = %+v", ct)
	}
	if e.sim.TokenState(ct.AccessToken) != 0 {
		t.Fatal("simulator does not know the returned token")
	}

	pac, err := e.client.CreatePreAuthCode(ctx, ct.AccessToken, compID)
	if err != nil {
		t.Fatalf("CreatePreAuthCode: %v", err)
	}
	if !strings.HasPrefix(pac.Code, "preauthcode@@@") || pac.ExpiresIn != 10*time.Minute {
		t.Fatalf("pre-auth code = %+v", pac)
	}

	res, err := e.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID, PreAuthCode: pac.Code})
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	ai, err := e.client.QueryAuth(ctx, ct.AccessToken, compID, res.AuthCode)
	if err != nil {
		t.Fatalf("QueryAuth: %v", err)
	}
	if ai.AuthorizerAppID != authzID || ai.AccessToken == "" || ai.ExpiresIn != 2*time.Hour ||
		!strings.HasPrefix(ai.RefreshToken, "refreshtoken@@@") || !reflect.DeepEqual(ai.FuncInfo, []int{1, 2, 15}) {
		t.Fatalf("authorization info = %+v", ai)
	}

	at, err := e.client.AuthorizerToken(ctx, ct.AccessToken, compID, authzID, ai.RefreshToken)
	if err != nil {
		t.Fatalf("AuthorizerToken: %v", err)
	}
	if at.AccessToken == "" || at.AccessToken == ai.AccessToken || at.ExpiresIn != 2*time.Hour || at.RefreshToken == ai.RefreshToken {
		t.Fatalf("authorizer token = %+v (rotation is on: the refresh token must change)", at)
	}
	if cur, _ := e.sim.RefreshToken(compID, authzID); cur != at.RefreshToken {
		t.Fatal("returned refresh token is not the simulator's current one")
	}

	info, err := e.client.GetAuthorizerInfo(ctx, ct.AccessToken, compID, authzID)
	if err != nil {
		t.Fatalf("GetAuthorizerInfo: %v", err)
	}
	want := AuthorizerInfo{
		AuthorizerAppID: authzID, NickName: "Demo Shop", HeadImg: "http://wx.qlogo.cn/mmopen/demo/0",
		ServiceType: 2, VerifyType: 0, UserName: "gh_eb5e3a772040", PrincipalName: "Demo Ltd.", Alias: "demoshop",
		Signature: "We sell things", BusinessInfo: BusinessInfo{OpenStore: 1, OpenPay: 1, OpenShake: 1},
		QRCodeURL: "http://mmbiz.qpic.cn/demo/0", FuncInfo: []int{1, 2, 15}, RefreshToken: at.RefreshToken,
	}
	if !reflect.DeepEqual(info, want) {
		t.Fatalf("authorizer info\n got %+v\nwant %+v", info, want)
	}

	list, err := e.client.GetAuthorizerList(ctx, ct.AccessToken, compID, 0, 500)
	if err != nil {
		t.Fatalf("GetAuthorizerList: %v", err)
	}
	if list.TotalCount != 1 || len(list.List) != 1 || list.List[0].AuthorizerAppID != authzID ||
		list.List[0].RefreshToken != at.RefreshToken || !list.List[0].AuthTime.Equal(epoch) {
		t.Fatalf("authorizer list = %+v", list)
	}

	if err := e.client.ClearQuota(ctx, ct.AccessToken, compID); err != nil {
		t.Fatalf("ClearQuota: %v", err)
	}

	// Exactly one WeChat call per method call.
	for _, api := range []string{APIStartPushTicket, APIComponentToken, APICreatePreAuthCode, APIQueryAuth, APIAuthorizerToken, APIGetAuthorizerInfo, APIGetAuthorizerList, APIClearQuota} {
		if n := e.sim.Calls(api, compID); n != 1 {
			t.Errorf("simulator saw %d calls of %s, want 1", n, api)
		}
		if v := counterValue(t, e.reg, api, "0"); v != 1 {
			t.Errorf("wechat_api_requests_total{api=%q,errcode=\"0\"} = %v, want 1", api, v)
		}
	}
}

func TestMiniProgramInfo(t *testing.T) {
	e := newTestEnv(t, func(o *wxsim.Options) {
		o.Authorizers = append(o.Authorizers, wxsim.AuthorizerSeed{ComponentAppID: compID, AppID: "wx2222222222222222", MiniProgram: true, Authorized: true})
	}, nil)
	tok := e.token(t)
	info, err := e.client.GetAuthorizerInfo(t.Context(), tok, compID, "wx2222222222222222")
	if err != nil {
		t.Fatal(err)
	}
	if !info.MiniProgram || info.RefreshToken == "" {
		t.Fatalf("info = %+v", info)
	}
}

func TestFindAuthorizerPages(t *testing.T) {
	e := newTestEnv(t, func(o *wxsim.Options) {
		for i := range 1203 {
			id := fmt.Sprintf("wx%016d", i)
			o.Authorizers = append(o.Authorizers, wxsim.AuthorizerSeed{ComponentAppID: compID, AppID: id, Authorized: true})
		}
	}, nil)
	tok := e.token(t)
	item, found, err := e.client.FindAuthorizer(t.Context(), tok, compID, "wx0000000000001202")
	if err != nil || !found || item.RefreshToken == "" {
		t.Fatalf("FindAuthorizer = %+v, %v, %v", item, found, err)
	}
	if n := e.sim.Calls(APIGetAuthorizerList, compID); n != 3 {
		t.Fatalf("pages fetched = %d, want 3", n)
	}
	if want, _ := e.sim.RefreshToken(compID, "wx0000000000001202"); want != item.RefreshToken {
		t.Fatal("recovered refresh token differs")
	}
	_, found, err = e.client.FindAuthorizer(t.Context(), tok, compID, authzID)
	if err != nil || found {
		t.Fatalf("never-authorized account found=%v err=%v", found, err)
	}
}

func TestGetAuthorizerListValidatesCount(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	for _, tc := range []struct{ offset, count int }{{0, 0}, {0, 501}, {-1, 10}} {
		if _, err := e.client.GetAuthorizerList(t.Context(), "tokentokentokentoken", compID, tc.offset, tc.count); err == nil {
			t.Errorf("offset %d count %d accepted", tc.offset, tc.count)
		}
	}
	if n := e.sim.Calls(APIGetAuthorizerList, compID); n != 0 {
		t.Fatalf("invalid arguments reached WeChat %d times", n)
	}
}

// wireCase records what one method sends and answers canned JSON.
type wireCase struct {
	name      string
	call      func(c *Client) error
	path      string
	token     string
	body      map[string]any
	answer    string
	checkFunc func(t *testing.T)
}

// TestWireFormat pins each request to WeChat's documented path, query and
// JSON field names, and parses WeChat's documented sample answers,
// independently of the simulator.
func TestWireFormat(t *testing.T) {
	var (
		gotInfo AuthorizerInfo
		gotAI   AuthorizationInfo
		gotList AuthorizerList
		gotAT   AuthorizerToken
	)
	cases := []wireCase{
		{
			name: "api_component_token",
			call: func(c *Client) error {
				_, err := c.ComponentToken(t.Context(), "appid_value", "appsecret_value", "ticket_value")
				return err
			},
			path:   "/cgi-bin/component/api_component_token",
			body:   map[string]any{"component_appid": "appid_value", "component_appsecret": "appsecret_value", "component_verify_ticket": "ticket_value"},
			answer: `{"component_access_token":"61W3mEpU66027wgNZ_MhGHNQDHnFATkDa9-2llqrMBjUwxRSNPbVsMmyD-yq8wZETSoE5NQgecigDrSHkPtIYA","expires_in":7200}`,
		},
		{
			name:   "api_start_push_ticket",
			call:   func(c *Client) error { return c.StartPushTicket(t.Context(), "appid_value", "secret_value") },
			path:   "/cgi-bin/component/api_start_push_ticket",
			body:   map[string]any{"component_appid": "appid_value", "component_secret": "secret_value"},
			answer: `{"errcode":0,"errmsg":"ok"}`,
		},
		{
			name: "api_create_preauthcode",
			call: func(c *Client) error {
				_, err := c.CreatePreAuthCode(t.Context(), "COMPONENT_ACCESS_TOKEN", "appid_value")
				return err
			},
			path:   "/cgi-bin/component/api_create_preauthcode",
			token:  "COMPONENT_ACCESS_TOKEN",
			body:   map[string]any{"component_appid": "appid_value"},
			answer: `{"pre_auth_code":"Cx_Dk6qiBE0Dmx4EmlT3oRfArPvwSQ-oa3NL_fwHM7VI08r52wazoZX2Rhpz1dEw","expires_in":600}`,
		},
		{
			name: "api_query_auth",
			call: func(c *Client) (err error) {
				gotAI, err = c.QueryAuth(t.Context(), "COMPONENT_ACCESS_TOKEN", "appid_value", "auth_code_value")
				return err
			},
			path:   "/cgi-bin/component/api_query_auth",
			token:  "COMPONENT_ACCESS_TOKEN",
			body:   map[string]any{"component_appid": "appid_value", "authorization_code": "auth_code_value"},
			answer: `{"authorization_info": {"authorizer_appid": "wxf8b4f85f3a794e77","authorizer_access_token": "QXjUqNqfYVH0yBE1iI_7vuN_9gQbpjfK7hYwJ3P7xOa88a89-Aga5x1NMYJyB8G2yKt1KCl0nPC3W9GJzw0Zzq_dBxc8pxIGUNi_bFes0qM","expires_in": 7200,"authorizer_refresh_token": "dTo-YCXPL4llX-u1W1pPpnp8Hgm4wpJtlR6iV0doKdY","func_info": [{"funcscope_category": {"id": 1}},{"funcscope_category": {"id": 2}},{"funcscope_category": {"id": 3}}]}}`,
			checkFunc: func(t *testing.T) {
				if gotAI.AuthorizerAppID != "wxf8b4f85f3a794e77" || gotAI.RefreshToken != "dTo-YCXPL4llX-u1W1pPpnp8Hgm4wpJtlR6iV0doKdY" ||
					gotAI.ExpiresIn != 7200*time.Second || !reflect.DeepEqual(gotAI.FuncInfo, []int{1, 2, 3}) || !strings.HasPrefix(gotAI.AccessToken, "QXjUqNq") {
					t.Fatalf("parsed %+v", gotAI)
				}
			},
		},
		{
			name: "api_authorizer_token without a new refresh token",
			call: func(c *Client) (err error) {
				gotAT, err = c.AuthorizerToken(t.Context(), "COMPONENT_ACCESS_TOKEN", "appid_value", "auth_appid_value", "refresh_value")
				return err
			},
			path:   "/cgi-bin/component/api_authorizer_token",
			token:  "COMPONENT_ACCESS_TOKEN",
			body:   map[string]any{"component_appid": "appid_value", "authorizer_appid": "auth_appid_value", "authorizer_refresh_token": "refresh_value"},
			answer: `{"authorizer_access_token":"some-token","expires_in":7200}`,
			checkFunc: func(t *testing.T) {
				if gotAT.RefreshToken != "refresh_value" || gotAT.AccessToken != "some-token" {
					t.Fatalf("parsed %+v: an answer without a refresh token keeps the one sent", gotAT)
				}
			},
		},
		{
			name: "api_get_authorizer_info (older answer with appid)",
			call: func(c *Client) (err error) {
				gotInfo, err = c.GetAuthorizerInfo(t.Context(), "COMPONENT_ACCESS_TOKEN", "appid_value", "auth_appid_value")
				return err
			},
			path:  "/cgi-bin/component/api_get_authorizer_info",
			token: "COMPONENT_ACCESS_TOKEN",
			body:  map[string]any{"component_appid": "appid_value", "authorizer_appid": "auth_appid_value"},
			answer: `{"authorizer_info": {"nick_name": "微信SDK Demo Special", "head_img": "http://wx.qlogo.cn/mmopen/GPy", "service_type_info": { "id": 2 }, "verify_type_info": { "id": -1 },"user_name":"gh_eb5e3a772040",
				"principal_name":"腾讯计算机系统有限公司","business_info": {"open_store": 0, "open_scan": 1, "open_pay": 0, "open_card": 1, "open_shake": 0},"alias":"paytest01","qrcode_url":"URL"},
				"authorization_info": {"appid": "wxf8b4f85f3a794e77", "func_info": [{ "funcscope_category": { "id": 1 } }, { "funcscope_category": { "id": 2 } }, { "funcscope_category": { "id": 3 } }]}}`,
			checkFunc: func(t *testing.T) {
				want := AuthorizerInfo{
					AuthorizerAppID: "wxf8b4f85f3a794e77", NickName: "微信SDK Demo Special", HeadImg: "http://wx.qlogo.cn/mmopen/GPy",
					ServiceType: 2, VerifyType: -1, UserName: "gh_eb5e3a772040", PrincipalName: "腾讯计算机系统有限公司", Alias: "paytest01",
					BusinessInfo: BusinessInfo{OpenScan: 1, OpenCard: 1}, QRCodeURL: "URL", FuncInfo: []int{1, 2, 3},
				}
				if !reflect.DeepEqual(gotInfo, want) {
					t.Fatalf("parsed\n %+v\nwant %+v", gotInfo, want)
				}
			},
		},
		{
			name: "api_get_authorizer_list",
			call: func(c *Client) (err error) {
				gotList, err = c.GetAuthorizerList(t.Context(), "COMPONENT_ACCESS_TOKEN", "appid_value", 0, 100)
				return err
			},
			path:   "/cgi-bin/component/api_get_authorizer_list",
			token:  "COMPONENT_ACCESS_TOKEN",
			body:   map[string]any{"component_appid": "appid_value", "offset": float64(0), "count": float64(100)},
			answer: `{"total_count":33,"list":[{"authorizer_appid":"wx7bc6a8d3c8b4e6d1","refresh_token":"ZQRzP2Cv1kvrd","auth_time":1558000607}]}`,
			checkFunc: func(t *testing.T) {
				if gotList.TotalCount != 33 || len(gotList.List) != 1 || gotList.List[0].RefreshToken != "ZQRzP2Cv1kvrd" ||
					!gotList.List[0].AuthTime.Equal(time.Unix(1558000607, 0)) {
					t.Fatalf("parsed %+v", gotList)
				}
			},
		},
		{
			name:   "clear_quota",
			call:   func(c *Client) error { return c.ClearQuota(t.Context(), "COMPONENT_ACCESS_TOKEN", "appid_value") },
			path:   "/cgi-bin/component/clear_quota",
			token:  "COMPONENT_ACCESS_TOKEN",
			body:   map[string]any{"component_appid": "appid_value"},
			answer: `{"errcode":0,"errmsg":"ok"}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				raw, _ := io.ReadAll(r.Body)
				var body map[string]any
				_ = json.Unmarshal(raw, &body)
				q := r.URL.Query()
				var qkeys []string
				for k := range q {
					qkeys = append(qkeys, k)
				}
				sort.Strings(qkeys)
				wantKeys := []string{}
				if tc.token != "" {
					wantKeys = []string{"component_access_token"}
				}
				switch {
				case r.Method != http.MethodPost:
					t.Errorf("method %s", r.Method)
				case r.URL.Path != tc.path:
					t.Errorf("path %s, want %s", r.URL.Path, tc.path)
				case !slices.Equal(qkeys, wantKeys):
					t.Errorf("query keys %v, want %v", qkeys, wantKeys)
				case q.Get("component_access_token") != tc.token:
					t.Errorf("token %q, want %q", q.Get("component_access_token"), tc.token)
				case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
					t.Errorf("content type %q", r.Header.Get("Content-Type"))
				case !reflect.DeepEqual(body, tc.body):
					t.Errorf("body %s, want %v", raw, tc.body)
				}
				_, _ = io.WriteString(w, tc.answer)
			}))
			defer srv.Close()
			c := New(Options{BaseURL: srv.URL, Metrics: NewMetrics()})
			if err := tc.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			if tc.checkFunc != nil {
				tc.checkFunc(t)
			}
		})
	}
}

func TestMalformedAnswers(t *testing.T) {
	cases := map[string]struct {
		status int
		body   string
	}{
		"not JSON":              {200, "<html>gateway</html>"},
		"no token":              {200, `{"expires_in":7200}`},
		"no expires_in":         {200, `{"component_access_token":"abc"}`},
		"wrong type with error": {200, `{"component_access_token":5}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			calls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				calls++
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c := New(Options{BaseURL: srv.URL, Metrics: NewMetrics()})
			_, err := c.ComponentToken(t.Context(), compID, "secret-value", "ticket-value")
			var ne *NetworkError
			if !errors.As(err, &ne) || ne.Kind != "invalid_response" {
				t.Fatalf("err = %v, want an invalid_response NetworkError", err)
			}
			if calls != 1 {
				t.Fatalf("a malformed answer was retried: %d calls", calls)
			}
		})
	}
	// An errcode answer whose other fields do not fit still reads as an API error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"errcode":40125,"errmsg":"invalid appsecret","expires_in":"bogus"}`)
	}))
	defer srv.Close()
	_, err := New(Options{BaseURL: srv.URL, Metrics: NewMetrics()}).ComponentToken(t.Context(), compID, "s", "t")
	if !IsInvalidAppSecret(err) {
		t.Fatalf("err = %v, want 40125", err)
	}
}

func TestAuthorizationLink(t *testing.T) {
	l := AuthorizationLink{ComponentAppID: compID, PreAuthCode: "preauthcode@@@x", RedirectURI: "https://p.example/cb?a=1", AuthType: AuthTypeBoth, BizAppID: authzID}
	wantPC := "https://mp.weixin.qq.com/cgi-bin/componentloginpage?component_appid=wx0123456789abcdef&pre_auth_code=preauthcode%40%40%40x&redirect_uri=https%3A%2F%2Fp.example%2Fcb%3Fa%3D1&auth_type=3&biz_appid=wx1111111111111111"
	if got := l.PCURL(); got != wantPC {
		t.Errorf("PCURL\n got %s\nwant %s", got, wantPC)
	}
	wantMobile := "https://mp.weixin.qq.com/safe/bindcomponent?action=bindcomponent&no_scan=1&component_appid=wx0123456789abcdef&pre_auth_code=preauthcode%40%40%40x&redirect_uri=https%3A%2F%2Fp.example%2Fcb%3Fa%3D1&auth_type=3&biz_appid=wx1111111111111111#wechat_redirect"
	if got := l.MobileURL(); got != wantMobile {
		t.Errorf("MobileURL\n got %s\nwant %s", got, wantMobile)
	}
	l.AuthType, l.BizAppID = 0, ""
	if got := l.PCURL(); strings.Contains(got, "auth_type") || strings.Contains(got, "biz_appid") {
		t.Errorf("optional parameters present: %s", got)
	}
}
