/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a running
// server and the reads of the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHelp(t *testing.T) {
	var out, errOut syncBuffer
	if code := run(t.Context(), []string{"--help"}, &out, &errOut, nil); code != 0 {
		t.Fatalf("--help exit code %d", code)
	}
	help := errOut.String()
	for _, want := range []string{"Usage:", "-listen", "-seed-file", "-receiver-url", "-token-lifetime", "-push-interval", "-rotate-refresh-tokens", "-quota", "docs/simulator.md"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestBadArguments(t *testing.T) {
	cases := map[string][]string{
		"no component":          {},
		"secret without appid":  {"--component-secret", "x"},
		"bad quota":             {"--component-appid", "wx1", "--quota", "api_component_token"},
		"stray argument":        {"extra"},
		"unknown flag":          {"--nope"},
		"missing seed file":     {"--seed-file", "/nonexistent/seed.json"},
		"invalid component key": {"--component-appid", "wx1", "--component-secret", "s", "--component-token", "t", "--component-aes-key", "short", "--listen", "127.0.0.1:0"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errOut syncBuffer
			if code := run(t.Context(), args, &out, &errOut, nil); code != 2 {
				t.Fatalf("exit code %d, want 2; stderr %s", code, errOut.String())
			}
			if errOut.String() == "" {
				t.Fatal("no error message")
			}
		})
	}
}

// TestServesAndPushes starts the command with a seed file and a component
// from flags, checks that both components receive an encrypted ticket at
// start-up, that the API and the admin API answer, and that it stops on
// cancellation.
func TestServesAndPushes(t *testing.T) {
	const (
		flagApp = "wx0123456789abcdef"
		seedApp = "wxfedcba9876543210"
	)
	flagKey, seedKey := wxsim.GenerateEncodingAESKey(), wxsim.GenerateEncodingAESKey()
	tickets := make(chan wxcrypto.TicketPush, 4)
	receiver := func(token, key, appID string) *httptest.Server {
		cr, err := wxcrypto.NewCrypter(token, key, appID)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			q := r.URL.Query()
			p, err := cr.OpenPush(body, q.Get("timestamp"), q.Get("nonce"), q.Get("msg_signature"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if tp, ok := p.(wxcrypto.TicketPush); ok {
				tickets <- tp
			}
			_, _ = io.WriteString(w, "success")
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	flagRecv := receiver("flagtoken", flagKey, flagApp)
	seedRecv := receiver("seedtoken", seedKey, seedApp)

	seed := wxsim.SeedFile{
		Components:  []wxsim.ComponentSeed{{AppID: seedApp, AppSecret: "seedsecret", Token: "seedtoken", EncodingAESKey: seedKey, ReceiverURL: seedRecv.URL + "/wechat/default/seeded"}},
		Authorizers: []wxsim.AuthorizerSeed{{ComponentAppID: seedApp, AppID: "wx1111111111111111", Authorized: true}},
	}
	seedPath := filepath.Join(t.TempDir(), "seed.json")
	raw, _ := json.Marshal(seed)
	if err := os.WriteFile(seedPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrCh := make(chan net.Addr, 1)
	var out, errOut syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{
			"--listen", "127.0.0.1:0", "--seed-file", seedPath,
			"--component-appid", flagApp, "--component-secret", "flagsecret", "--component-token", "flagtoken",
			"--component-aes-key", flagKey, "--receiver-url", flagRecv.URL + "/wechat/{appid}",
			"--authorizer", "wx2222222222222222", "--token-lifetime", "10m", "--quota", "api_component_token=5",
		}, &out, &errOut, func(a net.Addr) { addrCh <- a })
	}()
	var base string
	select {
	case a := <-addrCh:
		base = "http://" + a.String()
	case code := <-exit:
		t.Fatalf("exited early with %d: %s", code, errOut.String())
	case <-time.After(10 * time.Second):
		t.Fatal("did not start")
	}

	got := map[string]string{}
	for range 2 {
		select {
		case tp := <-tickets:
			got[tp.AppID] = tp.Ticket
		case <-time.After(10 * time.Second):
			t.Fatalf("start-up pushes received: %v", got)
		}
	}
	if got[flagApp] == "" || got[seedApp] == "" {
		t.Fatalf("start-up pushes = %v", got)
	}

	// The pushed ticket buys a token with the configured lifetime.
	body, _ := json.Marshal(map[string]string{"component_appid": flagApp, "component_appsecret": "flagsecret", "component_verify_ticket": got[flagApp]})
	resp, err := http.Post(base+"/cgi-bin/component/api_component_token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	_ = resp.Body.Close()
	if tok["expires_in"] != float64(600) || tok["component_access_token"] == nil {
		t.Fatalf("token answer = %v", tok)
	}

	resp, err = http.Get(base + "/admin/state")
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Components []wxsim.ComponentStatus `json:"components"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&state)
	_ = resp.Body.Close()
	if len(state.Components) != 2 || state.Components[0].AppID != flagApp || len(state.Components[0].Authorizers) != 1 ||
		state.Components[0].ReceiverURL != flagRecv.URL+"/wechat/"+flagApp || !state.Components[1].Authorizers[0].Authorized {
		t.Fatalf("state = %+v", state)
	}
	resp, err = http.Get(base + "/admin/quotas")
	if err != nil {
		t.Fatal(err)
	}
	var quotas map[string]map[string]int
	_ = json.NewDecoder(resp.Body).Decode(&quotas)
	_ = resp.Body.Close()
	if quotas["quotas"]["api_component_token"] != 5 {
		t.Fatalf("quotas = %v", quotas)
	}
	if !strings.Contains(out.String(), "listening on http://127.0.0.1:") {
		t.Fatalf("stdout = %q", out.String())
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code %d: %s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after cancellation")
	}
	for _, secret := range []string{"flagsecret", "seedsecret", flagKey, seedKey, got[flagApp], got[seedApp]} {
		if strings.Contains(errOut.String(), secret) {
			t.Fatalf("log contains a secret: %s", errOut.String())
		}
	}
}
