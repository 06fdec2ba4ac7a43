/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// TestKeyringWriteLeavesTheCachedObject: the keyring is read as the cache's own object (no
// copy per reconcile); a write changes a copy, and an entry that is already right writes nothing.
func TestKeyringWriteLeavesTheCachedObject(t *testing.T) {
	cached := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "operator", Name: "keyring", ResourceVersion: "7"},
		Data:       map[string][]byte{"kept": []byte("k"), "dropped": []byte("d")},
	}
	want := maps.Clone(cached.Data)
	var updates []*corev1.Secret
	gets := 0
	c := interceptor.NewClient(fake.NewClientBuilder().Build(), interceptor.Funcs{
		Get: func(_ context.Context, _ client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets++
			if !slices.Contains(opts, client.GetOption(client.UnsafeDisableDeepCopy)) {
				t.Errorf("the keyring was read as a copy")
			}
			*obj.(*corev1.Secret) = *cached // what the cache hands out without a copy
			return nil
		},
		Update: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.UpdateOption) error {
			updates = append(updates, obj.(*corev1.Secret))
			return nil
		},
	})
	k := &keyringWriter{client: c, namespace: "operator", name: "keyring"}
	ctx := context.Background()
	for _, step := range []struct {
		entry string
		value []byte
	}{{"added", []byte("a")}, {"dropped", nil}} {
		if err := k.setEntry(ctx, step.entry, step.value); err != nil {
			t.Fatal(err)
		}
	}
	if !maps.EqualFunc(cached.Data, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("the cached keyring was changed: %q", cached.Data)
	}
	if len(updates) != 2 || string(updates[0].Data["added"]) != "a" || updates[0].ResourceVersion != "7" {
		t.Fatalf("updates %v; want the entry added on a copy carrying the resourceVersion read", updates)
	}
	if _, ok := updates[1].Data["dropped"]; ok {
		t.Errorf("the second update kept the dropped entry")
	}
	for _, right := range []struct {
		entry string
		value []byte
	}{{"kept", []byte("k")}, {"never-there", nil}} {
		gets = 0
		if err := k.setEntry(ctx, right.entry, right.value); err != nil {
			t.Fatal(err)
		}
		if len(updates) != 2 {
			t.Errorf("%s: an entry already right was written again", right.entry)
		}
		if gets != 1 {
			t.Errorf("%s: %d reads of the keyring, want 1: an entry already right is seen without the copy an update makes", right.entry, gets)
		}
	}
}

// TestAnnotateComponentLeavesTheCachedObject: an authorizer reconcile reads its component as
// the cache's own object; a request annotation is written from a copy.
func TestAnnotateComponentLeavesTheCachedObject(t *testing.T) {
	cached := &wechatv1alpha1.WeChatComponent{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "platform",
		ResourceVersion: "3", Annotations: map[string]string{"other-tool": "x"}}}
	var patched []string
	s := runtime.NewScheme()
	if err := wechatv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c := interceptor.NewClient(fake.NewClientBuilder().WithScheme(s).WithObjects(cached.DeepCopy()).Build(), interceptor.Funcs{
		Patch: func(ctx context.Context, cl client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			data, err := patch.Data(obj)
			if err != nil {
				return err
			}
			patched = append(patched, string(data))
			return cl.Patch(ctx, obj, patch, opts...)
		},
	})
	r := &WeChatAuthorizerReconciler{Client: c}
	run := &authorizerRun{component: cached}
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	if err := r.annotateComponent(context.Background(), run, wechatv1alpha1.AnnotationRefreshRequestedAt, at); err != nil {
		t.Fatal(err)
	}
	if len(cached.Annotations) != 1 || cached.ResourceVersion != "3" {
		t.Errorf("the cached component was changed: %v, resourceVersion %s", cached.Annotations, cached.ResourceVersion)
	}
	want := `{"metadata":{"annotations":{"` + wechatv1alpha1.AnnotationRefreshRequestedAt + `":"2026-12-07T08:00:00Z"}}}`
	if len(patched) != 1 || patched[0] != want {
		t.Errorf("patches %q, want %s", patched, want)
	}
	if run.component == cached || run.component.Annotations[wechatv1alpha1.AnnotationRefreshRequestedAt] == "" {
		t.Errorf("the run's component is not the written copy")
	}
}
