/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

const (
	compID     = "wx0123456789abcdef"
	compSecret = "0123456789abcdef0123456789abcdef"
	compToken  = "simtesttoken"
	otherComp  = "wxfedcba9876543210"
	authzID    = "wx1111111111111111"
	authzID2   = "wx2222222222222222"
)

var (
	compKey  = GenerateEncodingAESKey()
	otherKey = GenerateEncodingAESKey()
	epoch    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

type env struct {
	sim   *Simulator
	clock *testclock.FakeClock
	srv   *httptest.Server
}

// newEnv starts a simulator with one component (compID) and one seeded
// account profile (authzID, not yet authorized) behind an httptest server.
func newEnv(t *testing.T, mutate func(*Options)) *env {
	t.Helper()
	fc := testclock.NewFakeClock(epoch)
	opts := Options{
		Clock: fc,
		Components: []ComponentSeed{
			{AppID: compID, AppSecret: compSecret, Token: compToken, EncodingAESKey: compKey},
			{AppID: otherComp, AppSecret: "othersecret", Token: "othertoken", EncodingAESKey: otherKey},
		},
		Authorizers: []AuthorizerSeed{{
			ComponentAppID: compID, AppID: authzID, NickName: "Demo Shop", ServiceType: 2, VerifyType: 0,
			UserName: "gh_eb5e3a772040", PrincipalName: "Demo Ltd.", Alias: "demoshop",
			Business: BusinessInfo{OpenPay: 1, OpenCard: 1}, QRCodeURL: "http://qr.example/demo", FuncInfo: []int{1, 2, 3},
		}},
		PushRetryDelay: time.Second,
	}
	if mutate != nil {
		mutate(&opts)
	}
	sim, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close) // runs first: releases requests held by timeouts
	return &env{sim: sim, clock: fc, srv: srv}
}

// post calls a component endpoint with a raw JSON body and returns the
// decoded answer.
func (e *env) post(t *testing.T, api, token string, body map[string]any) map[string]any {
	t.Helper()
	u := e.srv.URL + "/cgi-bin/component/" + api
	if token != "" {
		u += "?component_access_token=" + token
	}
	b, _ := json.Marshal(body)
	resp, err := http.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", api, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: decoding answer: %v", api, err)
	}
	return out
}

func errcode(m map[string]any) int {
	c, _ := m["errcode"].(float64)
	return int(c)
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func wantErrcode(t *testing.T, m map[string]any, want int) {
	t.Helper()
	if got := errcode(m); got != want {
		t.Fatalf("errcode = %d, want %d (answer %v)", got, want, m)
	}
}

// componentToken gets a ticket and a component token the raw way.
func (e *env) componentToken(t *testing.T) string {
	t.Helper()
	ticket, err := e.sim.IssueTicket(compID)
	if err != nil {
		t.Fatal(err)
	}
	m := e.post(t, APIComponentToken, "", map[string]any{
		"component_appid": compID, "component_appsecret": compSecret, "component_verify_ticket": ticket,
	})
	wantErrcode(t, m, 0)
	tok := str(m, "component_access_token")
	if tok == "" {
		t.Fatalf("no component_access_token in %v", m)
	}
	return tok
}

// authorize makes authzID authorize compID and exchanges the code, returning
// the authorization_info.
func (e *env) authorize(t *testing.T, ctok, appID string) map[string]any {
	t.Helper()
	res, err := e.sim.Authorize(t.Context(), AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: appID})
	if err != nil {
		t.Fatal(err)
	}
	m := e.post(t, APIQueryAuth, ctok, map[string]any{"component_appid": compID, "authorization_code": res.AuthCode})
	wantErrcode(t, m, 0)
	ai, _ := m["authorization_info"].(map[string]any)
	if ai == nil {
		t.Fatalf("no authorization_info in %v", m)
	}
	return ai
}

// pushMsg is a decrypted push.
type pushMsg struct {
	Query                        map[string]string
	AppID                        string `xml:"AppId"`
	CreateTime                   int64  `xml:"CreateTime"`
	InfoType                     string `xml:"InfoType"`
	ComponentVerifyTicket        string `xml:"ComponentVerifyTicket"`
	AuthorizerAppid              string `xml:"AuthorizerAppid"`
	AuthorizationCode            string `xml:"AuthorizationCode"`
	AuthorizationCodeExpiredTime int64  `xml:"AuthorizationCodeExpiredTime"`
	PreAuthCode                  string `xml:"PreAuthCode"`
}

// receiver is a test 授权事件接收URL: it verifies both signatures, decrypts
// with wxcrypto and hands every push to a channel. The first failFirst
// requests are answered with failure.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	pushes chan pushMsg
	errs   chan error

	mu        sync.Mutex
	failFirst int
	requests  int
}

func newReceiver(t *testing.T, token, key, appID string, failFirst int) *receiver {
	t.Helper()
	cr, err := wxcrypto.NewCrypter(token, key, appID)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{t: t, pushes: make(chan pushMsg, 32), errs: make(chan error, 32), failFirst: failFirst}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.requests++
		fail := rc.requests <= rc.failFirst
		rc.mu.Unlock()
		if fail {
			_, _ = io.WriteString(w, "not yet")
			return
		}
		q := r.URL.Query()
		body, _ := io.ReadAll(r.Body)
		parts := []string{token, q.Get("timestamp"), q.Get("nonce")}
		sort.Strings(parts)
		sum := sha1.Sum([]byte(strings.Join(parts, "")))
		if q.Get("signature") != hex.EncodeToString(sum[:]) || q.Get("encrypt_type") != "aes" || r.Method != http.MethodPost {
			rc.errs <- errBadPush("plain signature, encrypt_type or method wrong")
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		plain, err := cr.Open(body, q.Get("timestamp"), q.Get("nonce"), q.Get("msg_signature"))
		if err != nil {
			rc.errs <- err
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		if _, err := wxcrypto.ParsePush(plain); err != nil {
			rc.errs <- err
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		var m pushMsg
		if err := xml.Unmarshal(plain, &m); err != nil {
			rc.errs <- err
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		m.Query = map[string]string{"timestamp": q.Get("timestamp"), "nonce": q.Get("nonce")}
		rc.pushes <- m
		_, _ = io.WriteString(w, "success")
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

type errBadPush string

func (e errBadPush) Error() string { return string(e) }

func (rc *receiver) next(t *testing.T) pushMsg {
	t.Helper()
	select {
	case m := <-rc.pushes:
		return m
	case err := <-rc.errs:
		t.Fatalf("receiver rejected a push: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no push within 10s")
	}
	return pushMsg{}
}

func (rc *receiver) requestCount() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-poll.C:
		}
	}
}

func decode(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer func() { _ = resp.Body.Close() }()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decoding %s answer: %v", resp.Request.URL.Path, err)
	}
}
