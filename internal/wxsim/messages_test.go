/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

func (e *env) customSend(t *testing.T, token string, body map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(e.srv.URL+"/cgi-bin/message/custom/send?access_token="+token, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCustomSendChecksTheTokenAndTheMessage(t *testing.T) {
	e := newEnv(t, nil)
	ctok := e.componentToken(t)
	atok := str(e.authorize(t, ctok, authzID), "authorizer_access_token")
	text := func(touser, content string) map[string]any {
		return map[string]any{"touser": touser, "msgtype": "text", "text": map[string]any{"content": content}}
	}
	cases := map[string]struct {
		token string
		body  map[string]any
		want  int
	}{
		"no token":                {"", text("oUser", "hi"), 41001},
		"a component token":       {ctok, text("oUser", "hi"), 40001},
		"no touser":               {atok, text("", "hi"), 40003},
		"a type it does not know": {atok, map[string]any{"touser": "oUser", "msgtype": "image", "image": map[string]any{"media_id": "x"}}, 40008},
		"empty content":           {atok, text("oUser", ""), 44004},
		"a good one":              {atok, text("oUser", "hi there"), 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			wantErrcode(t, e.customSend(t, tc.token, tc.body), tc.want)
		})
	}
	msgs := e.sim.CustomMessages()
	if len(msgs) != 1 || msgs[0].Content != "hi there" || msgs[0].ToUser != "oUser" || msgs[0].ComponentAppID != compID ||
		msgs[0].AuthorizerAppID != authzID || !msgs[0].SentAt.Equal(epoch) {
		t.Fatalf("recorded %+v, want the one good message", msgs)
	}

	// A revoked account's token stops working.
	if _, err := e.sim.Revoke(t.Context(), compID, authzID); err != nil {
		t.Fatal(err)
	}
	wantErrcode(t, e.customSend(t, atok, text("oUser", "hi")), 40001)
}

// messageReceiver is a 消息与事件接收URL for the simulator's messages: it checks and decrypts
// each message and answers with what answer returns for it.
func messageReceiver(t *testing.T, answer func(query map[string]string, envelope, plain []byte) []byte) string {
	t.Helper()
	cr, err := wxcrypto.NewCrypter(compToken, compKey, compID)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q := r.URL.Query()
		plain, err := cr.Open(body, q.Get("timestamp"), q.Get("nonce"), q.Get("msg_signature"))
		if err != nil {
			t.Errorf("the simulator's message does not open: %v", err)
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		query := map[string]string{}
		for k := range q {
			query[k] = q.Get(k)
		}
		query["path"] = r.URL.Path
		_, _ = w.Write(answer(query, body, plain))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/messages/$APPID$"
}

func TestSendMessageAsWeChatDoes(t *testing.T) {
	var gotQuery map[string]string
	var gotEnvelope, gotPlain []byte
	url := messageReceiver(t, func(q map[string]string, env, plain []byte) []byte {
		gotQuery, gotEnvelope, gotPlain = q, env, plain
		return []byte("success")
	})
	e := newEnv(t, func(o *Options) { o.Components[0].MessageURL = url })
	reply, err := e.sim.SendMessage(t.Context(), MessageRequest{ComponentAppID: compID, AuthorizerAppID: authzID,
		FromUser: "oUser", MsgType: "text", Content: "hello <world>"})
	if err != nil {
		t.Fatal(err)
	}
	if !reply.Empty || reply.StatusCode != 200 {
		t.Fatalf("reply = %+v, want an empty one", reply)
	}
	if gotQuery["path"] != "/messages/"+authzID || gotQuery["encrypt_type"] != "aes" || gotQuery["openid"] != "oUser" ||
		gotQuery["signature"] != plainSignature(compToken, gotQuery["timestamp"], gotQuery["nonce"]) {
		t.Fatalf("query = %v", gotQuery)
	}
	env, err := wxcrypto.ParseEnvelope(gotEnvelope)
	if err != nil || env.ToUserName != "gh_eb5e3a772040" || env.AppID != "" {
		t.Fatalf("envelope %q: %+v %v", gotEnvelope, env, err)
	}
	var m struct {
		ToUserName, FromUserName, MsgType, Content string
		CreateTime                                 int64
		MsgID                                      int64 `xml:"MsgId"`
	}
	if err := xml.Unmarshal(gotPlain, &m); err != nil {
		t.Fatal(err)
	}
	if m.ToUserName != "gh_eb5e3a772040" || m.FromUserName != "oUser" || m.MsgType != "text" || m.Content != "hello <world>" ||
		m.CreateTime != epoch.Unix() || m.MsgID == 0 {
		t.Fatalf("message = %+v", m)
	}
}

func TestSendMessageChecksTheReply(t *testing.T) {
	good, err := wxcrypto.NewCrypter(compToken, compKey, compID)
	if err != nil {
		t.Fatal(err)
	}
	wrongToken, _ := wxcrypto.NewCrypter("not-the-token", compKey, compID)
	wrongKey, _ := wxcrypto.NewCrypter(compToken, otherKey, compID)
	reply := []byte("<xml><ToUserName><![CDATA[oUser]]></ToUserName><FromUserName><![CDATA[gh_eb5e3a772040]]></FromUserName>" +
		"<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>")
	seal := func(c *wxcrypto.Crypter) []byte {
		b, err := c.SealReply(reply, "1700000000", "12345")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string]struct {
		answer  []byte
		wantErr string
	}{
		"a good reply":               {seal(good), ""},
		"signed with another token":  {seal(wrongToken), "MsgSignature"},
		"encrypted with another key": {seal(wrongKey), "decrypting"},
		"a plaintext reply":          {reply, "Encrypt"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			url := messageReceiver(t, func(map[string]string, []byte, []byte) []byte { return tc.answer })
			e := newEnv(t, func(o *Options) { o.Components[0].MessageURL = url })
			r, err := e.sim.SendMessage(t.Context(), MessageRequest{ComponentAppID: compID, AuthorizerAppID: authzID, MsgType: "text", Content: "x"})
			if tc.wantErr == "" {
				if err != nil || r.Content != "hi" || r.ToUserName != "oUser" || r.MsgType != "text" {
					t.Fatalf("reply %+v, err %v", r, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one about %q", err, tc.wantErr)
			}
		})
	}
}

func TestReleaseTestStopsAtTheFirstWrongAnswer(t *testing.T) {
	cr, _ := wxcrypto.NewCrypter(compToken, compKey, compID)
	// Answers the event right, but the text with the wrong content.
	url := messageReceiver(t, func(_ map[string]string, _, plain []byte) []byte {
		var m struct{ ToUserName, FromUserName, MsgType, Event string }
		_ = xml.Unmarshal(plain, &m)
		content := "wrong"
		if m.MsgType == "event" {
			content = m.Event + "from_callback"
		}
		b, _ := cr.SealReply([]byte("<xml><ToUserName><![CDATA["+m.FromUserName+"]]></ToUserName><FromUserName><![CDATA["+
			m.ToUserName+"]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA["+
			content+"]]></Content></xml>"), "1700000000", "12345")
		return b
	})
	e := newEnv(t, func(o *Options) { o.Components[0].MessageURL = url })
	rt, err := e.sim.StartReleaseTest(t.Context(), compID, ReleaseTestAccount{AppID: "wx570bc396a51b8ff8", UserName: "gh_3c884a361561"})
	if err == nil || !strings.Contains(err.Error(), "text case") {
		t.Fatalf("err = %v, want the text case to fail", err)
	}
	if rt.Event.Content != "LOCATIONfrom_callback" || rt.Code != "" {
		t.Fatalf("the event case passed as %q and no code was sent: %+v", rt.Event.Content, rt)
	}
}

func TestCheckReleaseTest(t *testing.T) {
	e := newEnv(t, nil)
	ctok := e.componentToken(t)
	code, _, err := e.sim.IssueAuthCode(compID, authzID)
	if err != nil {
		t.Fatal(err)
	}
	rt := &ReleaseTest{ComponentAppID: compID, Account: ReleaseTestAccount{AppID: authzID}, User: "oTester", Code: code, CodeSentAt: epoch}
	if _, err := e.sim.CheckReleaseTest(rt, time.Minute); err == nil {
		t.Fatal("passed without a message")
	}
	m := e.post(t, APIQueryAuth, ctok, map[string]any{"component_appid": compID, "authorization_code": code})
	wantErrcode(t, m, 0)
	atok := str(m["authorization_info"].(map[string]any), "authorizer_access_token")
	text := map[string]any{"touser": "oTester", "msgtype": "text", "text": map[string]any{"content": code + "_from_api"}}

	e.clock.Step(2 * time.Minute)
	wantErrcode(t, e.customSend(t, atok, text), 0)
	if _, err := e.sim.CheckReleaseTest(rt, time.Minute); err == nil || !strings.Contains(err.Error(), "after QUERY_AUTH_CODE") {
		t.Fatalf("a late message: %v", err)
	}
	if _, err := e.sim.CheckReleaseTest(rt, 3*time.Minute); err != nil {
		t.Fatalf("in time: %v", err)
	}
	wantErrcode(t, e.customSend(t, atok, text), 0)
	if _, err := e.sim.CheckReleaseTest(rt, 3*time.Minute); err == nil || !strings.Contains(err.Error(), "2 times") {
		t.Fatalf("a message sent twice: %v", err)
	}
}
