/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// versionReader serves one fixed copy of a ConfigMap and counts reads.
type versionReader struct {
	version string
	reads   int
}

func (r *versionReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	r.reads++
	cm := obj.(*corev1.ConfigMap)
	cm.ObjectMeta = metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, ResourceVersion: r.version}
	return nil
}

func (r *versionReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return nil
}

func TestWrittenVersionsReadsTheAPIServerOnlyWhileTheCacheLags(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "a"}
	cached := &versionReader{version: "10"}
	api := &versionReader{version: "11"}
	var w writtenVersions
	get := func() string {
		cm := &corev1.ConfigMap{}
		if err := w.get(context.Background(), cached, api, key, cm); err != nil {
			t.Fatal(err)
		}
		return cm.ResourceVersion
	}

	if got := get(); got != "10" || api.reads != 0 {
		t.Fatalf("nothing written: read version %s with %d API reads, want the cached 10 and none", got, api.reads)
	}
	w.wrote(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", ResourceVersion: "11"}})
	if got := get(); got != "11" || api.reads != 1 {
		t.Fatalf("cache behind our write: read version %s with %d API reads, want 11 from the API server", got, api.reads)
	}
	cached.version = "11"
	if got := get(); got != "11" || api.reads != 1 {
		t.Fatalf("cache caught up: read version %s with %d API reads, want the cached 11 and no new read", got, api.reads)
	}
	if got := get(); got != "11" || api.reads != 1 {
		t.Fatalf("afterwards: read version %s with %d API reads, want the cache only", got, api.reads)
	}

	// Someone else wrote after us: one API read, then the cache is trusted once it has that.
	w.wrote(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", ResourceVersion: "12"}})
	cached.version, api.version = "11", "13"
	if got := get(); got != "13" || api.reads != 2 {
		t.Fatalf("newer write elsewhere: read version %s with %d API reads, want 13", got, api.reads)
	}
	cached.version = "13"
	if got := get(); got != "13" || api.reads != 2 {
		t.Fatalf("cache has the newest: read version %s with %d API reads, want no new read", got, api.reads)
	}

	w.wrote(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", ResourceVersion: "14"}})
	w.forget(key)
	if get(); api.reads != 2 {
		t.Fatalf("forgotten object: %d API reads, want none", api.reads)
	}
}

// sharedReader serves its object as a cache does with UnsafeDisableDeepCopy: a shallow copy
// whose maps are the stored object's.
type sharedReader struct{ stored *corev1.ConfigMap }

func (r sharedReader) Get(_ context.Context, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	*obj.(*corev1.ConfigMap) = *r.stored
	return nil
}

func (sharedReader) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

// jsonReader decodes its JSON into the object it is given, as the API client does.
type jsonReader struct{ body string }

func (r jsonReader) Get(_ context.Context, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	return json.Unmarshal([]byte(r.body), obj)
}

func (jsonReader) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

func TestWrittenVersionsAPIReadLeavesTheCachedObject(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "a"}
	stored := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", ResourceVersion: "10",
			Labels: map[string]string{"owner": "cached", "dropped": "yes"}},
		Data: map[string]string{"k": "cached"},
	}
	api := jsonReader{body: `{"metadata":{"name":"a","namespace":"ns","resourceVersion":"11","labels":{"owner":"live"}},"data":{"k":"live"}}`}
	var w writtenVersions
	w.wrote(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", ResourceVersion: "11"}})

	got := &corev1.ConfigMap{}
	if err := w.get(context.Background(), sharedReader{stored}, api, key, got, client.UnsafeDisableDeepCopy); err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != "11" || got.Labels["owner"] != "live" || got.Data["k"] != "live" {
		t.Fatalf("read %s labels %v data %v, want the API server's version 11", got.ResourceVersion, got.Labels, got.Data)
	}
	if _, ok := got.Labels["dropped"]; ok {
		t.Errorf("the API server's object has no label dropped, the read has it: %v", got.Labels)
	}
	if stored.Labels["owner"] != "cached" || len(stored.Labels) != 2 || stored.Data["k"] != "cached" {
		t.Errorf("the API read changed the cache's object: labels %v data %v", stored.Labels, stored.Data)
	}
}
