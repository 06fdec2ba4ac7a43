/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
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
// It is split into shards by a hash of the key, each with its own lock, so that concurrent
// pushes rarely wait for each other; each shard holds its part of the bound.
//
// It holds no pointers: a key is kept as a 128-bit hash under seeds of this process, in a
// ring of fixed-size slots and a map from hash to slot. The garbage collector never scans
// such memory, and at the bound (100,000 entries, reached in under a minute at a few
// thousand messages a second) a cache of strings, list elements and pointers was most of
// what it scanned on every cycle, and most of the receiver's heap.
type replayCache struct {
	seeds  [2]maphash.Seed
	shards []replayShard
}

// replayID is a key's two 64-bit hashes. Two keys share one with a chance of about 2^-128;
// the seeds are random per process, so nobody outside can aim for a collision (which would
// only make a push be taken for a copy of another).
type replayID [2]uint64

// replayShard is one lock's worth of the cache: its entries in reservation order, as a ring
// of max slots (slot seq%max for sequence number seq), oldest at head.
type replayShard struct {
	mu    sync.Mutex
	clock clock.PassiveClock
	max   uint64
	ring  []replaySlot        // grows to max, then wraps
	head  uint64              // sequence number of the oldest slot still held
	next  uint64              // sequence number of the next reservation
	index map[replayID]uint64 // reserved and not released → sequence number
}

type replaySlot struct {
	id       replayID
	expires  int64 // Unix nanoseconds
	done     bool  // processed; false while its first copy is still being processed
	released bool  // forgotten before its time; only waits for head to pass it
}

// replayState is what reserve found.
type replayState int

const (
	replayNew      replayState = iota // reserved now: process it, then complete or release
	replayInFlight                    // another copy is being processed right now
	replayDone                        // already processed
)

// replayShards is the number of shards of a cache of at least minShardedEntries; a smaller
// one is a single shard, whose bound evicts exactly the oldest entry.
const (
	replayShards      = 16
	minShardedEntries = 1024
)

func newReplayCache(c clock.PassiveClock, bound int) *replayCache {
	n := 1
	if bound >= minShardedEntries {
		n = replayShards
	}
	r := &replayCache{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, shards: make([]replayShard, n)}
	for i := range r.shards {
		r.shards[i] = replayShard{clock: c, max: uint64(max(bound/n, 1)), index: map[replayID]uint64{}}
	}
	return r
}

// find is key's hash and its shard.
func (r *replayCache) find(key string) (replayID, *replayShard) {
	id := replayID{maphash.String(r.seeds[0], key), maphash.String(r.seeds[1], key)}
	return id, &r.shards[id[0]%uint64(len(r.shards))]
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
	id, sh := r.find(key)
	return sh.reserve(id, ttl)
}

func (r *replayShard) reserve(id replayID, ttl time.Duration) replayState {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now().UnixNano()
	r.expire(now)
	if seq, ok := r.index[id]; ok {
		if r.slot(seq).done {
			return replayDone
		}
		return replayInFlight
	}
	if r.next-r.head == r.max {
		r.drop()
	}
	s := replaySlot{id: id, expires: now + int64(ttl)}
	if uint64(len(r.ring)) < r.max {
		r.ring = append(r.ring, s)
	} else {
		*r.slot(r.next) = s
	}
	r.index[id] = r.next
	r.next++
	return replayNew
}

func (r *replayShard) slot(seq uint64) *replaySlot { return &r.ring[seq%r.max] }

// drop lets the oldest slot go.
func (r *replayShard) drop() {
	if s := r.slot(r.head); !s.released {
		delete(r.index, s.id)
	}
	r.head++
}

// complete marks a reserved key processed.
func (r *replayCache) complete(key string) {
	id, sh := r.find(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if seq, ok := sh.index[id]; ok {
		sh.slot(seq).done = true
	}
}

// release forgets a reserved key whose processing failed, so that a retry is processed.
// Its slot stays in the ring until the oldest entries reach it.
func (r *replayCache) release(key string) {
	id, sh := r.find(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if seq, ok := sh.index[id]; ok {
		sh.slot(seq).released = true
		delete(sh.index, id)
	}
}

// expire drops the slots at the front whose time has come, and released ones. Slots are in
// reservation order and ttls differ by component, so one may outlive its ttl behind a longer
// one: that only remembers it longer, which is harmless (its timestamp is refused by then
// anyway).
func (r *replayShard) expire(now int64) {
	for r.head < r.next {
		if s := r.slot(r.head); !s.released && now < s.expires {
			return
		}
		r.drop()
	}
}

// len is the number of entries not yet expired. (A shard drops expired entries when a key of
// its own is reserved; with keys spread evenly, that is every few pushes.)
func (r *replayCache) len() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		sh.expire(sh.clock.Now().UnixNano())
		n += len(sh.index)
		sh.mu.Unlock()
	}
	return n
}
