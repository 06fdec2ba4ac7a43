/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// shardPollInterval is how often the sharder looks at the shard Leases for a shard that came,
// went or stopped renewing. Reading them is a cache list of a few objects.
const shardPollInterval = 2 * time.Second

// shardResyncInterval is how often the sharder looks at every authorizer anyway (a cache
// list and, for those placed right, no write).
const shardResyncInterval = 10 * time.Minute

// Sharder places every WeChatAuthorizer on a live shard (sharding.go has the rule). It runs
// in the process that holds the manager Lease, beside the WeChatComponent controller. It
// labels the authorizer only: its new shard labels the authorizer's Secrets when it first
// reads them (getAuthorizerSecret), so a placement costs one write.
type Sharder struct {
	// Client reads from a cache made with SharedCacheOptions (cut-down authorizers, the shard
	// Leases); its writes are label patches.
	Client client.Client
	// LeaseNamespace holds the shard Leases.
	LeaseNamespace string
	// APIReader confirms, uncached, that a shard's Lease is stale before its authorizers are
	// taken from it.
	APIReader client.Reader
	Clock     clock.PassiveClock
	// Grace replaces DefaultShardGrace when set (tests).
	Grace time.Duration

	mu     sync.Mutex
	deadAt map[string]time.Time // shard → when the API server's Lease last read dead
}

// Reconcile places one authorizer.
func (s *Sharder) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	a := &wechatv1alpha1.WeChatAuthorizer{}
	if err := s.Client.Get(ctx, req.NamespacedName, a); err != nil || !a.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	live, err := s.liveShards(ctx)
	if err != nil || len(live) == 0 {
		return reconcile.Result{}, err // with none live, the Lease poll brings it back when one is
	}
	chosen := pickShard(live, req.String())
	current := a.Labels[wechatv1alpha1.LabelShard]
	_, draining := a.Labels[wechatv1alpha1.LabelShardDrain]
	logger := log.FromContext(ctx)
	switch decidePlacement(current, draining, live, chosen) {
	case placementAssign:
		if current != "" {
			// Taken from a shard without its consent: only if the API server, not just the
			// cache (whose watch may lag), says its Lease is stale.
			if alive, err := s.shardAlive(ctx, current); err != nil || alive {
				return reconcile.Result{RequeueAfter: shardPollInterval}, err
			}
		}
		err = s.patchLabels(ctx, a, func(l map[string]string) {
			l[wechatv1alpha1.LabelShard] = chosen
			delete(l, wechatv1alpha1.LabelShardDrain)
		})
		if err == nil {
			logger.Info("assigned to a shard", "shard", chosen, "from", current)
		}
	case placementDrain:
		err = s.patchLabels(ctx, a, func(l map[string]string) { l[wechatv1alpha1.LabelShardDrain] = "true" })
		if err == nil {
			logger.Info("asked its shard to let it go", "shard", current, "to", chosen)
		}
	case placementUndrain:
		err = s.patchLabels(ctx, a, func(l map[string]string) { delete(l, wechatv1alpha1.LabelShardDrain) })
	}
	switch {
	case apierrors.IsNotFound(err):
		return reconcile.Result{}, nil
	case apierrors.IsConflict(err):
		// Someone wrote it meanwhile (a status write, most likely, which the predicate does
		// not pass on): decide again on what it is now.
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}
	return reconcile.Result{}, err
}

// shardAlive reads one shard's Lease from the API server. A dead shard's authorizers are
// all reassigned at once, so its death, once read, holds for shardPollInterval: one read
// per dead shard then, not one per authorizer (33,000 reads would stretch the reassignment
// over minutes at the client's rate).
func (s *Sharder) shardAlive(ctx context.Context, shard string) (bool, error) {
	now := s.Clock.Now()
	s.mu.Lock()
	readAt, known := s.deadAt[shard]
	s.mu.Unlock()
	if known && now.Sub(readAt) < shardPollInterval {
		return false, nil
	}
	lease := &coordinationv1.Lease{}
	err := s.APIReader.Get(ctx, client.ObjectKey{Namespace: s.LeaseNamespace, Name: ShardLeaseName(shard)}, lease)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if len(liveShards([]coordinationv1.Lease{*lease}, now, s.grace())) == 1 {
		return true, nil
	}
	s.mu.Lock()
	if s.deadAt == nil {
		s.deadAt = map[string]time.Time{}
	}
	s.deadAt[shard] = now
	s.mu.Unlock()
	return false, nil
}

