/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestReplayCacheRemembersUntilExpiry(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	cache := newReplayCache(clock, time.Minute, 10)
	if cache.seen("a") {
		t.Fatal("an empty cache has seen a push")
	}
	cache.add("a")
	if !cache.seen("a") {
		t.Fatal("a push just added is not remembered")
	}
	clock.SetTime(clock.Now().Add(59 * time.Second))
	if !cache.seen("a") {
		t.Fatal("a push is forgotten before its time")
	}
	clock.SetTime(clock.Now().Add(time.Second))
	if cache.seen("a") {
		t.Fatal("a push is remembered after its time")
	}
}

func TestReplayCacheIsBounded(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	cache := newReplayCache(clock, time.Hour, 3)
	for _, k := range []string{"a", "b", "c", "d"} {
		cache.add(k)
	}
	if cache.seen("a") {
		t.Error("the oldest entry survived past the bound")
	}
	for _, k := range []string{"b", "c", "d"} {
		if !cache.seen(k) {
			t.Errorf("entry %q was dropped", k)
		}
	}
	if n := cache.order.Len(); n != 3 {
		t.Errorf("cache holds %d entries, want 3", n)
	}
}
