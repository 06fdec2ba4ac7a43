/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

const tMovedAppID = "wx00000000000000dd"

func mapAuthorizer(name, component, appID string, created time.Time) *wechatv1alpha1.WeChatAuthorizer {
	return &wechatv1alpha1.WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Namespace: tNamespace, Name: name, CreationTimestamp: metav1.NewTime(created)},
		Spec:       wechatv1alpha1.WeChatAuthorizerSpec{ComponentRef: wechatv1alpha1.LocalObjectReference{Name: component}, AppID: appID},
	}
}

// The map follows the informer's events: an update that changes the appid moves the object,
// a deletion (or its tombstone) removes it, and among several for one account the choice is
// PickAuthorizer's. Before the initial list is in, it does not answer.
func TestAuthorizerMapFollowsEvents(t *testing.T) {
	m := newAuthorizerMap()
	synced := false
	m.synced = func() bool { return synced }
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	older := mapAuthorizer("older", tComponent, tAccountAppID, t0)
	newer := mapAuthorizer("newer", tComponent, tAccountAppID, t0.Add(time.Hour))
	auto := mapAuthorizer(wechatv1alpha1.AutoCreatedAuthorizerName(tComponent, tAccountAppID), tComponent, tAccountAppID, t0.Add(2*time.Hour))
	m.set(newer)
	m.set(older)
	if _, ok := m.find(tNamespace, tComponent, tAccountAppID); ok {
		t.Fatal("the map answered before the informer's initial list was in")
	}
	synced = true
	find := func() string {
		t.Helper()
		a, ok := m.find(tNamespace, tComponent, tAccountAppID)
		if !ok {
			t.Fatal("a synced map did not answer")
		}
		if a == nil {
			return ""
		}
		return a.Name
	}
	if got := find(); got != "older" {
		t.Fatalf("of two, found %q; want the older", got)
	}
	m.set(auto)
	if got := find(); got != auto.Name {
		t.Fatalf("found %q; want the one autoCreate names, %q", got, auto.Name)
	}
	list := []wechatv1alpha1.WeChatAuthorizer{*newer, *auto, *older}
	if want := wechatv1alpha1.PickAuthorizer(list, tComponent, tAccountAppID); want.Name != find() {
		t.Fatalf("the map chose %q, PickAuthorizer %q", find(), want.Name)
	}

	moved := auto.DeepCopy()
	moved.Spec.AppID = tMovedAppID
	m.set(moved)
	if got := find(); got != "older" {
		t.Fatalf("after the auto-created one moved to another appid, found %q; want the older", got)
	}
	if a, _ := m.find(tNamespace, tComponent, tMovedAppID); a == nil || a.Name != auto.Name {
		t.Fatalf("the moved authorizer is not found under its new appid: %v", a)
	}
	m.remove(toolscache.DeletedFinalStateUnknown{Key: "x", Obj: older})
	m.remove(newer)
	if got := find(); got != "" {
		t.Fatalf("after both deletions, found %q", got)
	}
	if len(m.keyOf) != 1 || len(m.byKey) != 1 {
		t.Fatalf("the map keeps %d names and %d keys; want 1 and 1", len(m.keyOf), len(m.byKey))
	}
	if a, _ := m.find("elsewhere", tComponent, tMovedAppID); a != nil {
		t.Fatal("an authorizer was found under another namespace")
	}
}

// With WatchAuthorizers, messages find their account in the map, not the cache; until the
// initial list is in, they read the cache.
func TestTheWatchedAuthorizersAreWhatMessagesRead(t *testing.T) {
	e := newMsgEnv(t)
	e.addAccount("shop", tAccountAppID, tAccountUser, nil)
	m := newAuthorizerMap()
	synced := true
	m.synced = func() bool { return synced }
	e.server.authorizers.Store(m)
	count := func(account string) float64 {
		return counterValue(e.metrics.Messages.WithLabelValues("text", account, msgAnswered))
	}
	e.send("text", "before the event", "")
	if count(accountUnknown) != 1 {
		t.Fatal("the message found its account elsewhere than in the (empty) map")
	}
	a := &wechatv1alpha1.WeChatAuthorizer{}
	if err := e.client.Get(context.Background(), types.NamespacedName{Namespace: tNamespace, Name: "shop"}, a); err != nil {
		t.Fatal(err)
	}
	m.set(a)
	e.send("text", "after the event", "")
	if count(accountKnown) != 1 {
		t.Fatal("the message did not find its account in the map")
	}
	m.remove(a)
	synced = false
	e.send("text", "before the initial list", "")
	if count(accountKnown) != 2 {
		t.Fatal("before the initial list the message did not read the cache")
	}
}
