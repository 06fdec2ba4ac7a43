/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestReplayCacheRemembersUntilExpiry(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	cache := newReplayCache(clock, 10)
	if got := cache.reserve("a", time.Minute); got != replayNew {
		t.Fatalf("an empty cache answered %v", got)
	}
	if got := cache.reserve("a", time.Minute); got != replayInFlight {
		t.Fatalf("a key being processed answered %v, want in flight", got)
	}
	cache.complete("a")
	if got := cache.reserve("a", time.Minute); got != replayDone {
		t.Fatalf("a processed key answered %v, want done", got)
	}
	clock.SetTime(clock.Now().Add(59 * time.Second))
	if got := cache.reserve("a", time.Minute); got != replayDone {
		t.Fatal("a push is forgotten before its time")
	}
	clock.SetTime(clock.Now().Add(time.Second))
	if got := cache.reserve("a", time.Minute); got != replayNew {
		t.Fatal("a push is remembered after its time")
	}
}

func TestAReleasedKeyIsProcessedAgain(t *testing.T) {
	cache := newReplayCache(clocktesting.NewFakePassiveClock(time.Now()), 10)
	cache.reserve("a", time.Minute)
	cache.release("a")
	if got := cache.reserve("a", time.Minute); got != replayNew {
		t.Fatalf("after a release the key answered %v, want new (WeChat's retry is processed)", got)
	}
}

func TestReplayCacheIsBounded(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	cache := newReplayCache(clock, 3)
	for _, k := range []string{"a", "b", "c", "d"} {
		cache.reserve(k, time.Hour)
		cache.complete(k)
	}
	if n := cache.len(); n != 3 {
		t.Errorf("cache holds %d entries, want 3", n)
	}
	for _, k := range []string{"b", "c", "d"} {
		if cache.reserve(k, time.Hour) != replayDone {
			t.Errorf("entry %q was dropped", k)
		}
	}
	if cache.reserve("a", time.Hour) != replayNew {
		t.Error("the oldest entry survived past the bound")
	}
}

func TestTheReplayKeyIsCanonical(t *testing.T) {
	const sig = "0123456789abcdef0123456789abcdef01234567"
	base := replayKey("events", "ns/c", "1700000000", "1700000001", sig)
	same := map[string]string{
		"an upper-case signature":                    replayKey("events", "ns/c", "1700000000", "1700000001", strings.ToUpper(sig)),
		"timestamp and nonce swapped (still signed)": replayKey("events", "ns/c", "1700000001", "1700000000", sig),
	}
	for name, k := range same {
		if k != base {
			t.Errorf("%s gives another key", name)
		}
	}
	other := map[string]string{
		"another component": replayKey("events", "ns/d", "1700000000", "1700000001", sig),
		"another endpoint":  replayKey("messages", "ns/c", "1700000000", "1700000001", sig),
		"another nonce":     replayKey("events", "ns/c", "1700000000", "1700000002", sig),
	}
	for name, k := range other {
		if k == base {
			t.Errorf("%s gives the same key", name)
		}
	}
}

// A large cache is sharded: concurrent reservations of the same keys get exactly one
// replayNew each, the bound holds over all shards, and the newest entries are kept.
func TestAShardedReplayCacheKeepsItsPromises(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	const keys, racers = 5_000, 4
	cache := newReplayCache(clock, defaultReplayEntries)
	if len(cache.shards) != replayShards {
		t.Fatalf("a cache of %d entries has %d shards, want %d", defaultReplayEntries, len(cache.shards), replayShards)
	}
	var wg sync.WaitGroup
	var fresh atomic.Int64
	for range racers {
		wg.Go(func() {
			for i := range keys {
				if cache.reserve(strconv.Itoa(i), time.Hour) == replayNew {
					fresh.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := fresh.Load(); n != keys {
		t.Fatalf("%d racers reserving %d keys got %d new reservations, want one per key", racers, keys, n)
	}

	const max = 2048
	small := newReplayCache(clock, max)
	for i := range 10 * max {
		small.reserve(strconv.Itoa(i), time.Hour)
	}
	if n := small.len(); n > max || n < max-replayShards {
		t.Fatalf("the cache holds %d entries, want at most (and about) %d", n, max)
	}
	for i := 10*max - 50; i < 10*max; i++ {
		if got := small.reserve(strconv.Itoa(i), time.Hour); got == replayNew {
			t.Fatalf("key %d, among the newest, was forgotten", i)
		}
	}
}

// The ring wraps: after many times its size, each of the newest keys still answers with its
// own state (done or in flight), and a released key leaves its slot to the oldest's fate
// without taking a live entry's place in the index.
func TestTheReplayRingKeepsEachKeysState(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	cache := newReplayCache(clock, 4)
	for i := range 41 {
		k := strconv.Itoa(i)
		cache.reserve(k, time.Hour)
		if i%2 == 0 {
			cache.complete(k)
		}
	}
	for i := 37; i <= 40; i++ {
		want := replayInFlight
		if i%2 == 0 {
			want = replayDone
		}
		if got := cache.reserve(strconv.Itoa(i), time.Hour); got != want {
			t.Errorf("key %d answered %v after the ring wrapped, want %v", i, got, want)
		}
	}
	cache.release("40")
	if got := cache.reserve("40", time.Hour); got != replayNew {
		t.Fatalf("a released key answered %v, want new", got)
	}
	// "40" now holds a new slot; its released one is older and goes first.
	cache.reserve("41", time.Hour)
	cache.reserve("42", time.Hour)
	for _, k := range []string{"40", "41", "42"} {
		if got := cache.reserve(k, time.Hour); got == replayNew {
			t.Errorf("key %s was forgotten: a released slot took a live entry's place", k)
		}
	}
	if n := cache.len(); n > 4 {
		t.Errorf("the cache holds %d entries, bound 4", n)
	}
}

// At its bound the cache costs well under 100 bytes an entry: 68 here. As list elements and
// pointers it cost 131, and held each key's string besides (another 100 or so in the
// receiver, where the string is built per push), all of which the garbage collector scanned.
func TestAFullReplayCacheIsSmall(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	keys := make([]string, defaultReplayEntries)
	for i := range keys {
		keys[i] = replayKey("messages", "ns/c", strconv.Itoa(1_700_000_000+i), strconv.Itoa(i), "0123456789abcdef0123456789abcdef01234567")
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	cache := newReplayCache(clock, defaultReplayEntries)
	for _, k := range keys {
		cache.reserve(k, time.Hour)
	}
	perEntry := (float64(heap()) - float64(before)) / float64(len(keys))
	runtime.KeepAlive(keys)
	runtime.KeepAlive(cache)
	if perEntry > 100 {
		t.Errorf("a full replay cache holds %.0f bytes an entry, want under 100", perEntry)
	}
	t.Logf("%.0f bytes an entry", perEntry)
}
