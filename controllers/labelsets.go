/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"hash/maphash"
	"maps"
	"sync"
)

// maxLabelSets bounds the distinct label sets a labelSets holds. Past it the table starts
// again: objects keep the maps they hold, and only sharing among the sets seen next is lost.
const maxLabelSets = 4096

// labelSets shares one labels map among the cached objects that carry equal labels. A
// platform's authorizers carry a few label sets between them (the managed-by, component and
// shard labels autoCreate, discovery and the sharder write, a team's own), and each decoded
// object holds a map of its own: ~330 bytes, a third of what a sharder's view of an
// authorizer holds. Sharing is safe because no cached object is changed in place: a read
// from the cache copies (DeepCopy makes maps of its own), and the reads that do not
// (UnsafeDisableDeepCopy) only read.
type labelSets struct {
	mu   sync.Mutex
	seed maphash.Seed
	sets map[uint64][]map[string]string
	n    int
}

func newLabelSets() *labelSets {
	return &labelSets{seed: maphash.MakeSeed(), sets: map[uint64][]map[string]string{}}
}

// share returns the held map equal to labels, or holds and returns a copy made by
// internLabels: a decoded object's labels are copied only when no equal set is held.
func (s *labelSets) share(labels map[string]string) map[string]string {
	if len(labels) == 0 {
		return labels
	}
	h := s.hash(labels)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, held := range s.sets[h] {
		if maps.Equal(held, labels) {
			return held
		}
	}
	if s.n == maxLabelSets {
		clear(s.sets)
		s.n = 0
	}
	held := internLabels(labels)
	s.sets[h] = append(s.sets[h], held)
	s.n++
	return held
}

// hash is the same for equal maps whatever their iteration order: a sum of the pairs' hashes.
func (s *labelSets) hash(labels map[string]string) uint64 {
	var sum uint64
	for k, v := range labels {
		sum += maphash.Comparable(s.seed, [2]string{k, v})
	}
	return sum
}

// sharedAuthorizerLabels shares the labels of every manager's cached authorizers.
var sharedAuthorizerLabels = newLabelSets()
