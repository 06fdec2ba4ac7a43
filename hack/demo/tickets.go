/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ticketTrack follows the sample authorizer's jsapi_ticket (spec.tickets) in its token
// Secret: issued, and refreshed before it expires. The ticket is compared, never printed.
type ticketTrack struct {
	value     string
	expiresAt time.Time
	refreshes int
	problem   string
}

// observeTicket notes the jsapi_ticket in the authorizer's token Secret.
func (o *observer) observeTicket(s *corev1.Secret) {
	t := &o.jsapi
	value := string(s.Data["jsapi_ticket"])
	if value == "" || value == t.value {
		return
	}
	expiresAt, err := time.Parse(time.RFC3339, string(s.Data["jsapi_ticket_expires_at"]))
	if err != nil {
		t.problem = fmt.Sprintf("jsapi_ticket_expires_at is not RFC 3339: %v", err)
		return
	}
	if t.value == "" {
		o.event("%s: jsapi_ticket ISSUED, expires %s (in %s)", s.Name, expiresAt.Format(time.TimeOnly), time.Until(expiresAt).Round(time.Second))
	} else {
		if !time.Now().Before(t.expiresAt) {
			t.problem = fmt.Sprintf("the jsapi_ticket was replaced only after it expired at %s", t.expiresAt.Format(time.RFC3339))
		}
		t.refreshes++
		o.event("%s: jsapi_ticket REFRESHED (#%d) %s before the old one expired: new expiry %s",
			s.Name, t.refreshes, time.Until(t.expiresAt).Round(time.Second), expiresAt.Format(time.TimeOnly))
	}
	t.value, t.expiresAt = value, expiresAt
}

// missing lists what the check still waits for about the ticket.
func (t *ticketTrack) missing(refreshes int) []string {
	var m []string
	if t.problem != "" {
		m = append(m, "no problem with the jsapi_ticket (found: "+t.problem+")")
	}
	switch {
	case t.value == "":
		m = append(m, "jsapi_ticket issued into the authorizer's token Secret")
	case t.refreshes < refreshes:
		m = append(m, fmt.Sprintf("jsapi_ticket refreshed %d time(s) (so far %d)", refreshes, t.refreshes))
	}
	return m
}
