/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// Sharding (docs/operations.md, "Sharding"). Every manager process serves one shard: it holds
// the Lease ShardLeaseName(shard) and caches only the WeChatAuthorizers (and their Secrets)
// labelled with its shard's name. The process that also holds the manager Lease runs the
// WeChatComponent controller (a component's token stays with one process) and the sharder,
// which labels each authorizer with the live shard rendezvous hashing picks for it.

// ShardLeasePrefix starts the name of every shard's Lease; what follows is the shard's name.
const ShardLeasePrefix = "wechat-operator-shard-"

// ShardLeaseName is the Lease a shard's manager holds while it serves the shard.
func ShardLeaseName(shard string) string { return ShardLeasePrefix + shard }

// DefaultShardGrace is how long past a shard Lease's last renewal plus its duration the sharder
// still counts the shard live, before it takes the shard's authorizers away without the
// shard's consent. It covers clock skew between the holder and the sharder (leader election
// already stops a holder that cannot renew before its Lease runs out) and a pod restart: a
// shard back within it (a rolling update) finds its authorizers where it left them, instead
// of every one moved away and back. Its authorizers are not served meanwhile, which the
// 10-minute refresh margin absorbs.
const DefaultShardGrace = 30 * time.Second

// liveShards returns the names of the shards whose Lease was renewed within its duration
// plus grace, held or released (a released Lease's holder stopped; it may be restarting),
// sorted.
func liveShards(leases []coordinationv1.Lease, now time.Time, grace time.Duration) []string {
	var shards []string
	for i := range leases {
		l := &leases[i]
		name, ok := strings.CutPrefix(l.Name, ShardLeasePrefix)
		if !ok || name == "" || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
			continue
		}
		if now.Before(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second + grace)) {
			shards = append(shards, name)
		}
	}
	slices.Sort(shards)
	return shards
}

// pickShard chooses an authorizer's shard by rendezvous (highest random weight) hashing: each
// shard scores the key, the highest wins. Adding a shard moves only the keys it now wins
// (about 1/N of them), removing one moves only its own, and every process that knows the
// same live shards picks the same one. No ring state is kept anywhere.
func pickShard(shards []string, key string) string {
	var best string
	var bestScore uint64
	for _, s := range shards {
		sum := sha256.Sum256([]byte(s + "\x00" + key))
		score := binary.BigEndian.Uint64(sum[:8])
		if best == "" || score > bestScore || (score == bestScore && s < best) {
			best, bestScore = s, score
		}
	}
	return best
}

// placement is what the sharder does with one authorizer.
type placement int

const (
	placementKeep    placement = iota // on its shard, nothing to do
	placementAssign                   // unassigned, or its shard is dead: label it for the chosen shard
	placementDrain                    // on a live shard that is no longer its own: ask that shard to let it go
	placementWait                     // drain asked; the shard has not let go yet
	placementUndrain                  // drain asked, but the chosen shard is its current one again
)

// decidePlacement is the hand-over rule. An authorizer moves from one live shard to another
// only through the drain label: the old shard stops serving it and removes its labels, and
// only an unassigned authorizer is assigned. So no two shards serve it at once; the gap is
// one label round-trip, far inside the refresh margin. A dead shard cannot refresh, so its
// authorizers are reassigned without waiting.
func decidePlacement(current string, draining bool, live []string, chosen string) placement {
	switch {
	case current == "" || !slices.Contains(live, current):
		return placementAssign
	case current == chosen && draining:
		return placementUndrain
	case current == chosen:
		return placementKeep
	case draining:
		return placementWait
	default:
		return placementDrain
	}
}

// ShardCacheOptions is a shard manager's cache: WeChatAuthorizers and Secrets labelled for
// shard only (so its memory is its share), WeChatComponents all (few, and every shard's
// authorizers need theirs).
func ShardCacheOptions(operatorNamespace string, watchNamespaces []string, shard string) cache.Options {
	o := CacheOptions(operatorNamespace, watchNamespaces)
	mine := labels.SelectorFromSet(labels.Set{wechatv1alpha1.LabelShard: shard})
	managedMine := labels.SelectorFromSet(labels.Set{
		wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue,
		wechatv1alpha1.LabelShard:     shard,
	})
	selectSecrets(o, managedMine)
	o.ByObject[&wechatv1alpha1.WeChatAuthorizer{}] = cache.ByObject{Label: mine}
	return o
}

// SharedCacheOptions is the cache of a sharded process's other manager, the one that runs the
// WeChatComponent controller and the sharder: Secrets that belong to no authorizer (component
// token Secrets, the keyring), the shard Leases (in leaseNamespace), and WeChatAuthorizers cut down to what those
// two read (sharderView), so it too holds far less than one unsharded manager.
func SharedCacheOptions(operatorNamespace string, watchNamespaces []string, leaseNamespace string) cache.Options {
	o := CacheOptions(operatorNamespace, watchNamespaces)
	noAuthorizer, _ := labels.NewRequirement(wechatv1alpha1.LabelAuthorizer, selection.DoesNotExist, nil)
	managed, _ := labels.NewRequirement(wechatv1alpha1.LabelManagedBy, selection.Equals, []string{wechatv1alpha1.ManagedByValue})
	shared := labels.NewSelector().Add(*managed, *noAuthorizer)
	selectSecrets(o, shared)
	o.ByObject[&wechatv1alpha1.WeChatAuthorizer{}] = cache.ByObject{Transform: sharderView}
	o.ByObject[&coordinationv1.Lease{}] = cache.ByObject{Namespaces: map[string]cache.Config{leaseNamespace: {}}}
	return o
}

