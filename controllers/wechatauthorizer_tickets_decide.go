/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
)

// API tickets (spec.tickets) ride on the access token: each is obtained with the account's
// own authorizer_access_token once that is valid, lives its own 7200 s (a new access token
// does not end it), and is refreshed by the token's policy on its own schedule. What to do
// with each is decided here, purely; wechatauthorizer_tickets.go acts on it.

// apiTicketLifetime is WeChat's ticket lifetime, assumed when status lost a ticket's issue
// time (a crash between the Secret write and the status write).
const apiTicketLifetime = 7200 * time.Second

// issuedTicket is an API ticket as the token Secret holds it.
type issuedTicket struct {
	value     string
	issuedAt  time.Time
	expiresAt time.Time
}

func newIssuedTicket(value string, now time.Time, expiresIn time.Duration) *issuedTicket {
	return &issuedTicket{value: value, issuedAt: now.Truncate(time.Second), expiresAt: now.Add(expiresIn).Truncate(time.Second)}
}

func (t *issuedTicket) validAt(now time.Time) bool {
	return t != nil && t.value != "" && now.Before(t.expiresAt)
}

// ticketSet is the tickets the token Secret serves, by type.
type ticketSet map[wechatv1alpha1.TicketType]*issuedTicket

// ticketDataKeys are the token Secret's keys of a ticket type.
func ticketDataKeys(t wechatv1alpha1.TicketType) (value, expiresAt string) {
	return string(t) + wechatv1alpha1.SecretKeyTicketSuffix, string(t) + wechatv1alpha1.SecretKeyTicketExpiresAtSuffix
}

// data is what the tickets add to the token Secret's data.
func (ts ticketSet) data() map[string][]byte {
	out := map[string][]byte{}
	for t, ticket := range ts {
		if ticket == nil {
			continue
		}
		vk, ek := ticketDataKeys(t)
		out[vk] = []byte(ticket.value)
		out[ek] = []byte(ticket.expiresAt.UTC().Format(time.RFC3339))
	}
	return out
}

// readTickets returns the tickets of the types spec.tickets lists that secret holds (a type
// no longer listed is not read, so the next write drops its keys). A ticket's issue time
// comes from its status entry when that describes the same ticket.
func readTickets(secret *corev1.Secret, a *wechatv1alpha1.WeChatAuthorizer) ticketSet {
	out := ticketSet{}
	if secret == nil || string(secret.Data[wechatv1alpha1.SecretKeyAppID]) != a.Spec.AppID {
		return out
	}
	for _, spec := range a.Spec.Tickets {
		vk, ek := ticketDataKeys(spec.Type)
		value := string(secret.Data[vk])
		expiresAt, err := time.Parse(time.RFC3339, string(secret.Data[ek]))
		if value == "" || err != nil {
			continue
		}
		issuedAt := expiresAt.Add(-apiTicketLifetime)
		if st := ticketStatusOf(a.Status.Tickets, spec.Type); st != nil && st.ExpiresAt != nil && st.LastRefreshTime != nil &&
			st.ExpiresAt.Time.Equal(expiresAt) {
			issuedAt = st.LastRefreshTime.Time
		}
		out[spec.Type] = &issuedTicket{value: value, issuedAt: issuedAt, expiresAt: expiresAt}
	}
	return out
}

func ticketStatusOf(list []wechatv1alpha1.TicketStatus, t wechatv1alpha1.TicketType) *wechatv1alpha1.TicketStatus {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}

// ticketInput is what the ticket decision reads.
type ticketInput struct {
	spec   []wechatv1alpha1.TicketSpec
	status []wechatv1alpha1.TicketStatus
	served ticketSet
	// tokenValid: the token Secret serves a valid access token to ask with.
	tokenValid bool
	policy     refresh.Policy
	jitter     float64
}

type ticketAction int

const (
	// ticketServe: the served ticket is not due; refreshAt is when it is.
	ticketServe ticketAction = iota
	// ticketFetch: ask getticket now.
	ticketFetch
	// ticketBackoff: the last attempt failed; refreshAt is when to try again.
	ticketBackoff
	// ticketWaitToken: due, but there is no valid access token to ask with.
	ticketWaitToken
)

type ticketPlan struct {
	ticketType wechatv1alpha1.TicketType
	action     ticketAction
	refreshAt  time.Time
}

// decideTickets decides, per type in spec order, what to do about each ticket. A ticket is
// due at its refresh time by the token's policy, kept across restarts from status; a failed
// attempt is not repeated before the backoff in status is over, whatever wakes us.
func decideTickets(in ticketInput, now time.Time) []ticketPlan {
	plans := make([]ticketPlan, 0, len(in.spec))
	for _, spec := range in.spec {
		p := ticketPlan{ticketType: spec.Type}
		st := ticketStatusOf(in.status, spec.Type)
		current := in.served[spec.Type]
		if current.validAt(now) {
			p.refreshAt = keptTicketRefreshTime(st, in.policy, current, in.jitter)
		}
		switch {
		case st != nil && st.FailedAttempts > 0 && st.RefreshAt != nil && now.Before(st.RefreshAt.Time):
			p.action, p.refreshAt = ticketBackoff, st.RefreshAt.Time
		case current.validAt(now) && now.Before(p.refreshAt):
			p.action = ticketServe
		case !in.tokenValid:
			p.action = ticketWaitToken
		default:
			p.action = ticketFetch
		}
		plans = append(plans, p)
	}
	return plans
}

// keptTicketRefreshTime keeps status' refresh time while it belongs to the served ticket
// and no failure moved it, so a restart does not roll the jitter again.
func keptTicketRefreshTime(st *wechatv1alpha1.TicketStatus, policy refresh.Policy, t *issuedTicket, jitter float64) time.Time {
	if st != nil && st.FailedAttempts == 0 && st.RefreshAt != nil && st.ExpiresAt != nil && st.ExpiresAt.Time.Equal(t.expiresAt) {
		return st.RefreshAt.Time
	}
	return policy.RefreshAt(t.issuedAt, t.expiresAt, jitter)
}
