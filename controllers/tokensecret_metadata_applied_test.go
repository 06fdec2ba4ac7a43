/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"math/rand/v2"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
)

// TestMetadataAppliedIsApplyUnchanged: applied, which builds nothing, answers what comparing
// apply's result with its input answers, for labels and annotations drawn from a small set
// of keys and values (so that they meet): the operator's, the template's, a previous
// template's, others'.
func TestMetadataAppliedIsApplyUnchanged(t *testing.T) {
	keys := []string{"a", "b", "c", "owner/team", "wechat-operator.dev/expires-at", "wechat-operator.dev/template-keys"}
	values := []string{"", "1", "2"}
	rnd := rand.New(rand.NewPCG(1, 2))
	someMap := func() map[string]string {
		if rnd.IntN(4) == 0 {
			return nil
		}
		m := map[string]string{}
		for _, k := range keys {
			if rnd.IntN(3) == 0 {
				m[k] = values[rnd.IntN(len(values))]
			}
		}
		return m
	}
	someKeys := func() []string {
		var out []string
		for _, k := range keys {
			if rnd.IntN(3) == 0 {
				out = append(out, k)
			}
		}
		return out
	}
	var same, changed int
	for range 20000 {
		m := metadata{labels: someMap(), annotations: someMap(), dropAnnotations: someKeys()}
		if m.labels == nil {
			m.labels = map[string]string{}
		}
		if m.annotations == nil {
			m.annotations = map[string]string{}
		}
		labels, annotations := someMap(), someMap()
		previous := templateKeys{Labels: someKeys(), Annotations: someKeys()}
		// Sometimes the Secret already holds what the operator wants, so both answers occur.
		if rnd.IntN(2) == 0 {
			labels, annotations = m.apply(labels, annotations, previous)
		}
		outL, outA := m.apply(labels, annotations, previous)
		want := equality.Semantic.DeepEqual(labels, outL) && equality.Semantic.DeepEqual(annotations, outA)
		if got := m.applied(labels, annotations, previous); got != want {
			t.Fatalf("applied = %v, apply unchanged = %v\nmetadata %+v\nlabels %v\nannotations %v\nprevious %+v", got, want, m, labels, annotations, previous)
		}
		if want {
			same++
		} else {
			changed++
		}
	}
	if same < 1000 || changed < 1000 {
		t.Fatalf("the cases met %d unchanged and %d changed: too few of one to test it", same, changed)
	}
}
