/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"container/list"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// replayCache remembers the pushes this replica took on, for as long as their timestamp is
// inside the acceptance window. WeChat retries a push (same timestamp, nonce and signature)
// when it missed our answer; a remembered push is answered without being applied twice, and
// a captured push replayed by someone else does nothing.
//
// A key is reserved before the push is processed, so that copies arriving at the same time
// cannot all pass the check (check-then-record would let them); it is released only when
// the push could not be processed (a 5xx answer), so that WeChat's retry is processed.
//
// It is split into shards by a hash of the key, each with its own lock, list and map, so that
// concurrent pushes rarely wait for each other; each shard holds its part of the bound.
type replayCache struct {
	seed   maphash.Seed
	shards []replayShard
}

// replayShard is one lock's worth of the cache: its entries in reservation order.
type replayShard struct {
	mu      sync.Mutex
	clock   clock.PassiveClock
	max     int
	order   *list.List // of *replayEntry, in the order they were reserved
	entries map[string]*list.Element
}

// replayShards is the number of shards of a cache of at least minShardedEntries; a smaller
// one is a single shard, whose bound evicts exactly the oldest entry.
const (
	replayShards      = 16
	minShardedEntries = 1024
)

type replayEntry struct {
	key     string
	expires time.Time
	done    bool // processed; false while its first copy is still being processed
}

// replayState is what reserve found.
type replayState int

const (
	replayNew      replayState = iota // reserved now: process it, then complete or release
	replayInFlight                    // another copy is being processed right now
	replayDone                        // already processed
)

func newReplayCache(c clock.PassiveClock, max int) *replayCache {
	n := 1
	if max >= minShardedEntries {
		n = replayShards
	}
	r := &replayCache{seed: maphash.MakeSeed(), shards: make([]replayShard, n)}
	for i := range r.shards {
		r.shards[i] = replayShard{clock: c, max: max / n, order: list.New(), entries: map[string]*list.Element{}}
	}
	return r
}

func (r *replayCache) shard(key string) *replayShard {
	if len(r.shards) == 1 {
		return &r.shards[0]
	}
	return &r.shards[maphash.String(r.seed, key)%uint64(len(r.shards))]
}

// replayKey is the canonical form of a push's identity: its endpoint, its component, and
// what its signature covers. msg_signature is accepted in either letter case, so it is
// lowered; it is SHA-1 over the sorted (token, timestamp, nonce, ciphertext), so swapping the
// timestamp and the nonce keeps it valid, and they are sorted too. The authorizer appid of a
// message URL is not in it: the same message sent to another account's URL is the same push.
func replayKey(endpoint, component, timestamp, nonce, signature string) string {
	parts := []string{timestamp, nonce}
	slices.Sort(parts)
	return endpoint + "\x00" + component + "\x00" + parts[0] + "\x00" + parts[1] + "\x00" + strings.ToLower(signature)
}

// reserve claims key until ttl from now, unless it is already there. When its shard is full,
// the shard's oldest entry goes first: the cache's memory is bounded by max, its retention by
// the ttls.
func (r *replayCache) reserve(key string, ttl time.Duration) replayState {
	return r.shard(key).reserve(key, ttl)
}

func (r *replayShard) reserve(key string, ttl time.Duration) replayState {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire()
	if e, ok := r.entries[key]; ok {
		if e.Value.(*replayEntry).done {
			return replayDone
		}
		return replayInFlight
	}
	if r.order.Len() >= r.max {
		oldest := r.order.Front()
		r.order.Remove(oldest)
		delete(r.entries, oldest.Value.(*replayEntry).key)
	}
	r.entries[key] = r.order.PushBack(&replayEntry{key: key, expires: r.clock.Now().Add(ttl)})
	return replayNew
}

// complete marks a reserved key processed.
func (r *replayCache) complete(key string) {
	sh := r.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.entries[key]; ok {
		e.Value.(*replayEntry).done = true
	}
}

// release forgets a reserved key whose processing failed, so that a retry is processed.
func (r *replayCache) release(key string) {
	sh := r.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.entries[key]; ok {
		sh.order.Remove(e)
		delete(sh.entries, key)
	}
}

// expire drops the entries at the front whose time has come. Entries are in reservation
// order and ttls differ by component, so one may outlive its ttl behind a longer one: that
// only remembers it longer, which is harmless (its timestamp is refused by then anyway).
func (r *replayShard) expire() {
	now := r.clock.Now()
	for e := r.order.Front(); e != nil; e = r.order.Front() {
		entry := e.Value.(*replayEntry)
		if now.Before(entry.expires) {
			return
		}
		r.order.Remove(e)
		delete(r.entries, entry.key)
	}
}

// len is the number of entries not yet expired. (A shard drops expired entries when a key of
// its own is reserved; with keys spread evenly, that is every few pushes.)
func (r *replayCache) len() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		sh.expire()
		n += sh.order.Len()
		sh.mu.Unlock()
	}
	return n
}
