/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// TestCacheOptionsOneSecretEntry: the Secret cache is configured by one entry. Two entries for
// the kind (two &corev1.Secret{} keys) left it to map order whether the operator namespace,
// where the keyring is, was cached: a keyring write then failed now and then with "unknown
// namespace for the cache".
func TestCacheOptionsOneSecretEntry(t *testing.T) {
	for name, watch := range map[string][]string{"cluster-wide": nil, "watched namespaces": {"apps", "more"}} {
		t.Run(name, func(t *testing.T) {
			o := CacheOptions("operator", watch)
			if len(o.ByObject) != 1 {
				t.Fatalf("ByObject has %d entries, want 1", len(o.ByObject))
			}
			for obj, by := range o.ByObject {
				if _, ok := obj.(*corev1.Secret); !ok {
					t.Fatalf("ByObject entry for %T, want *corev1.Secret", obj)
				}
				if by.Label == nil || by.Label.String() != "app.kubernetes.io/managed-by=wechat-operator" {
					t.Errorf("Secret label selector = %v", by.Label)
				}
				if watch == nil {
					continue
				}
				for _, ns := range append([]string{"operator"}, watch...) {
					if _, ok := by.Namespaces[ns]; !ok {
						t.Errorf("Secrets of namespace %q are not cached", ns)
					}
				}
			}
		})
	}
}

// TestCacheOptionsCompacts: the manager's cache applies compactCached to what it holds.
func TestCacheOptionsCompacts(t *testing.T) {
	o := CacheOptions("", nil)
	a, b := cachedTokenSecret(1), cachedTokenSecret(2)
	for _, s := range []*corev1.Secret{a, b} {
		if _, err := o.DefaultTransform(s); err != nil {
			t.Fatal(err)
		}
	}
	if a.ManagedFields != nil || !sameString(a.Namespace, b.Namespace) {
		t.Error("the cache's transform neither strips managedFields nor shares strings")
	}
}

// TestNotInInitialList: a secondary watch drops only the initial list's creates; a Secret or
// component created, changed or deleted later still wakes its owner.
func TestNotInInitialList(t *testing.T) {
	s := &corev1.Secret{}
	for name, c := range map[string]struct {
		got, want bool
	}{
		"initial list's create": {notInInitialList.Create(event.CreateEvent{Object: s, IsInInitialList: true}), false},
		"later create":          {notInInitialList.Create(event.CreateEvent{Object: s}), true},
		"update":                {notInInitialList.Update(event.UpdateEvent{ObjectOld: s, ObjectNew: s}), true},
		"delete":                {notInInitialList.Delete(event.DeleteEvent{Object: s}), true},
		"generic":               {notInInitialList.Generic(event.GenericEvent{Object: s}), true},
	} {
		if c.got != c.want {
			t.Errorf("%s: let through %v, want %v", name, c.got, c.want)
		}
	}
}
