/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/watchdecode"
)

// watchedTypes registers the types whose watches watchdecode decodes.
var watchedTypes = runtime.NewSchemeBuilder(wechatv1alpha1.AddToScheme, corev1.AddToScheme)

// CacheOptions limits the manager's Secret cache to the Secrets it manages, so a cluster's
// other Secrets are neither held in memory nor watched. With watchNamespaces, everything is
// cached from those namespaces only (the manager then needs Roles there, no ClusterRole),
// and Secrets also from the operator namespace, where the receiver keyring is.
func CacheOptions(operatorNamespace string, watchNamespaces []string) cache.Options {
	managed := labels.SelectorFromSet(labels.Set{wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue})
	// One key for the Secret entry: a second &corev1.Secret{} would be a second map entry for
	// the same kind, and which of the two the cache applies would depend on map order.
	secret := &corev1.Secret{}
	o := cache.Options{
		// managedFields stripped, repeated strings shared (cachetransform.go).
		DefaultTransform: compactCached,
		ByObject:         map[client.Object]cache.ByObject{secret: {Label: managed}},
		// The custom resources' and the Secrets' watch streams decoded in one pass, without
		// the managedFields compactCached strips (with the manager's rest.Config wrapped in
		// watchdecode.Transport; without, client-go decodes them).
		NewInformer: watchdecode.NewInformer(watchdecode.Options{
			AddToScheme:       watchedTypes.AddToScheme,
			Types:             []runtime.Object{&wechatv1alpha1.WeChatAuthorizer{}, &wechatv1alpha1.WeChatComponent{}, &corev1.Secret{}},
			DropManagedFields: true,
		}),
	}
	if len(watchNamespaces) == 0 {
		return o
	}
	o.DefaultNamespaces = map[string]cache.Config{}
	secrets := map[string]cache.Config{operatorNamespace: {LabelSelector: managed}}
	for _, ns := range watchNamespaces {
		o.DefaultNamespaces[ns] = cache.Config{}
		secrets[ns] = cache.Config{LabelSelector: managed}
	}
	o.ByObject[secret] = cache.ByObject{Label: managed, Namespaces: secrets}
	return o
}

// rateLimiter is gentler than the default (5 ms doubling to 1000 s): failures are backed off
// by the reconcilers themselves; this only guards against errors returned to the queue.
func rateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 7*time.Minute)
}

// componentChanged lets through what must wake the controller: a spec change, a new ticket,
// redirect code or 全网发布 test reply from the receiver, or a changed annotation (refresh
// requests). The controller's own status writes do not add these, so they do not loop.
var componentChanged = onUpdate(func(oldC, newC *wechatv1alpha1.WeChatComponent) bool {
	return oldC.Generation != newC.Generation ||
		!equality.Semantic.DeepEqual(oldC.Status.VerifyTicket, newC.Status.VerifyTicket) ||
		len(newC.Status.PendingAuthorizationCodes) > len(oldC.Status.PendingAuthorizationCodes) ||
		newTestReply(oldC.Status.PendingTestReplies, newC.Status.PendingTestReplies) ||
		newLinkRequest(oldC.Status.AuthorizeLinkRequests, newC.Status.AuthorizeLinkRequests) ||
		!equality.Semantic.DeepEqual(oldC.Annotations, newC.Annotations) ||
		!newC.DeletionTimestamp.IsZero()
})

// warmInformers has the manager's cache start the informers of a controller's watches with
// the cache itself, before the leader election, rather than when the controller starts
// once elected. A kind's informer otherwise starts only then, after the cache's own (the
// authorizers, for their index) have synced, and a restart lists one kind after the other:
// at 100,000 authorizers the authorizers took 22 s and then the Secrets 15 s, on two cores
// that one list at a time leaves half idle. Started together, they are listed side by side,
// and a standby replica holds synced caches when it takes over.
func warmInformers(ctx context.Context, mgr ctrl.Manager, objs ...client.Object) error {
	for _, obj := range objs {
		// Before the cache starts, this registers the informer and returns at once.
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("the cache's informer for %T: %w", obj, err)
		}
	}
	return nil
}

// notInInitialList drops the initial list's create events of a watch beside For. At a start,
// For's own initial list queues every object of the controller's kind there is, and the
// controller starts its workers only after every watch's initial list is handed over: the
// secondary events add nothing but work. (What they alone would have queued is an owner that
// no longer exists; its leftovers go by garbage collection, whose deletes still come through.) At 100,000 authorizers that was 300,000 redundant adds (two
// owned Secrets per authorizer, each resolved through the REST mapper, and every component's
// fan-out to all its authorizers) before the first reconcile of a restart.
var notInInitialList = predicate.Funcs{CreateFunc: func(e event.CreateEvent) bool { return !e.IsInInitialList }}

// onUpdate is a predicate that lets an update of a T through when changed says so (and
// any update of another type, and every create, delete and generic event: predicate.Funcs
// lets through what it has no function for).
func onUpdate[T client.Object](changed func(oldObj, newObj T) bool) predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		oldObj, ok1 := e.ObjectOld.(T)
		newObj, ok2 := e.ObjectNew.(T)
		return !ok1 || !ok2 || changed(oldObj, newObj)
	}}
}

