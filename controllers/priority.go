/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// Priorities on the controllers' priority queue (controller-runtime's default). Creates and
// watch events come at 0, the initial list at handler.LowPriority. A 100,000-authorizer import
// is 100,000 creates at 0: a refresh that falls due meanwhile must not wait behind it, or the
// token it serves expires. So:
//   - priorityRefresh: the requeue's next step is a token refresh that is due (or the retry
//     of a failed refresh or code exchange): it keeps a served token valid.
//   - priorityBulk: everything else that is due on a timer (status.info, options checks,
//     tickets, waits) and the fan-out to every authorizer of a component whose token
//     changed. Tickets are here too: they are refreshed with a margin of minutes, which the
//     queue's order costs seconds of, and a requeue that is for a ticket only cannot be
//     told apart from info work without more plumbing.
const (
	priorityRefresh = 100
	priorityBulk    = handler.LowPriority
)

// refreshSlack counts a requeue landing this close before the refresh time as one for the
// refresh (requeues are rounded to a second).
const refreshSlack = time.Second

// authorizerRequeuePriority is the priority of an authorizer's requeue: priorityRefresh when
// it lands at or after refreshAt (the next step is the refresh or its retry), priorityBulk
// otherwise, and for an authorizer with nothing to refresh.
func authorizerRequeuePriority(requeue time.Duration, refreshAt, now time.Time) int {
	if !refreshAt.IsZero() && !now.Add(requeue).Add(refreshSlack).Before(refreshAt) {
		return priorityRefresh
	}
	return priorityBulk
}

// lowPriorityMap enqueues what mapFn returns at priorityBulk on a priority queue (plain Add
// otherwise): the component-token fan-out touches every authorizer of a component, none of
// which has a refresh due because of it.
type lowPriorityMap struct {
	mapFn handler.MapFunc
}

var _ handler.EventHandler = lowPriorityMap{}

func (h lowPriorityMap) add(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], o client.Object) {
	if o == nil {
		return
	}
	pq, isPQ := q.(priorityqueue.PriorityQueue[reconcile.Request])
	for _, req := range h.mapFn(ctx, o) {
		if isPQ {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: new(priorityBulk)}, req)
		} else {
			q.Add(req)
		}
	}
}

func (h lowPriorityMap) Create(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.add(ctx, q, e.Object)
}

func (h lowPriorityMap) Update(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.add(ctx, q, e.ObjectNew)
}

func (h lowPriorityMap) Delete(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.add(ctx, q, e.Object)
}

func (h lowPriorityMap) Generic(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.add(ctx, q, e.Object)
}

// dueFirst raises an authorizer of the informer's initial list whose refresh falls due within
// horizon to priorityRefresh (a revoked one has nothing to refresh). After a restart the initial list puts every authorizer at
// handler.LowPriority (For's handler), in the order the API server listed them: at 100,000
// that backlog took over ten minutes to work through, and a refresh falling due meanwhile
// waited in it, its token expiring, because the previous process's requeue that would have
// raised it died with that process. The queue keeps the higher of two priorities given to one
// item, so this watch, beside For's, is all it takes. Later events are left to For's handler.
type dueFirst struct {
	clock clock.WithDelayedExecution
	// horizon: raised if refreshAt or expiresAt comes before now+horizon. One that falls due
	// later is raised when it comes within the horizon, if it is still waiting in the backlog
	// then (pending): at 100,000 the backlog outlasted horizon and margin together, and
	// tokens falling due minutes into a restart expired in it.
	horizon time.Duration
	pending *pendingRaises
}

// pendingRaises raise initial-list authorizers still unreconciled when their refresh comes
// within the horizon. The queue cannot hold them: it raises an item's priority at once even
// when the add is for later. An authorizer leaves waiting when it is reconciled (reached):
// from then on its own requeue carries its priority. The raises are grouped in buckets of
// raiseGranularity, one timer each, raised at the bucket's start (never late): a timer per
// authorizer cost ~290 B each, 28 MB for a 100,000 backlog, where this is ~100 B.
type pendingRaises struct {
	mu      sync.Mutex
	waiting map[types.NamespacedName]struct{}
	buckets map[int64][]types.NamespacedName // by the bucket's start, Unix seconds
}

