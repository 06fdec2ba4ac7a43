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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

func TestAuthorizerRequeuePriority(t *testing.T) {
	cases := map[string]struct {
		requeue   time.Duration
		refreshAt time.Time
		want      int
	}{
		"requeue for the refresh":           {time.Hour, decideNow.Add(time.Hour), priorityRefresh},
		"refresh due now (error, no delay)": {0, decideNow.Add(-time.Minute), priorityRefresh},
		"retry of a failed refresh":         {30 * time.Second, decideNow.Add(30 * time.Second), priorityRefresh},
		"rounded to a second before":        {time.Hour - 500*time.Millisecond, decideNow.Add(time.Hour), priorityRefresh},
		"info or a ticket due first":        {10 * time.Minute, decideNow.Add(time.Hour), priorityBulk},
		"nothing to refresh":                {time.Hour, time.Time{}, priorityBulk},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := authorizerRequeuePriority(tc.requeue, tc.refreshAt, decideNow); got != tc.want {
				t.Errorf("authorizerRequeuePriority = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestDueRefreshOvertakesAnImport puts the priorities on controller-runtime's priority queue,
// as the controller does: 1,000 creates of an import are queued first, then a due refresh
// and an info requeue. A worker takes the refresh first and the info work after the import.
func TestDueRefreshOvertakesAnImport(t *testing.T) {
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	req := func(name string) reconcile.Request {
		return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}}
	}
	for i := range 1000 {
		q.AddWithOpts(priorityqueue.AddOpts{}, req(fmt.Sprintf("import-%04d", i))) // a create: priority 0
	}
	refreshAt := decideNow.Add(-time.Second) // due
	q.AddWithOpts(priorityqueue.AddOpts{Priority: new(authorizerRequeuePriority(0, refreshAt, decideNow))}, req("due-refresh"))
	q.AddWithOpts(priorityqueue.AddOpts{Priority: new(authorizerRequeuePriority(0, decideNow.Add(time.Hour), decideNow))}, req("info"))
	var order []string
	for q.Len() > 0 {
		item, _ := q.Get()
		order = append(order, item.Name)
		q.Done(item)
	}
	if len(order) != 1002 || order[0] != "due-refresh" || order[len(order)-1] != "info" {
		t.Errorf("order: first %q, last %q of %d; want the due refresh first and the info requeue last", order[0], order[len(order)-1], len(order))
	}
}

// The initial list after a restart queues every authorizer at LowPriority through For's
// handler; dueFirst sees the same events and raises those whose refresh (or expiry) falls
// within its horizon, and no others (not a revoked one, nor a create of later).
func TestDueFirstRaisesTheInitialListsDueRefreshes(t *testing.T) {
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	due := newDueFirst(clocktesting.NewFakeClock(decideNow), 10*time.Minute)
	forHandler := &handler.EnqueueRequestForObject{}
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: decideNow.Add(d)} }
	token := func(s wechatv1alpha1.TokenStatus) wechatv1alpha1.WeChatAuthorizerStatus {
		return wechatv1alpha1.WeChatAuthorizerStatus{TokenStatus: s}
	}
	statuses := map[string]wechatv1alpha1.WeChatAuthorizerStatus{
		"a-0500-overdue":       token(wechatv1alpha1.TokenStatus{RefreshAt: at(-time.Minute), ExpiresAt: at(time.Hour)}),
		"a-0700-within":        token(wechatv1alpha1.TokenStatus{RefreshAt: at(5 * time.Minute), ExpiresAt: at(time.Hour)}),
		"a-0800-expiring":      token(wechatv1alpha1.TokenStatus{ExpiresAt: at(time.Minute)}),
		"a-0900-after-horizon": token(wechatv1alpha1.TokenStatus{RefreshAt: at(20 * time.Minute), ExpiresAt: at(time.Hour)}),
		// Revoked: nothing to refresh, whatever its old times say.
		"a-0600-revoked": {UnauthorizedAt: at(-time.Hour), TokenStatus: wechatv1alpha1.TokenStatus{RefreshAt: at(-time.Minute), ExpiresAt: at(-time.Minute)}},
	}
	var names []string
	for i := range 1000 {
		names = append(names, fmt.Sprintf("a-%04d", i))
		if i%100 == 0 {
			for name := range statuses {
				if strings.HasPrefix(name, fmt.Sprintf("a-%04d-", i)) {
					names = append(names, name)
				}
			}
		}
	}
	// A create that is not of the initial list is For's alone: priority 0, not raised (were it
	// raised, it would be first, having come first).
	imported := &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "imported"}}
	imported.Status.RefreshAt = at(-time.Minute)
	forHandler.Create(t.Context(), event.CreateEvent{Object: imported}, q)
	due.Create(t.Context(), event.CreateEvent{Object: imported}, q)
	for _, name := range names {
		a := &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		a.Status = statuses[name]
		if _, listed := statuses[name]; !listed {
			a.Status = token(wechatv1alpha1.TokenStatus{RefreshAt: at(time.Hour), ExpiresAt: at(2 * time.Hour)})
		}
		e := event.CreateEvent{Object: a, IsInInitialList: true}
		forHandler.Create(t.Context(), e, q)
		due.Create(t.Context(), e, q)
	}
	var order []string
	for q.Len() > 0 {
		item, _ := q.Get()
		order = append(order, item.Name)
		q.Done(item)
	}
	want := []string{"a-0500-overdue", "a-0700-within", "a-0800-expiring", "imported"}
	if len(order) != len(names)+1 || !slices.Equal(order[:4], want) {
		t.Fatalf("first of %d: %v, want %v", len(order), order[:min(len(order), 4)], want)
	}
	for _, name := range []string{"a-0900-after-horizon", "a-0600-revoked"} {
		if i, before := slices.Index(order, name), slices.Index(order, name[:6]); i != before+1 {
			t.Errorf("%s was moved (at %d, %s at %d)", name, i, name[:6], before)
		}
	}
}