func (s *Sharder) grace() time.Duration {
	if s.Grace == 0 {
		return DefaultShardGrace
	}
	return s.Grace
}

// patchLabels changes the authorizer's labels in a merge patch guarded by its resource
// version, so every decision rests on the labels as they are.
func (s *Sharder) patchLabels(ctx context.Context, a *wechatv1alpha1.WeChatAuthorizer, change func(map[string]string)) error {
	patch := client.MergeFromWithOptions(a.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if a.Labels == nil {
		a.Labels = map[string]string{}
	}
	change(a.Labels)
	return s.Client.Patch(ctx, a, patch, fieldOwner)
}

// liveShards reads the shard Leases from the cache.
func (s *Sharder) liveShards(ctx context.Context) ([]string, error) {
	leases := &coordinationv1.LeaseList{}
	if err := s.Client.List(ctx, leases, client.InNamespace(s.LeaseNamespace)); err != nil {
		return nil, err
	}
	return liveShards(leases.Items, s.Clock.Now(), s.grace()), nil
}

// shardsChanged sends every authorizer to the sharder when the live shards change: a shard
// came, went, or stopped renewing its Lease (which no event tells).
type shardsChanged struct {
	sharder *Sharder
	events  chan event.TypedGenericEvent[*wechatv1alpha1.WeChatAuthorizer]
}

// NeedLeaderElection: only the leader's sharder places authorizers.
func (w *shardsChanged) NeedLeaderElection() bool { return true }

// Start polls the Leases until ctx ends. It also places every authorizer again every
// shardResyncInterval, whatever changed: a placement lost to an error is not lost for long.
func (w *shardsChanged) Start(ctx context.Context) error {
	var last []string
	var placedAt time.Time
	ticker := time.NewTicker(shardPollInterval)
	defer ticker.Stop()
	for {
		live, err := w.sharder.liveShards(ctx)
		changed := err == nil && !slices.Equal(live, last)
		if changed || (err == nil && time.Since(placedAt) >= shardResyncInterval) {
			if changed {
				log.FromContext(ctx).Info("live shards changed; placing every authorizer again", "shards", live, "before", last)
			}
			if w.enqueueAll(ctx) == nil {
				last, placedAt = live, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func (w *shardsChanged) enqueueAll(ctx context.Context) error {
	list := &wechatv1alpha1.WeChatAuthorizerList{}
	if err := w.sharder.Client.List(ctx, list); err != nil {
		return err
	}
	for i := range list.Items {
		select {
		case w.events <- event.TypedGenericEvent[*wechatv1alpha1.WeChatAuthorizer]{Object: &list.Items[i]}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// shardLabelsChanged lets through authorizer events the sharder acts on: creations, and
// changes of the shard labels (a shard letting go, a hand edit). Status writes do not.
var shardLabelsChanged = onUpdate(func(oldA, newA *wechatv1alpha1.WeChatAuthorizer) bool {
	return oldA.Labels[wechatv1alpha1.LabelShard] != newA.Labels[wechatv1alpha1.LabelShard] ||
		oldA.Labels[wechatv1alpha1.LabelShardDrain] != newA.Labels[wechatv1alpha1.LabelShardDrain]
})

// SetupWithManager registers the sharder with a manager whose cache is SharedCacheOptions.
func (s *Sharder) SetupWithManager(mgr ctrl.Manager) error {
	changed := &shardsChanged{sharder: s, events: make(chan event.TypedGenericEvent[*wechatv1alpha1.WeChatAuthorizer])}
	if err := mgr.Add(manager.Runnable(changed)); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&wechatv1alpha1.WeChatAuthorizer{}, builder.WithPredicates(shardLabelsChanged)).
		WatchesRawSource(source.Channel(changed.events, &handler.TypedEnqueueRequestForObject[*wechatv1alpha1.WeChatAuthorizer]{})).
		// A placement is one label patch; an import of 100,000 authorizers is placed at the
		// API server's pace, not held to a couple of workers.
		WithOptions(controller.Options{RateLimiter: rateLimiter(), MaxConcurrentReconciles: 16}).
		Named("sharder").
		Complete(s)
}