// selectSecrets narrows the Secret entry of CacheOptions' options (every namespace's, with
// --watch-namespaces) to selector.
func selectSecrets(o cache.Options, selector labels.Selector) {
	for obj, by := range o.ByObject {
		if _, ok := obj.(*corev1.Secret); ok {
			by.Label = selector
			for ns, cfg := range by.Namespaces {
				cfg.LabelSelector = selector
				by.Namespaces[ns] = cfg
			}
			o.ByObject[obj] = by
		}
	}
}

// sharderView keeps of a WeChatAuthorizer what the WeChatComponent controller and the sharder
// read: its identity and labels, spec.appID, spec.componentRef, and the pending code in
// status. Their writes to authorizers are merge patches of what they
// change (status.authorizationCode, status.authorizedAt, labels), so nothing cut here is
// ever written back.
func sharderView(obj any) (any, error) {
	obj, err := compactCached(obj)
	a, ok := obj.(*wechatv1alpha1.WeChatAuthorizer)
	if err != nil || !ok {
		return obj, err
	}
	view := &wechatv1alpha1.WeChatAuthorizer{TypeMeta: a.TypeMeta}
	view.ObjectMeta = metav1.ObjectMeta{
		Name: a.Name, Namespace: a.Namespace, UID: a.UID, ResourceVersion: a.ResourceVersion,
		Generation: a.Generation, CreationTimestamp: a.CreationTimestamp, DeletionTimestamp: a.DeletionTimestamp,
		Labels: a.Labels, OwnerReferences: a.OwnerReferences,
	}
	view.Spec.AppID, view.Spec.ComponentRef = a.Spec.AppID, a.Spec.ComponentRef
	view.Status.AuthorizationCode = a.Status.AuthorizationCode
	return view, nil
}

// releaseShard is a shard's side of the hand-over: an authorizer not labelled for this shard
// is not served (an uncached read may show one the cache has let go), and one the sharder
// asked to drain is let go, by removing both labels in one write. It reports whether the
// reconcile ends here.
func (r *WeChatAuthorizerReconciler) releaseShard(ctx context.Context, a *wechatv1alpha1.WeChatAuthorizer) (bool, error) {
	if r.Shard == "" {
		return false, nil
	}
	if a.Labels[wechatv1alpha1.LabelShard] != r.Shard {
		return true, nil
	}
	if _, draining := a.Labels[wechatv1alpha1.LabelShardDrain]; !draining {
		return false, nil
	}
	patch := client.MergeFromWithOptions(a.DeepCopy(), client.MergeFromWithOptimisticLock{})
	delete(a.Labels, wechatv1alpha1.LabelShard)
	delete(a.Labels, wechatv1alpha1.LabelShardDrain)
	if err := r.Patch(ctx, a, patch, fieldOwner); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return true, err // a conflict: the next event shows what the sharder wants now
	}
	log.FromContext(ctx).Info("released to the sharder for another shard", "shard", r.Shard)
	return true, nil
}

// getAuthorizerSecret reads one of the authorizer's two Secrets from the cache. A shard's
// cache holds only Secrets labelled for it, and one just handed over (or written by the
// WeChatComponent controller) may not be yet: a Secret the cache misses is read from the API
// server before it counts as missing, else a shard would refresh a token it already has, or
// not find its refresh token, and it is labelled for this shard so the cache sees it next
// time. Like the cache, the read sees only Secrets the operator manages.
//
// What the cache returns is its own object, not a copy: the reconcile only reads it, and
// what writes a Secret (tokenSecretWriter.ensure, writeState) writes a copy
// (secretcache_test.go).
func (r *WeChatAuthorizerReconciler) getAuthorizerSecret(ctx context.Context, a *wechatv1alpha1.WeChatAuthorizer, name string) (*corev1.Secret, error) {
	secret, err := getManagedSecret(ctx, r.Client, a.Namespace, name, client.UnsafeDisableDeepCopy)
	if err != nil || secret != nil || r.Shard == "" {
		return secret, err
	}
	if secret, err = getLiveManagedSecret(ctx, r.APIReader, a.Namespace, name); err != nil || secret == nil {
		return nil, err
	}
	if metav1.IsControlledBy(secret, a) && secret.Labels[wechatv1alpha1.LabelShard] != r.Shard {
		// An update of what was just read, guarded by its resourceVersion (the manager does not
		// patch Secrets). A conflict means the Secret changed since it was read (a new refresh
		// token, say): the reconcile is retried on what it is now, never on what was read.
		labelled := secret.DeepCopy()
		labelled.Labels[wechatv1alpha1.LabelShard] = r.Shard
		if err := r.Update(ctx, labelled, fieldOwner); err != nil {
			return nil, err
		}
		secret = labelled
	}
	return secret, nil
}

// shardLabels adds the authorizer's shard label, if it has one, to the labels of a Secret
// written for it, so the Secret stays in its shard's cache.
func shardLabels(a *wechatv1alpha1.WeChatAuthorizer, l map[string]string) map[string]string {
	if shard := a.Labels[wechatv1alpha1.LabelShard]; shard != "" {
		l[wechatv1alpha1.LabelShard] = shard
	}
	return l
}