// raiseGranularity is the width of a bucket of pending raises.
const raiseGranularity = 10 * time.Second

func newDueFirst(c clock.WithDelayedExecution, horizon time.Duration) dueFirst {
	return dueFirst{clock: c, horizon: horizon, pending: &pendingRaises{
		waiting: map[types.NamespacedName]struct{}{}, buckets: map[int64][]types.NamespacedName{}}}
}

// handler watches only the initial list's create events; later ones are For's.
func (h dueFirst) handler() handler.EventHandler { return handler.Funcs{CreateFunc: h.Create} }

func (h dueFirst) Create(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	a, ok := e.Object.(*wechatv1alpha1.WeChatAuthorizer)
	pq, isPQ := q.(priorityqueue.PriorityQueue[reconcile.Request])
	if !ok || !isPQ || !e.IsInInitialList || revoked(a) {
		return
	}
	req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(a)}
	dueAt, ok := earliestDue(&a.Status.TokenStatus)
	if !ok {
		return
	}
	now := h.clock.Now()
	if dueAt.Before(now.Add(h.horizon)) {
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: new(priorityRefresh)}, req)
		return
	}
	bucket := dueAt.Add(-h.horizon).Truncate(raiseGranularity)
	p := h.pending
	p.mu.Lock()
	p.waiting[req.NamespacedName] = struct{}{}
	keys, exists := p.buckets[bucket.Unix()]
	p.buckets[bucket.Unix()] = append(keys, req.NamespacedName)
	p.mu.Unlock()
	if !exists { // the timer is set outside the lock, which its firing takes
		h.clock.AfterFunc(bucket.Sub(now), func() { h.raise(pq, bucket.Unix()) })
	}
}

// raise raises the authorizers of a bucket that still wait.
func (h dueFirst) raise(pq priorityqueue.PriorityQueue[reconcile.Request], bucket int64) {
	p := h.pending
	p.mu.Lock()
	var raised []reconcile.Request
	for _, key := range p.buckets[bucket] {
		if _, ok := p.waiting[key]; ok {
			delete(p.waiting, key)
			raised = append(raised, reconcile.Request{NamespacedName: key})
		}
	}
	delete(p.buckets, bucket)
	p.mu.Unlock()
	if len(raised) > 0 {
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: new(priorityRefresh)}, raised...)
	}
}

// reached takes key off the waiting ones: it is being reconciled. When none waits any more
// (the backlog is worked through), the maps are dropped for empty ones: a map keeps the room
// it once needed, and the buckets keep every key until their timers fire, up to a token's
// lifetime later (~13 MB at 100,000). The timers left find no bucket and raise nothing.
func (h dueFirst) reached(key types.NamespacedName) {
	if h.pending == nil {
		return
	}
	p := h.pending
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.waiting[key]; !ok {
		return
	}
	delete(p.waiting, key)
	if len(p.waiting) == 0 {
		p.waiting, p.buckets = map[types.NamespacedName]struct{}{}, map[int64][]types.NamespacedName{}
	}
}

// reconciler is rec that first takes what it reconciles off the waiting ones.
func (h dueFirst) reconciler(rec reconcile.Reconciler) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		h.reached(req.NamespacedName)
		return rec.Reconcile(ctx, req)
	})
}

// earliestDue is the sooner of the token's refresh and expiry times, if it has either.
func earliestDue(s *wechatv1alpha1.TokenStatus) (time.Time, bool) {
	switch {
	case s.RefreshAt != nil && s.ExpiresAt != nil:
		return minTime(s.RefreshAt.Time, s.ExpiresAt.Time), true
	case s.RefreshAt != nil:
		return s.RefreshAt.Time, true
	case s.ExpiresAt != nil:
		return s.ExpiresAt.Time, true
	}
	return time.Time{}, false
}