// TestDueFirstRaisesALaterRefreshStillWaiting: an authorizer of the initial list whose refresh
// comes due after the horizon is raised when it comes within it, if it still waits in the
// backlog then; one reconciled before then is not (its own requeue has its priority).
func TestDueFirstRaisesALaterRefreshStillWaiting(t *testing.T) {
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	fakeClock := clocktesting.NewFakeClock(decideNow)
	due := newDueFirst(fakeClock, 10*time.Minute)
	forHandler := &handler.EnqueueRequestForObject{}
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: decideNow.Add(d)} }
	add := func(name string, refreshIn time.Duration) {
		a := &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		a.Status.RefreshAt, a.Status.ExpiresAt = at(refreshIn), at(refreshIn+5*time.Minute)
		e := event.CreateEvent{Object: a, IsInInitialList: true}
		forHandler.Create(t.Context(), e, q)
		due.Create(t.Context(), e, q)
	}
	for i := range 500 {
		add(fmt.Sprintf("a-%04d", i), time.Hour)
	}
	add("later-waiting", 20*time.Minute)
	add("later-reconciled", 20*time.Minute)
	for i := 500; i < 1000; i++ {
		add(fmt.Sprintf("a-%04d", i), time.Hour)
	}
	reconciler := due.reconciler(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
		return reconcile.Result{}, nil
	}))
	first := func() string {
		item, _ := q.Get()
		_, _ = reconciler.Reconcile(t.Context(), item)
		q.Done(item)
		return item.Name
	}

	fakeClock.Step(5 * time.Minute)
	if got := first(); got != "a-0000" {
		t.Fatalf("raised before it came within the horizon: %s first", got)
	}
	// The worker reaches later-reconciled (out of order, as another event would bring it).
	_, _ = reconciler.Reconcile(t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "later-reconciled"}})

	fakeClock.Step(5 * time.Minute) // later-* now come due within the horizon
	if got := first(); got != "later-waiting" {
		t.Fatalf("%s first, want later-waiting raised ahead of the backlog", got)
	}
	if got := first(); got != "a-0001" {
		t.Fatalf("%s next, want the backlog in its order: a reconciled authorizer is not raised again", got)
	}
	if n := len(due.pending.waiting); n != 998 {
		t.Errorf("%d raises pending, want one per backlog authorizer not yet reconciled (998)", n)
	}

	// The backlog worked through: nothing is kept for raises that can no longer happen.
	for q.Len() > 0 {
		first()
	}
	if w, b := len(due.pending.waiting), len(due.pending.buckets); w != 0 || b != 0 {
		t.Errorf("every authorizer reconciled, and %d still wait in %d buckets", w, b)
	}
	fakeClock.Step(time.Hour) // the buckets' timers fire on the emptied maps
	if n := q.Len(); n != 0 {
		t.Errorf("%d raised after the backlog was worked through", n)
	}
}
