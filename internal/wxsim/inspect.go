/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"sort"
	"time"
)

// --- inspection helpers for tests -----------------------------------------

// IssueTicket makes WeChat generate a new component_verify_ticket without
// pushing it, and returns it. Tests that do not run a receiver use it.
func (s *Simulator) IssueTicket(componentAppID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.components[componentAppID]
	if !ok {
		return "", ErrUnknownComponent
	}
	return s.issueTicketLocked(c), nil
}

func (s *Simulator) issueTicketLocked(c *component) string {
	now := s.clock.Now()
	for t, at := range c.tickets {
		if now.Sub(at) >= s.opts.TicketLifetime {
			delete(c.tickets, t)
		}
	}
	t := newTicket()
	c.tickets[t] = now
	return t
}

// RefreshToken returns the authorizer's current refresh token, if it is
// authorized.
func (s *Simulator) RefreshToken(componentAppID, authorizerAppID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.components[componentAppID]
	if !ok {
		return "", false
	}
	a, ok := c.authorizers[authorizerAppID]
	if !ok || !a.authorized {
		return "", false
	}
	return a.refreshToken, true
}

// AuthorizerStatus is a summary of one account, without secrets.
type AuthorizerStatus struct {
	AppID      string    `json:"appid"`
	NickName   string    `json:"nick_name"`
	Authorized bool      `json:"authorized"`
	AuthTime   time.Time `json:"auth_time,omitzero"`
	FuncInfo   []int     `json:"func_info"`
}

// ComponentStatus is a summary of one component, without secrets.
type ComponentStatus struct {
	AppID          string             `json:"appid"`
	ReceiverURL    string             `json:"receiver_url,omitempty"`
	PushingTickets bool               `json:"pushing_tickets"`
	ValidTickets   int                `json:"valid_tickets"`
	NewestTicketAt time.Time          `json:"newest_ticket_at,omitzero"`
	TokenExpiresAt time.Time          `json:"token_expires_at,omitzero"`
	Authorizers    []AuthorizerStatus `json:"authorizers"`
}

// State summarizes every component and account (no secret values).
func (s *Simulator) State() []ComponentStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	out := make([]ComponentStatus, 0, len(s.components))
	for _, c := range s.components {
		cs := ComponentStatus{AppID: c.seed.AppID, ReceiverURL: c.seed.ReceiverURL, PushingTickets: c.pushing, Authorizers: []AuthorizerStatus{}}
		for _, at := range c.tickets {
			if now.Sub(at) < s.opts.TicketLifetime {
				cs.ValidTickets++
				if at.After(cs.NewestTicketAt) {
					cs.NewestTicketAt = at
				}
			}
		}
		if rec, ok := s.tokens[c.token]; ok {
			cs.TokenExpiresAt = rec.expires
		}
		for _, a := range c.authorizers {
			cs.Authorizers = append(cs.Authorizers, AuthorizerStatus{
				AppID: a.seed.AppID, NickName: a.seed.NickName, Authorized: a.authorized, AuthTime: a.authTime,
				FuncInfo: append([]int{}, a.funcInfo...),
			})
		}
		sort.Slice(cs.Authorizers, func(i, j int) bool { return cs.Authorizers[i].AppID < cs.Authorizers[j].AppID })
		out = append(out, cs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AppID < out[j].AppID })
	return out
}
