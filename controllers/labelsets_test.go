/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"testing"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// decodedAuthorizer is an authorizer with labels as an informer decodes it: maps and strings
// of its own.
func decodedAuthorizer(t *testing.T, labels map[string]string) *wechatv1alpha1.WeChatAuthorizer {
	t.Helper()
	a := &wechatv1alpha1.WeChatAuthorizer{}
	if err := json.Unmarshal([]byte(cachedAuthorizerJSON), a); err != nil {
		t.Fatal(err)
	}
	a.Labels = maps.Clone(labels)
	return a
}

// TestCompactCachedSharesAuthorizerLabels: cached authorizers with equal labels hold one map;
// others keep theirs; the labels read are the labels decoded; a copy read from the cache
// has a map of its own, so changing it changes no cached object.
func TestCompactCachedSharesAuthorizerLabels(t *testing.T) {
	shardA := map[string]string{wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue, wechatv1alpha1.LabelShard: "label-sets-a"}
	shardB := map[string]string{wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue, wechatv1alpha1.LabelShard: "label-sets-b"}
	a1, a2, b := decodedAuthorizer(t, shardA), decodedAuthorizer(t, shardA), decodedAuthorizer(t, shardB)
	if sameMap(a1.Labels, a2.Labels) {
		t.Fatal("the decoded authorizers share their labels already: the test proves nothing")
	}
	for _, a := range []*wechatv1alpha1.WeChatAuthorizer{a1, a2, b} {
		if _, err := compactCached(a); err != nil {
			t.Fatal(err)
		}
	}
	if !sameMap(a1.Labels, a2.Labels) {
		t.Error("two authorizers with equal labels hold a map each")
	}
	if sameMap(a1.Labels, b.Labels) {
		t.Error("authorizers with different labels share a map")
	}
	if !maps.Equal(a1.Labels, shardA) || !maps.Equal(b.Labels, shardB) {
		t.Errorf("labels changed by the transform: %v, %v", a1.Labels, b.Labels)
	}
	copied := a1.DeepCopy()
	copied.Labels[wechatv1alpha1.LabelShardDrain] = "true"
	if _, changed := a2.Labels[wechatv1alpha1.LabelShardDrain]; changed {
		t.Error("changing a copy's labels changed a cached authorizer's")
	}
}

// TestLabelSetsBounded: past maxLabelSets distinct sets the table starts again and still
// returns equal labels; what was shared before stays as it is.
func TestLabelSetsBounded(t *testing.T) {
	s := newLabelSets()
	first := s.share(map[string]string{"k": "first"})
	for i := range maxLabelSets + 10 {
		l := map[string]string{"k": fmt.Sprint(i)}
		if got := s.share(maps.Clone(l)); !maps.Equal(got, l) {
			t.Fatalf("set %d: got %v", i, got)
		}
	}
	if s.n > maxLabelSets {
		t.Errorf("%d sets held, bound %d", s.n, maxLabelSets)
	}
	if first["k"] != "first" {
		t.Errorf("a shared map changed: %v", first)
	}
	if got := s.share(map[string]string{"k": "first"}); sameMap(got, first) {
		t.Error("a set dropped when the table started again is still returned")
	}
}

// TestLabelSetsHashIgnoresOrder: equal maps built in different orders find each other.
func TestLabelSetsHashIgnoresOrder(t *testing.T) {
	s := newLabelSets()
	x := map[string]string{}
	y := map[string]string{}
	for i := range 20 {
		x[fmt.Sprint("k", i)] = fmt.Sprint(i)
		y[fmt.Sprint("k", 19-i)] = fmt.Sprint(19 - i)
	}
	if held := s.share(x); !sameMap(s.share(y), held) {
		t.Error("equal labels not shared")
	}
	// The same keys and values, paired otherwise: not the same labels.
	if sameMap(s.share(map[string]string{"a": "b", "c": "d"}), s.share(map[string]string{"a": "d", "c": "b"})) {
		t.Error("different labels share a map")
	}
}

// TestCompactCachedAllocatesNoLabelsForAHeldSet: an authorizer whose labels are held already
// costs no labels map: the transform allocates for it what it does for
// one without labels.
func TestCompactCachedAllocatesNoLabelsForAHeldSet(t *testing.T) {
	labels := map[string]string{wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue, wechatv1alpha1.LabelShard: "label-sets-allocs"}
	const runs = 50
	allocs := func(labels map[string]string) float64 {
		objs := make([]*wechatv1alpha1.WeChatAuthorizer, runs+1) // AllocsPerRun runs once more to warm up
		for i := range objs {
			objs[i] = decodedAuthorizer(t, labels)
		}
		next := 0
		return testing.AllocsPerRun(runs, func() {
			if _, err := compactCached(objs[next]); err != nil {
				t.Fatal(err)
			}
			next++
		})
	}
	if _, err := compactCached(decodedAuthorizer(t, labels)); err != nil { // the set is held from here on
		t.Fatal(err)
	}
	if with, without := allocs(labels), allocs(nil); with != without {
		t.Errorf("%.0f allocations for an authorizer whose labels are held, %.0f for one without labels", with, without)
	}
}
