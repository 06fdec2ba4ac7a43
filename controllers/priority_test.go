/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
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
