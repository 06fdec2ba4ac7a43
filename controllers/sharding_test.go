/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

func TestPickShardSpreadsEvenlyAndMovesOnlyWhatItMust(t *testing.T) {
	const n = 30000
	three := []string{"a", "b", "c"}
	four := []string{"a", "b", "c", "d"}
	counts := map[string]int{}
	moved := 0
	for i := range n {
		key := fmt.Sprintf("ns/authorizer-%d", i)
		before, after := pickShard(three, key), pickShard(four, key)
		counts[before]++
		if before != after {
			moved++
			if after != "d" {
				t.Fatalf("%s moved from %s to %s: adding a shard may move keys only to it", key, before, after)
			}
		}
		if pickShard([]string{"c", "a", "b"}, key) != before {
			t.Fatalf("%s: the choice depends on the order the shards are listed in", key)
		}
		if removed := pickShard([]string{"a", "c"}, key); before != "b" && removed != before {
			t.Fatalf("%s moved from %s to %s when b went: removing a shard may move only its keys", key, before, removed)
		}
	}
	for _, s := range three {
		if share := float64(counts[s]) / n; share < 0.31 || share > 0.36 {
			t.Errorf("shard %s holds %.3f of the keys, want about a third", s, share)
		}
	}
	if share := float64(moved) / n; share < 0.22 || share > 0.28 {
		t.Errorf("adding a fourth shard moved %.3f of the keys, want about a quarter", share)
	}
	if got := pickShard(nil, "ns/x"); got != "" {
		t.Errorf("no shards: got %q", got)
	}
}

func TestDecidePlacement(t *testing.T) {
	live := []string{"a", "b"}
	for _, tc := range []struct {
		name     string
		current  string
		draining bool
		chosen   string
		want     placement
	}{
		{"unassigned", "", false, "a", placementAssign},
		{"unassigned with a stale drain label", "", true, "a", placementAssign},
		{"on its shard", "a", false, "a", placementKeep},
		{"on another live shard", "a", false, "b", placementDrain},
		{"drain asked, not let go yet", "a", true, "b", placementWait},
		{"drain asked, then the ring moved back", "a", true, "a", placementUndrain},
		{"on a dead shard", "gone", false, "a", placementAssign},
		{"draining from a dead shard", "gone", true, "b", placementAssign},
	} {
		if got := decidePlacement(tc.current, tc.draining, live, tc.chosen); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLiveShards(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	lease := func(name, holder string, renewedAgo time.Duration) coordinationv1.Lease {
		l := coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name}}
		l.Spec.LeaseDurationSeconds = ptr.To[int32](15)
		l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(now.Add(-renewedAgo)))
		if holder != "" {
			l.Spec.HolderIdentity = ptr.To(holder)
		}
		return l
	}
	leases := []coordinationv1.Lease{
		lease(ShardLeaseName("b"), "pod-b", 2*time.Second),
		lease(ShardLeaseName("a"), "pod-a", 40*time.Second),    // late, within the grace
		lease(ShardLeaseName("c"), "pod-c", 46*time.Second),    // stale: 15 s + 30 s grace gone
		lease(ShardLeaseName("d"), "", 10*time.Second),         // released, maybe restarting
		lease(ShardLeaseName("e"), "", 50*time.Second),         // released and gone
		lease("wechat-operator-manager", "pod-a", time.Second), // not a shard
	}
	if shards := liveShards(leases, now, DefaultShardGrace); !slices.Equal(shards, []string{"a", "b", "d"}) {
		t.Errorf("live shards %v, want [a b d]", shards)
	}
}

func TestSharderViewKeepsWhatTheComponentControllerAndSharderRead(t *testing.T) {
	a := &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{
		Name: "x", Namespace: "ns", UID: "u", ResourceVersion: "7",
		Labels:      map[string]string{wechatv1alpha1.LabelShard: "a", "team": "t"},
		Annotations: map[string]string{"big": "annotation"},
	}}
	a.Spec.AppID, a.Spec.ComponentRef.Name, a.Spec.TokenSecret.Name = "wxabc", "platform", "tok"
	a.Status.AuthorizationCode = &wechatv1alpha1.AuthorizationCode{Code: "c"}
	a.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Message: "long text"}}
	a.Status.Info = &wechatv1alpha1.AuthorizerInfo{NickName: "n"}
	out, err := sharderView(a)
	if err != nil {
		t.Fatal(err)
	}
	v := out.(*wechatv1alpha1.WeChatAuthorizer)
	if v.Name != "x" || v.UID != "u" || v.ResourceVersion != "7" || v.Labels["team"] != "t" ||
		v.Labels[wechatv1alpha1.LabelShard] != "a" || v.Spec.AppID != "wxabc" || v.Spec.ComponentRef.Name != "platform" ||
		v.Status.AuthorizationCode == nil || v.Status.AuthorizationCode.Code != "c" {
		t.Errorf("a field the component controller or the sharder reads was cut: %+v", v)
	}
	if v.Annotations != nil || v.Status.Conditions != nil || v.Status.Info != nil || v.Spec.TokenSecret.Name != "" {
		t.Errorf("the view keeps what nobody reads: %+v", v)
	}
}

