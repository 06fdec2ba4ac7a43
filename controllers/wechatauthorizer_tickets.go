/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// Messages of API tickets. None carries a ticket or a token.
const (
	msgTicketsIssued     = "every ticket of spec.tickets is in Secret %q: %s"
	msgTicketsStillValid = "%s; the tickets in Secret %q are still valid"
	msgTicketsMissing    = "no valid %s in Secret %q yet: %s"
	msgTicketWaitToken   = "tickets are obtained with the account's access token, and there is no valid one (see condition Ready)"
	msgTicketFailed      = "getticket type=%s: %s"
	msgTicketTokenHint   = "; WeChat rejected the account's access token, so a new one was obtained and the ticket asked for again (at most once per backoff)"
	msgTicketRetry       = "%s_ticket: the last %d attempts failed (%s%s); next attempt at %s (the RefreshFailed Events have WeChat's answers)"
)

// ticketHints say what a getticket failure reason means, in TicketsReady's message: it is
// rebuilt from status on every reconcile, also those between two attempts.
var ticketHints = map[string]string{
	wechatv1alpha1.ReasonInvalidToken: ": WeChat rejected the account's access token; each attempt gets a new one first",
	wechatv1alpha1.ReasonQuotaExceeded: ": the account's daily getticket quota is used up; it resets at midnight Beijing time, " +
		"and a ticket in the Secret is served until it expires",
	wechatv1alpha1.ReasonAPIUnauthorized: ": the account did not grant the platform the permission for this ticket (JS-SDK or cards)",
}

