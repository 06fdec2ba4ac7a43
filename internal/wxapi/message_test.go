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
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

func TestSendCustomTextWireFormat(t *testing.T) {
	var gotPath, gotQuery string
	var gotBody map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &gotBody)
		gotPath, gotQuery = r.URL.Path, r.URL.RawQuery
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	defer srv.Close()
	c := New(Options{BaseURL: srv.URL, Metrics: NewMetrics()})
	if err := c.SendCustomText(t.Context(), "AUTHORIZER_ACCESS_TOKEN", "OPENID", "Hello World"); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"touser": "OPENID", "msgtype": "text", "text": map[string]any{"content": "Hello World"}}
	if gotPath != "/cgi-bin/message/custom/send" || gotQuery != "access_token=AUTHORIZER_ACCESS_TOKEN" || !reflect.DeepEqual(gotBody, want) {
		t.Fatalf("sent %s?%s %v", gotPath, gotQuery, gotBody)
	}
}

func TestSendCustomTextAgainstTheSimulator(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	ai := e.authorize(t, e.token(t))
	if err := e.client.SendCustomText(t.Context(), ai.AccessToken, "oUser", "code_from_api"); err != nil {
		t.Fatalf("SendCustomText: %v", err)
	}
	msgs := e.sim.CustomMessages()
	if len(msgs) != 1 || msgs[0].ToUser != "oUser" || msgs[0].Content != "code_from_api" || msgs[0].AuthorizerAppID != authzID ||
		!msgs[0].SentAt.Equal(epoch) {
		t.Fatalf("the simulator recorded %+v", msgs)
	}

	// A component token is not an authorizer token: refused, and the error names neither
	// the token nor the content.
	ctok := e.token(t)
	err := e.client.SendCustomText(t.Context(), ctok, "oUser", "secret-code_from_api")
	if code, _ := Code(err); code != CodeInvalidCredential {
		t.Fatalf("with a component token: %v, want 40001", err)
	}
	if strings.Contains(err.Error(), ctok) || strings.Contains(err.Error(), "secret-code") {
		t.Fatalf("the error leaks: %v", err)
	}
	if strings.Contains(e.logs.String(), ctok) || strings.Contains(e.logs.String(), ai.AccessToken) {
		t.Fatal("the logs contain a token")
	}
	if err := e.client.SendCustomText(t.Context(), ai.AccessToken, "", "x"); !errors.Is(err, errEmptyArgument) {
		t.Fatalf("empty touser: %v", err)
	}
	if n := len(e.sim.CustomMessages()); n != 1 {
		t.Fatalf("%d messages recorded, want 1", n)
	}
}

func TestSendCustomTextIsNotRetriedOnceSent(t *testing.T) {
	// Real time and short waits, so that a retry, were there one, would happen at once.
	e := newTestEnv(t, nil, func(o *Options) {
		o.Clock = nil
		o.Retry = RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	})
	ai := e.authorize(t, e.token(t))
	// A 502 after the request reached WeChat: the message may have gone out.
	e.sim.AddFault(wxsim.Fault{API: APISendCustomMessage, HTTPStatus: http.StatusBadGateway})
	if err := e.client.SendCustomText(t.Context(), ai.AccessToken, "oUser", "hello"); err == nil {
		t.Fatal("the failure was hidden")
	}
	if n := e.sim.Calls(APISendCustomMessage, authzID); n != 1 {
		t.Fatalf("%d attempts, want 1: a repeat could deliver the message twice", n)
	}
}