// newTestReply reports a test reply in now that was not in before.
func newTestReply(before, now []wechatv1alpha1.TestReply) bool {
	for _, n := range now {
		if !slices.ContainsFunc(before, func(b wechatv1alpha1.TestReply) bool { return b.Code == n.Code }) {
			return true
		}
	}
	return false
}

// SetupWithManager registers the WeChatComponent controller.
func (r *WeChatComponentReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrentReconciles int) error {
	return setupComponentController(mgr, r, maxConcurrentReconciles)
}

// setupComponentController wires a reconciler (tests wrap the real one) to the watches.
func setupComponentController(mgr ctrl.Manager, r reconcile.Reconciler, maxConcurrentReconciles int) error {
	if err := warmInformers(context.Background(), mgr, &wechatv1alpha1.WeChatComponent{}, &corev1.Secret{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&wechatv1alpha1.WeChatComponent{}, builder.WithPredicates(componentChanged)).
		// A token Secret deleted or edited by hand is put back.
		Owns(&corev1.Secret{}, builder.WithPredicates(notInInitialList)).
		WithOptions(controller.Options{RateLimiter: rateLimiter(), MaxConcurrentReconciles: maxConcurrentReconciles}).
		Named("wechatcomponent").
		Complete(r)
}

// indexComponentRef indexes WeChatAuthorizers by the component they reference.
const indexComponentRef = "spec.componentRef.name"

// authorizerChanged lets through what must wake the authorizer controller: a spec change, a
// code or revocation recorded by the receiver, or an annotation change.
var authorizerChanged = onUpdate(func(oldA, newA *wechatv1alpha1.WeChatAuthorizer) bool {
	return oldA.Generation != newA.Generation ||
		!equality.Semantic.DeepEqual(oldA.Status.AuthorizationCode, newA.Status.AuthorizationCode) ||
		!equality.Semantic.DeepEqual(oldA.Status.UnauthorizedAt, newA.Status.UnauthorizedAt) ||
		!equality.Semantic.DeepEqual(oldA.Annotations, newA.Annotations) ||
		oldA.Labels[wechatv1alpha1.LabelShardDrain] != newA.Labels[wechatv1alpha1.LabelShardDrain] ||
		!newA.DeletionTimestamp.IsZero()
})

// componentTokenChanged lets through component changes its authorizers care about: a new
// component token (they may have been waiting for one), or a quota reset; and a component
// created (after the initial list: notInInitialList) or deleted.
var componentTokenChanged = onUpdate(func(oldC, newC *wechatv1alpha1.WeChatComponent) bool {
	return !equality.Semantic.DeepEqual(oldC.Status.ExpiresAt, newC.Status.ExpiresAt) || quotaResetChanged(oldC, newC)
})

// SetupWithManager registers the WeChatAuthorizer controller.
func (r *WeChatAuthorizerReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, maxConcurrentReconciles int) error {
	timers, ok := r.Clock.(clock.WithDelayedExecution)
	if !ok {
		timers = clock.RealClock{}
	}
	due := newDueFirst(timers, cmp.Or(r.MinRefreshMargin, refresh.MinMargin))
	return setupAuthorizerController(ctx, mgr, r, due, maxConcurrentReconciles)
}

// setupAuthorizerController registers rec as the WeChatAuthorizer controller (tests wrap it).
func setupAuthorizerController(ctx context.Context, mgr ctrl.Manager, rec reconcile.Reconciler, due dueFirst, maxConcurrentReconciles int) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &wechatv1alpha1.WeChatAuthorizer{}, indexComponentRef,
		func(o client.Object) []string {
			return []string{o.(*wechatv1alpha1.WeChatAuthorizer).Spec.ComponentRef.Name}
		}); err != nil {
		return err
	}
	if err := warmInformers(ctx, mgr, &wechatv1alpha1.WeChatAuthorizer{}, &corev1.Secret{}, &wechatv1alpha1.WeChatComponent{}); err != nil {
		return err
	}
	authorizersOf := func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &wechatv1alpha1.WeChatAuthorizerList{}
		// Only the names are read: the cache's objects, not copies of them.
		if err := mgr.GetClient().List(ctx, list, client.InNamespace(o.GetNamespace()),
			client.MatchingFields{indexComponentRef: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
			return nil
		}
		requests := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
		return requests
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&wechatv1alpha1.WeChatAuthorizer{}, builder.WithPredicates(authorizerChanged)).
		Watches(&wechatv1alpha1.WeChatAuthorizer{}, due.handler()).
		Owns(&corev1.Secret{}, builder.WithPredicates(notInInitialList)).
		Watches(&wechatv1alpha1.WeChatComponent{}, lowPriorityMap{mapFn: authorizersOf},
			builder.WithPredicates(notInInitialList, componentTokenChanged)).
		WithOptions(controller.Options{RateLimiter: rateLimiter(), MaxConcurrentReconciles: maxConcurrentReconciles}).
		Named("wechatauthorizer").
		Complete(due.reconciler(rec))
}
