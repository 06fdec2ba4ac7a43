/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"reflect"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writtenVersions remembers the resourceVersion of each object's last status write until
// the cache has caught up with it. A reconcile woken by our own Secret writes may run before
// the watch has delivered our status write; it must not act on the status from before it (a
// pending authorization code would be exchanged twice). Reading every object from the API
// server would avoid that too, but costs one request per reconcile: at 10,000 authorizers a
// restart would queue 10,000 reads behind the client's rate limit. So objects are read from
// the cache, and from the API server only while a write of ours may be missing from it.
type writtenVersions struct {
	mu       sync.Mutex
	versions map[types.NamespacedName]string
}

// wrote records obj's resourceVersion after a successful write.
func (w *writtenVersions) wrote(obj client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.versions == nil {
		w.versions = map[types.NamespacedName]string{}
	}
	w.versions[client.ObjectKeyFromObject(obj)] = obj.GetResourceVersion()
}

// forget drops what is known of key (the object is gone).
func (w *writtenVersions) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.versions, key)
}

// get reads key into obj from cached, or from uncached when the cached copy is not the
// version we last wrote (it may be older; if it is newer, one extra read settles it). opts
// are the cached read's.
func (w *writtenVersions) get(ctx context.Context, cached, uncached client.Reader, key types.NamespacedName, obj client.Object, opts ...client.GetOption) error {
	if err := cached.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	w.mu.Lock()
	want, pending := w.versions[key]
	if pending && obj.GetResourceVersion() == want {
		delete(w.versions, key)
		pending = false
	}
	w.mu.Unlock()
	if !pending {
		return nil
	}
	// A decoder fills the maps and slices it finds and keeps what the JSON leaves out, and
	// with UnsafeDisableDeepCopy those are the cache's: read into a zero object.
	reflect.ValueOf(obj).Elem().SetZero()
	if err := uncached.Get(ctx, key, obj); err != nil {
		return err
	}
	// Wait for the cache to reach what the API server has now.
	w.wrote(obj)
	return nil
}

// fetch reads key into obj as get does, and reports whether the object is live: false when
// it is gone (what is known of it is forgotten) or being deleted. Either way the caller's
// only work left is the keyring's: the Secrets go with their owner references.
func (w *writtenVersions) fetch(ctx context.Context, cached, uncached client.Reader, key types.NamespacedName, obj client.Object, opts ...client.GetOption) (live bool, err error) {
	if err := w.get(ctx, cached, uncached, key, obj, opts...); err != nil {
		if apierrors.IsNotFound(err) {
			w.forget(key)
			return false, nil
		}
		return false, err
	}
	return obj.GetDeletionTimestamp().IsZero(), nil
}
