/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"fmt"
	"time"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
)

// The component's token step decides with decideComponentToken, a pure function of what was
// read (componentTokenInput) and now; the step then acts on the plan (wechatcomponent_steps.go).

// componentTokenInput is what the token step reads before it decides.
type componentTokenInput struct {
	// token is the token Secret's; refreshAt its refresh time (kept from status, or computed).
	token     *issuedToken
	refreshAt time.Time
	// ticket is status.verifyTicket; namespace and name make the waiting message.
	ticket          *wechatv1alpha1.VerifyTicket
	namespace, name string
	// keysChanged: the receiver keys were just written to the keyring.
	keysChanged bool
	// gate is the backoff of the last failed call; request the refresh-requested-at annotation.
	gate    retryGate
	request refreshRequestDecision
}

// componentTokenAction is what the token step does.
type componentTokenAction int

const (
	// tokenServe: the token is good; keep its Secret in line with spec, no WeChat call.
	tokenServe componentTokenAction = iota
	// tokenSettleKeys: new receiver keys must reach the receivers before a ticket is asked for.
	tokenSettleKeys
	// tokenAwaitTicket: no usable ticket; ask WeChat to push one and wait for it.
	tokenAwaitTicket
	// tokenBackOff: the last failure's backoff forbids a call now.
	tokenBackOff
	// tokenRefresh: call api_component_token.
	tokenRefresh
)

// componentTokenPlan is what decideComponentToken decided.
type componentTokenPlan struct {
	action componentTokenAction
	// ticketReason and ticketMsg make the TicketReceived condition; ticket is the usable one.
	ticketReason, ticketMsg, ticket string
	// requeue: when to come back (tokenRefresh: decided after the call).
	requeue time.Duration
	// gated: a failure is being backed off and nothing new is learned; its conditions stay.
	gated bool
	// retryAt (tokenBackOff): the end of the backoff, which status.refreshAt shows.
	retryAt time.Time
}

// ticketCondition says whether a usable ticket is known, and why not.
func ticketCondition(t *wechatv1alpha1.VerifyTicket, namespace, name string, now time.Time) (reason, msg, ticket string) {
	switch {
	case t == nil || t.Ticket == "":
		return wechatv1alpha1.ReasonWaitingForTicket, fmt.Sprintf(msgWaitingForTicket, namespace, name), ""
	case now.Sub(t.CreateTime.Time) >= ticketValidity:
		return wechatv1alpha1.ReasonTicketExpired, msgTicketExpired, ""
	}
	return wechatv1alpha1.ReasonTicketValid, msgTicketValid, t.Ticket
}

// decideComponentToken: refresh when the token is missing, expired or due, when a refresh is
// requested, or when what failed last has changed; but not without a ticket, and not before
// the last failure's backoff has run out.
func decideComponentToken(in componentTokenInput, now time.Time) componentTokenPlan {
	p := componentTokenPlan{}
	p.ticketReason, p.ticketMsg, p.ticket = ticketCondition(in.ticket, in.namespace, in.name, now)
	due := !in.token.validAt(now) || !now.Before(in.refreshAt) || in.request.honour || (in.gate.waiting && in.gate.changed)
	switch {
	case !due:
		p.action, p.gated = tokenServe, in.gate.waiting
		p.requeue = in.refreshAt.Sub(now)
		if in.request.wait > 0 {
			p.requeue = soonest(p.requeue, in.request.wait)
		}
	case p.ticket == "" && in.keysChanged:
		// A push asked for now would reach receivers that cannot verify it yet; WeChat
		// retries only a few times, then waits for its next round, 10 minutes later.
		p.action, p.requeue = tokenSettleKeys, keyringSettleTime
	case p.ticket == "":
		// The ticket push wakes us; until then, look again when the token needs it.
		p.action, p.requeue = tokenAwaitTicket, startPushMinInterval
		if in.token.validAt(now) {
			p.requeue = min(p.requeue, max(in.token.expiresAt.Sub(now), time.Second))
		}
	case in.gate.blocks(now):
		// No call, whatever woke us.
		p.action, p.gated, p.retryAt = tokenBackOff, true, in.gate.at
		p.requeue = max(in.gate.at.Sub(now), time.Second)
	default:
		p.action = tokenRefresh
	}
	return p
}

// refreshRequestDecision is whether the refresh-requested-at annotation is honoured now and,
// if not yet, how long until it may be; inARow counts the requests honoured in a row.
type refreshRequestDecision struct {
	honour bool
	inARow int32
	wait   time.Duration
}

// decideRefreshRequest: at once the first time, then after the backoff (APIFailure: 5s, 10s,
// ... 5 minutes) measured from the token a previous request brought. A token from a scheduled
// refresh since the last request, or one that lived well past the backoff's cap, starts a
// new run. requestedAt is the annotation's time (ok: it is set and parses).
func decideRefreshRequest(requestedAt time.Time, ok bool, token *issuedToken, last requestRun, backoff refresh.Backoff, now time.Time) refreshRequestDecision {
	if !ok || token == nil || !requestedAt.After(token.issuedAt) {
		return refreshRequestDecision{}
	}
	age := now.Sub(token.issuedAt)
	n := last.inARow
	if token.issuedAt.After(last.last) || age >= 2*backoff.Cap {
		n = 0
	}
	if n > 0 {
		if wait := backoff.Delay(n, 0) - age; wait > 0 {
			return refreshRequestDecision{inARow: n, wait: wait}
		}
	}
	return refreshRequestDecision{honour: true, inARow: n + 1}
}
