/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"container/list"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// replayCache remembers the pushes this replica already applied, for as long as their
// timestamp is inside the acceptance window. WeChat retries a push (same timestamp, nonce
// and signature) when it missed our answer; a remembered push is answered "success" without
// being applied twice, and a captured push replayed by someone else does nothing.
type replayCache struct {
	mu      sync.Mutex
	clock   clock.PassiveClock
	ttl     time.Duration
	max     int
	order   *list.List // of replayEntry, oldest first
	entries map[string]*list.Element
}

type replayEntry struct {
	key     string
	expires time.Time
}

func newReplayCache(c clock.PassiveClock, ttl time.Duration, max int) *replayCache {
	return &replayCache{clock: c, ttl: ttl, max: max, order: list.New(), entries: map[string]*list.Element{}}
}

// seen reports whether key was added and has not expired.
func (r *replayCache) seen(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire()
	_, ok := r.entries[key]
	return ok
}

// add remembers key; when full, the oldest entry goes first.
func (r *replayCache) add(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire()
	if _, ok := r.entries[key]; ok {
		return
	}
	if r.order.Len() >= r.max {
		oldest := r.order.Front()
		r.order.Remove(oldest)
		delete(r.entries, oldest.Value.(replayEntry).key)
	}
	r.entries[key] = r.order.PushBack(replayEntry{key: key, expires: r.clock.Now().Add(r.ttl)})
}

func (r *replayCache) expire() {
	now := r.clock.Now()
	for e := r.order.Front(); e != nil; e = r.order.Front() {
		entry := e.Value.(replayEntry)
		if now.Before(entry.expires) {
			return
		}
		r.order.Remove(e)
		delete(r.entries, entry.key)
	}
}
