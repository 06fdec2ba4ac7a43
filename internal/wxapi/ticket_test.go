/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// TestGetTicketWireFormat pins getticket to WeChat's documented request (a GET with
// access_token and type in the query, no body) and parses its documented answer.
func TestGetTicketWireFormat(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q := r.URL.Query()
		switch {
		case r.Method != http.MethodGet:
			t.Errorf("method %s, want GET", r.Method)
		case r.URL.Path != "/cgi-bin/ticket/getticket":
			t.Errorf("path %s", r.URL.Path)
		case len(q) != 2 || q.Get("access_token") != "ACCESS_TOKEN" || q.Get("type") != "wx_card":
			t.Errorf("query %v", q)
		case len(body) != 0:
			t.Errorf("body %q, want none", body)
		}
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok","ticket":"bxLdikRXVbTPdHSM05e5u5sUoXNKd8-41ZO3MhKoyN5OfkWITDGgnr2fwJ0m9E8NYzWKVZvdVtaUgWvsdshFKA","expires_in":7200}`)
	}))
	defer srv.Close()
	c := New(Options{BaseURL: srv.URL, Metrics: NewMetrics()})
	got, err := c.GetTicket(t.Context(), "ACCESS_TOKEN", TicketTypeWXCard)
	if err != nil {
		t.Fatal(err)
	}
	if got.Ticket != "bxLdikRXVbTPdHSM05e5u5sUoXNKd8-41ZO3MhKoyN5OfkWITDGgnr2fwJ0m9E8NYzWKVZvdVtaUgWvsdshFKA" || got.ExpiresIn != 7200*time.Second {
		t.Fatalf("parsed %+v", got)
	}
	if _, err := c.GetTicket(t.Context(), "ACCESS_TOKEN", "card"); err == nil {
		t.Fatal("an unknown ticket type was sent")
	}
}

// TestGetTicketAgainstTheSimulator: a ticket per account, which outlives the access token
// it was obtained with; 40001 for a superseded token, 42001 for an expired one, 45009 past
// the account's own quota; nothing secret in the errors.
func TestGetTicketAgainstTheSimulator(t *testing.T) {
	e := newTestEnv(t, func(o *wxsim.Options) { o.Quotas = map[string]int{wxsim.APIGetTicket: 3} }, func(o *Options) { o.Retry.MaxAttempts = 1 })
	ctx := t.Context()
	ctok := e.token(t)
	ai := e.authorize(t, ctok)

	jsapi, err := e.client.GetTicket(ctx, ai.AccessToken, TicketTypeJSAPI)
	if err != nil {
		t.Fatalf("GetTicket: %v", err)
	}
	if jsapi.ExpiresIn != 2*time.Hour || !e.sim.APITicketValid(compID, authzID, "jsapi", jsapi.Ticket) {
		t.Fatalf("ticket %+v unknown to the simulator", jsapi)
	}
	if e.sim.APITicketValid(compID, authzID, "wx_card", jsapi.Ticket) {
		t.Fatal("a jsapi ticket passes as a wx_card one")
	}

	// A new access token: the ticket stays valid; the old token is rejected (40001) once
	// its 5-minute overlap is over.
	at, err := e.client.AuthorizerToken(ctx, ctok, compID, authzID, ai.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Step(6 * time.Minute)
	if !e.sim.APITicketValid(compID, authzID, "jsapi", jsapi.Ticket) {
		t.Fatal("a new access token ended the ticket")
	}
	_, err = e.client.GetTicket(ctx, ai.AccessToken, TicketTypeJSAPI)
	if code, _ := Code(err); code != CodeInvalidCredential || !IsInvalidToken(err) {
		t.Fatalf("superseded token: %v, want 40001", err)
	}
	if strings.Contains(err.Error(), ai.AccessToken) {
		t.Fatal("the error carries the token")
	}

	card, err := e.client.GetTicket(ctx, at.AccessToken, TicketTypeWXCard)
	if err != nil || card.Ticket == jsapi.Ticket {
		t.Fatalf("wx_card ticket: %+v, %v", card, err)
	}
	if _, err := e.client.GetTicket(ctx, at.AccessToken, TicketTypeJSAPI); err != nil {
		t.Fatal(err)
	}
	// Three tickets issued: the account's quota of 3 is used up.
	_, err = e.client.GetTicket(ctx, at.AccessToken, TicketTypeJSAPI)
	if !IsQuota(err) {
		t.Fatalf("fourth ticket of the day: %v, want 45009", err)
	}
	// The rejected token names no account: its call is counted under "-".
	if n, rejected := e.sim.Calls(APIGetTicket, authzID), e.sim.Calls(APIGetTicket, "-"); n != 4 || rejected != 1 {
		t.Fatalf("simulator counted %d getticket calls of the account and %d others, want 4 and 1", n, rejected)
	}

	e.clock.Step(2 * time.Hour)
	if e.sim.APITicketValid(compID, authzID, "jsapi", jsapi.Ticket) {
		t.Fatal("a ticket outlived its 7200 s")
	}
	_, err = e.client.GetTicket(ctx, at.AccessToken, TicketTypeJSAPI)
	if code, _ := Code(err); code != CodeAccessTokenExpired {
		t.Fatalf("expired token: %v, want 42001", err)
	}
}
