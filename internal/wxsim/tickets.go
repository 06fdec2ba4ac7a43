/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"net/http"
	"time"
)

// APIGetTicket is GET /cgi-bin/ticket/getticket?access_token=&type=jsapi|wx_card, which an
// authorized account's access token calls for its JS-SDK (jsapi) or card (wx_card) ticket.
const APIGetTicket = "getticket"

// DefaultAPITicketLifetime is the expires_in of getticket's tickets, as on WeChat.
const DefaultAPITicketLifetime = 7200 * time.Second

// apiTicketTypes are the type values getticket accepts.
var apiTicketTypes = map[string]bool{"jsapi": true, "wx_card": true}

func newAPITicket() string { return "apiticket@@@" + randomString(64) }

// serveGetTicket answers getticket. As on WeChat, a ticket lives on its own
// (APITicketLifetime): a new access token does not end it, and a new ticket does not end the
// previous one. Every ticket issued counts against the account's own daily quota of
// getticket (Options.Quotas["getticket"], per authorizer, not per component).
func (s *Simulator) serveGetTicket(w http.ResponseWriter, r *http.Request) {
	api := APIGetTicket
	if r.Method != http.MethodGet {
		s.count(api, nil, true)
		writeErrcode(w, 43001, "")
		return
	}
	q := r.URL.Query()
	rec, ids, code, outcome := s.authorizerTokenCall(w, r, api, q.Get("access_token"))
	if outcome == faultAnswered {
		return
	}

	s.mu.Lock()
	var ticket string
	if code == 0 {
		ticket, code = s.issueAPITicketLocked(rec, q.Get("type"))
	}
	s.countLocked(api, ids, code != 0)
	s.mu.Unlock()
	s.log.Info("api call", "api", api, "type", q.Get("type"), "errcode", code)
	if outcome == faultHoldAnswer {
		s.holdAnswer(r, api)
		return
	}
	if code != 0 {
		writeErrcode(w, code, "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"errcode": 0, "errmsg": "ok", "ticket": ticket,
		"expires_in": int64(s.opts.APITicketLifetime.Seconds()),
	})
}

func (s *Simulator) issueAPITicketLocked(rec *tokenRecord, ticketType string) (string, int) {
	c, ok := s.components[rec.componentAppID]
	if !ok {
		return "", 40001
	}
	a, ok := c.authorizers[rec.authorizerID]
	if !ok || !a.authorized {
		return "", 40001
	}
	if !apiTicketTypes[ticketType] {
		return "", 40097
	}
	now := s.clock.Now()
	day := now.In(beijing).Format(time.DateOnly)
	if a.usageDay != day {
		a.usageDay, a.usage = day, map[string]int{}
	}
	if limit := s.quotas[APIGetTicket]; limit > 0 && a.usage[APIGetTicket] >= limit {
		return "", 45009
	}
	a.usage[APIGetTicket]++
	if a.apiTickets == nil {
		a.apiTickets = map[string]apiTicket{}
	}
	for t, rec := range a.apiTickets {
		if !now.Before(rec.expires) {
			delete(a.apiTickets, t)
		}
	}
	ticket := newAPITicket()
	a.apiTickets[ticket] = apiTicket{ticketType: ticketType, expires: now.Add(s.opts.APITicketLifetime)}
	return ticket, 0
}

// apiTicket is a ticket getticket issued.
type apiTicket struct {
	ticketType string
	expires    time.Time
}

// APITicketValid reports whether ticket is a ticket of ticketType that getticket issued to
// the account and that has not expired: what a JS-SDK page signed with it would find.
func (s *Simulator) APITicketValid(componentAppID, authorizerAppID, ticketType, ticket string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.components[componentAppID]
	if !ok {
		return false
	}
	a, ok := c.authorizers[authorizerAppID]
	if !ok {
		return false
	}
	rec, ok := a.apiTickets[ticket]
	return ok && rec.ticketType == ticketType && s.clock.Now().Before(rec.expires)
}
