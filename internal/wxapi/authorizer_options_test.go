/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

func TestAuthorizerOptionsAgainstTheSimulator(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	ctx := t.Context()
	ctok := e.token(t)
	if _, err := e.client.GetAuthorizerOption(ctx, ctok, compID, authzID, OptionVoiceRecognize); !IsNotAuthorized(err) {
		t.Fatalf("before the authorization: err = %v, want 61003", err)
	}
	e.authorize(t, ctok)

	if v, err := e.client.GetAuthorizerOption(ctx, ctok, compID, authzID, OptionLocationReport); err != nil || v != 0 {
		t.Fatalf("GetAuthorizerOption = %d, %v; want 0", v, err)
	}
	if err := e.client.SetAuthorizerOption(ctx, ctok, compID, authzID, OptionLocationReport, 2); err != nil {
		t.Fatalf("SetAuthorizerOption: %v", err)
	}
	if v, err := e.client.GetAuthorizerOption(ctx, ctok, compID, authzID, OptionLocationReport); err != nil || v != 2 {
		t.Fatalf("after setting 2: %d, %v", v, err)
	}
	if err := e.client.SetAuthorizerOption(ctx, ctok, compID, authzID, OptionVoiceRecognize, 2); !IsInvalidArgs(err) {
		t.Fatalf("a value out of range: err = %v, want 40097", err)
	}
	if _, err := e.client.GetAuthorizerOption(ctx, ctok, compID, authzID, "no_such_option"); !IsInvalidArgs(err) {
		t.Fatalf("an unknown option: err = %v, want 40097", err)
	}
	e.sim.AddFault(wxsim.Fault{API: APISetAuthorizerOption, ErrCode: CodeAPISetUnauthorized})
	if err := e.client.SetAuthorizerOption(ctx, ctok, compID, authzID, OptionCustomerService, 1); !IsAPISetUnauthorized(err) {
		t.Fatalf("err = %v, want 61007", err)
	}
	if got := counterOf(t, e.metrics, APIGetAuthorizerOption, "0"); got != 2 {
		t.Fatalf("wechat_api_requests_total{api=%q,errcode=0} = %v, want 2", APIGetAuthorizerOption, got)
	}
}

func TestAuthorizerOptionWireFormat(t *testing.T) {
	var got map[string]any
	var path, query string
	answer := `{"authorizer_appid":"wx7bc5ba58cabd00f4","option_name":"voice_recognize","option_value":"1"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, query = r.URL.Path, r.URL.RawQuery
		got = nil
		_ = json.NewDecoder(r.Body).Decode(&got)
		_, _ = io.WriteString(w, answer)
	}))
	defer srv.Close()
	c := New(Options{BaseURL: srv.URL, Metrics: NewMetrics()})

	v, err := c.GetAuthorizerOption(t.Context(), "TOKEN", "appid_value", "wx7bc5ba58cabd00f4", OptionVoiceRecognize)
	if err != nil || v != 1 {
		t.Fatalf("GetAuthorizerOption = %d, %v", v, err)
	}
	if path != "/cgi-bin/component/api_get_authorizer_option" || query != "component_access_token=TOKEN" ||
		got["component_appid"] != "appid_value" || got["authorizer_appid"] != "wx7bc5ba58cabd00f4" || got["option_name"] != "voice_recognize" || len(got) != 3 {
		t.Fatalf("request = %s?%s %v", path, query, got)
	}

	answer = `{"errcode":0,"errmsg":"ok"}`
	if err := c.SetAuthorizerOption(t.Context(), "TOKEN", "appid_value", "wx7bc5ba58cabd00f4", OptionLocationReport, 2); err != nil {
		t.Fatal(err)
	}
	if path != "/cgi-bin/component/api_set_authorizer_option" || got["option_value"] != "2" || got["option_name"] != "location_report" {
		t.Fatalf("request = %s %v; option_value goes as the string \"2\"", path, got)
	}

	for name, bad := range map[string]string{
		"another account": `{"authorizer_appid":"wx0000000000000000","option_name":"voice_recognize","option_value":"1"}`,
		"another option":  `{"authorizer_appid":"wx7bc5ba58cabd00f4","option_name":"location_report","option_value":"1"}`,
		"no value":        `{"authorizer_appid":"wx7bc5ba58cabd00f4","option_name":"voice_recognize"}`,
		"not a number":    `{"option_value":"on"}`,
		"negative":        `{"option_value":-1}`,
	} {
		answer = bad
		_, err := c.GetAuthorizerOption(t.Context(), "TOKEN", "appid_value", "wx7bc5ba58cabd00f4", OptionVoiceRecognize)
		var ne *NetworkError
		if !errors.As(err, &ne) || ne.Kind != "invalid_response" {
			t.Errorf("%s: err = %v, want an invalid_response", name, err)
		}
	}
}

func TestParseOptionValue(t *testing.T) {
	for raw, want := range map[string]int{`"0"`: 0, `"2"`: 2, `1`: 1, ` "1" `: 1} {
		if v, err := ParseOptionValue(json.RawMessage(raw)); err != nil || v != want {
			t.Errorf("ParseOptionValue(%s) = %d, %v; want %d", raw, v, err, want)
		}
	}
	for _, raw := range []string{``, `null`, `""`, `"x"`, `true`, `1.5`, `"-1"`, `99999999`, `"1`, `{}`} {
		if v, err := ParseOptionValue(json.RawMessage(raw)); err == nil {
			t.Errorf("ParseOptionValue(%s) = %d, want an error", raw, v)
		}
	}
}

// FuzzParseOptionValue: option_value comes from WeChat's answer; no input panics, and what
// is accepted is a small non-negative integer whose text round-trips.
func FuzzParseOptionValue(f *testing.F) {
	for _, s := range []string{`"1"`, `2`, `"-1"`, `null`, `"\u0031"`, `"1e3"`, `+1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := ParseOptionValue(raw)
		if err != nil {
			return
		}
		if v < 0 || v > maxOptionValue {
			t.Fatalf("accepted %d from %q", v, raw)
		}
		if _, err := ParseOptionValue(json.RawMessage(strconv.Quote(strconv.Itoa(v)))); err != nil {
			t.Fatalf("%d does not round-trip: %v", v, err)
		}
	})
}