// reconcileTickets runs after the access token step left a valid token served: it asks
// getticket for every ticket that is due (decideTickets) and writes what it got into the
// token Secret, once. requeue is the token's; the result is the sooner of it and the tickets'.
func (r *WeChatAuthorizerReconciler) reconcileTickets(ctx context.Context, run *authorizerRun, plan authorizerPlan, now time.Time, requeue time.Duration) (reconcile.Result, error) {
	a := run.a
	plans := decideTickets(ticketInput{spec: a.Spec.Tickets, status: a.Status.Tickets, served: run.tickets,
		tokenValid: run.served.validAt(now), policy: plan.policy, jitter: r.Random()}, now)
	changed, tokenRenewed := false, false
	for i := range plans {
		p := &plans[i]
		if p.action != ticketFetch {
			continue
		}
		st := ticketStatusEntry(a, p.ticketType)
		ticket, err := r.fetchTicket(ctx, run, plan, p.ticketType, now, &tokenRenewed)
		if err != nil {
			p.refreshAt = r.ticketFailed(ctx, run, st, err)
			continue
		}
		switch expires := ticket.expiresAt.UTC().Format(time.RFC3339); {
		case st.FailedAttempts > 0:
			r.Recorder.Eventf(a, nil, corev1.EventTypeNormal, wechatv1alpha1.EventTicketIssued, "RefreshTicket",
				"%s_ticket issued after %d failed attempts, valid until %s", p.ticketType, st.FailedAttempts, expires)
		case st.ExpiresAt == nil:
			r.Recorder.Eventf(a, nil, corev1.EventTypeNormal, wechatv1alpha1.EventTicketIssued, "RefreshTicket",
				"%s_ticket issued into Secret %q, valid until %s", p.ticketType, authorizerTokenSecretName(a), expires)
		}
		run.tickets[p.ticketType] = ticket
		p.refreshAt = plan.policy.RefreshAt(ticket.issuedAt, ticket.expiresAt, r.Random())
		*st = wechatv1alpha1.TicketStatus{Type: p.ticketType, ExpiresAt: timePtr(ticket.expiresAt),
			LastRefreshTime: timePtr(ticket.issuedAt), RefreshAt: timePtr(p.refreshAt)}
		log.FromContext(ctx).Info("API ticket refreshed", "type", p.ticketType, "expiresAt", ticket.expiresAt)
		changed = true
	}
	if changed {
		if err := r.writeTokenSecret(ctx, run, run.served); err != nil {
			return r.fail(ctx, run, err)
		}
	}
	for _, p := range plans {
		if p.action != ticketWaitToken && !p.refreshAt.IsZero() {
			requeue = min(requeue, max(p.refreshAt.Sub(now), time.Second))
		}
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// fetchTicket asks getticket with the served access token. If WeChat rejects that token
// (40001, 42001), a new one is obtained, at most once per reconcile (a failed ticket is tried
// again only after its backoff, so at most once per backoff), and the ticket asked for again.
func (r *WeChatAuthorizerReconciler) fetchTicket(ctx context.Context, run *authorizerRun, plan authorizerPlan,
	t wechatv1alpha1.TicketType, now time.Time, tokenRenewed *bool) (*issuedTicket, error) {
	answer, err := r.WeChat.GetTicket(ctx, run.served.accessToken, string(t))
	if wxapi.IsInvalidToken(err) && !*tokenRenewed && run.component != nil {
		if rerr := r.readStateSecret(ctx, run); rerr != nil { // the refresh token
			return nil, rerr
		}
		if run.state.refreshToken != "" {
			*tokenRenewed = true
			token, rerr := r.refreshToken(ctx, run, now)
			if rerr != nil {
				return nil, rerr
			}
			run.refreshAt = plan.policy.RefreshAt(token.issuedAt, token.expiresAt, r.Random())
			log.FromContext(ctx).Info("authorizer_access_token refreshed: getticket rejected the previous one", "expiresAt", token.expiresAt)
			answer, err = r.WeChat.GetTicket(ctx, token.accessToken, string(t))
		}
	}
	if err != nil {
		return nil, err
	}
	return newIssuedTicket(answer.Ticket, now, answer.ExpiresIn), nil
}

// ticketFailed records a failed attempt in the ticket's status entry with the failure
// recorder both kinds use (Event, log line, backoff), and returns when to try again.
func (r *WeChatAuthorizerReconciler) ticketFailed(ctx context.Context, run *authorizerRun, st *wechatv1alpha1.TicketStatus, err error) time.Time {
	f := *classifyAPIError(err)
	if wxapi.IsInvalidToken(err) {
		// classifyAPIError's hint speaks of the component token; this was the account's.
		f.message = err.Error() + msgTicketTokenHint
	}
	f.message = fmt.Sprintf(msgTicketFailed, st.Type, f.message)
	counts := wechatv1alpha1.TokenStatus{FailedAttempts: st.FailedAttempts, LastFailureReason: st.LastFailureReason}
	wait, retryAt := r.failures().record(ctx, run.a, &counts, &f)
	if retryAt.IsZero() {
		retryAt = r.Clock.Now().Add(wait).Truncate(time.Second)
	}
	st.FailedAttempts, st.LastFailureReason, st.RefreshAt = counts.FailedAttempts, counts.LastFailureReason, timePtr(retryAt)
	return retryAt
}

// ticketStatusEntry returns the status entry of a ticket type, adding it if missing.
func ticketStatusEntry(a *wechatv1alpha1.WeChatAuthorizer, t wechatv1alpha1.TicketType) *wechatv1alpha1.TicketStatus {
	if st := ticketStatusOf(a.Status.Tickets, t); st != nil {
		return st
	}
	a.Status.Tickets = append(a.Status.Tickets, wechatv1alpha1.TicketStatus{Type: t})
	return &a.Status.Tickets[len(a.Status.Tickets)-1]
}

// recordTickets brings status.tickets and TicketsReady in line with spec.tickets and what
// the token Secret serves: entries of types no longer listed go, a served ticket status
// lost (a crash before the status write) is filled in, and without spec.tickets the
// condition goes too.
func (r *WeChatAuthorizerReconciler) recordTickets(run *authorizerRun, now time.Time) {
	a := run.a
	s := &a.Status
	s.Tickets = slices.DeleteFunc(s.Tickets, func(st wechatv1alpha1.TicketStatus) bool {
		return !slices.ContainsFunc(a.Spec.Tickets, func(t wechatv1alpha1.TicketSpec) bool { return t.Type == st.Type })
	})
	if len(s.Tickets) == 0 {
		s.Tickets = nil
	}
	if len(a.Spec.Tickets) == 0 {
		removeCondition(&s.Conditions, wechatv1alpha1.ConditionTicketsReady)
		return
	}
	var valid, missing []string
	var failed *wechatv1alpha1.TicketStatus
	for _, spec := range a.Spec.Tickets {
		ticket := run.tickets[spec.Type]
		if ticket.validAt(now) {
			st := ticketStatusEntry(a, spec.Type)
			if st.ExpiresAt == nil || !st.ExpiresAt.Time.Equal(ticket.expiresAt) {
				st.ExpiresAt, st.LastRefreshTime = timePtr(ticket.expiresAt), timePtr(ticket.issuedAt)
			}
			valid = append(valid, fmt.Sprintf("%s_ticket valid until %s", spec.Type, ticket.expiresAt.UTC().Format(time.RFC3339)))
		} else {
			missing = append(missing, string(spec.Type)+"_ticket")
		}
		if st := ticketStatusOf(s.Tickets, spec.Type); st != nil && st.FailedAttempts > 0 && failed == nil {
			failed = st
		}
	}
	secret := authorizerTokenSecretName(a)
	reason, message := wechatv1alpha1.ReasonWaitingForToken, msgTicketWaitToken
	if failed != nil {
		reason, message = failed.LastFailureReason, fmt.Sprintf(msgTicketRetry, failed.Type, failed.FailedAttempts, failed.LastFailureReason,
			ticketHints[failed.LastFailureReason], failed.RefreshAt.UTC().Format(time.RFC3339))
	}
	switch {
	case len(missing) > 0:
		setCondition(&s.Conditions, a.Generation, wechatv1alpha1.ConditionTicketsReady, metav1.ConditionFalse, reason,
			fmt.Sprintf(msgTicketsMissing, strings.Join(missing, " and "), secret, message))
	case failed != nil:
		setCondition(&s.Conditions, a.Generation, wechatv1alpha1.ConditionTicketsReady, metav1.ConditionTrue, reason,
			fmt.Sprintf(msgTicketsStillValid, message, secret))
	default:
		setCondition(&s.Conditions, a.Generation, wechatv1alpha1.ConditionTicketsReady, metav1.ConditionTrue, wechatv1alpha1.ReasonTicketsIssued,
			fmt.Sprintf(msgTicketsIssued, secret, strings.Join(valid, ", ")))
	}
}