// sharderWorld is a sharder over a fake API server: live shards a and b in the cache, and
// an authorizer on shard a.
func sharderWorld(t *testing.T, cachedLeases, apiLeases []coordinationv1.Lease, funcs interceptor.Funcs) (*Sharder, *wechatv1alpha1.WeChatAuthorizer) {
	t.Helper()
	a := &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns",
		Labels: map[string]string{wechatv1alpha1.LabelShard: "a"}}}
	objs := []client.Object{a}
	for i := range cachedLeases {
		objs = append(objs, &cachedLeases[i])
	}
	cached := fake.NewClientBuilder().WithScheme(sharderScheme()).WithObjects(objs...).WithInterceptorFuncs(funcs).Build()
	var api []client.Object
	for i := range apiLeases {
		api = append(api, &apiLeases[i])
	}
	uncached := fake.NewClientBuilder().WithScheme(sharderScheme()).WithObjects(api...).Build()
	return &Sharder{Client: cached, APIReader: uncached, LeaseNamespace: "ops", Clock: clocktesting.NewFakePassiveClock(testNow)}, a
}

var testNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// sharderScheme is the API the sharder reads (the suite's scheme is filled in only by its
// BeforeSuite).
func sharderScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = wechatv1alpha1.AddToScheme(s)
	return s
}

func shardLease(shard string, renewedAgo time.Duration) coordinationv1.Lease {
	l := coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: ShardLeaseName(shard), Namespace: "ops"}}
	l.Spec.HolderIdentity = ptr.To("pod-" + shard)
	l.Spec.LeaseDurationSeconds = ptr.To[int32](15)
	l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(testNow.Add(-renewedAgo)))
	return l
}

func TestSharderComesBackAfterAConflict(t *testing.T) {
	// Only shard b is live: the authorizer on dead shard a is to be reassigned, and the
	// patch conflicts (a status write came first). The predicate passes no status write on,
	// so the sharder must come back by itself.
	patches := 0
	s, a := sharderWorld(t, []coordinationv1.Lease{shardLease("b", time.Second)}, nil, interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			patches++
			return apierrors.NewConflict(schema.GroupResource{Resource: "wechatauthorizers"}, obj.GetName(), errors.New("modified"))
		},
	})
	result, err := s.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKeyFromObject(a)})
	if err != nil || patches != 1 {
		t.Fatalf("err %v, %d patches; want one conflicting patch", err, patches)
	}
	if result.RequeueAfter <= 0 {
		t.Errorf("after a conflict the sharder does not come back (result %+v): the authorizer may never be placed", result)
	}
}

func TestSharderTakesNothingFromAShardTheAPIServerSaysIsAlive(t *testing.T) {
	// The cache's copy of shard a's Lease is old (its watch lags); the API server's is fresh.
	patches := 0
	count := interceptor.Funcs{Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		patches++
		return c.Patch(ctx, obj, patch, opts...)
	}}
	cached := []coordinationv1.Lease{shardLease("a", time.Hour), shardLease("b", time.Second)}
	s, a := sharderWorld(t, cached, []coordinationv1.Lease{shardLease("a", time.Second)}, count)
	key := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(a)}
	if _, err := s.Reconcile(context.Background(), key); err != nil || patches != 0 {
		t.Fatalf("err %v, %d patches: an authorizer was taken from a shard that is alive", err, patches)
	}
	// Once the API server agrees the Lease is stale, it moves.
	s.APIReader = fake.NewClientBuilder().WithScheme(sharderScheme()).WithObjects(ptr.To(shardLease("a", time.Hour))).Build()
	if _, err := s.Reconcile(context.Background(), key); err != nil || patches != 1 {
		t.Fatalf("err %v, %d patches: want the authorizer reassigned from the dead shard", err, patches)
	}
	moved := &wechatv1alpha1.WeChatAuthorizer{}
	if err := s.Client.Get(context.Background(), key.NamespacedName, moved); err != nil || moved.Labels[wechatv1alpha1.LabelShard] != "b" {
		t.Errorf("labels %v (err %v), want shard b", moved.Labels, err)
	}
}

func TestSharderReadsADeadShardsLeaseOncePerPoll(t *testing.T) {
	// Shard a is dead, in the cache and in the API server; its three authorizers all move,
	// for one uncached read of its Lease, not three.
	objs := []client.Object{ptr.To(shardLease("a", time.Hour)), ptr.To(shardLease("b", time.Second))}
	for _, name := range []string{"x", "y", "z"} {
		objs = append(objs, &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns",
			Labels: map[string]string{wechatv1alpha1.LabelShard: "a"}}})
	}
	reads := 0
	uncached := fake.NewClientBuilder().WithScheme(sharderScheme()).WithObjects(ptr.To(shardLease("a", time.Hour))).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			reads++
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
	s := &Sharder{Client: fake.NewClientBuilder().WithScheme(sharderScheme()).WithObjects(objs...).Build(),
		APIReader: uncached, LeaseNamespace: "ops", Clock: clocktesting.NewFakePassiveClock(testNow)}
	for _, name := range []string{"x", "y", "z"} {
		key := client.ObjectKey{Namespace: "ns", Name: name}
		if _, err := s.Reconcile(context.Background(), reconcile.Request{NamespacedName: key}); err != nil {
			t.Fatal(err)
		}
		moved := &wechatv1alpha1.WeChatAuthorizer{}
		if err := s.Client.Get(context.Background(), key, moved); err != nil || moved.Labels[wechatv1alpha1.LabelShard] != "b" {
			t.Errorf("%s: labels %v (err %v), want shard b", name, moved.Labels, err)
		}
	}
	if reads != 1 {
		t.Errorf("%d uncached reads of the dead shard's Lease for three authorizers, want 1", reads)
	}
}
