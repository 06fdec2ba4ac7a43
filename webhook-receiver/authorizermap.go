/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// authorizerKey is what a message names its account by: the component's namespace and name
// (the URL) and the account's appid.
type authorizerKey struct{ namespace, component, appID string }

// authorizerMap is the cache's WeChatAuthorizers by authorizerKey, as the informer's events
// deliver them. Every message looks up its account's; through the cache's field index that
// was a List, which takes the index's lock and copies each match into a new list (at one
// sender the largest cost left that the SDK server does not have). The objects are the
// informer's own: read, never written.
type authorizerMap struct {
	mu     sync.RWMutex
	byKey  map[authorizerKey][]*wechatv1alpha1.WeChatAuthorizer
	keyOf  map[types.NamespacedName]authorizerKey
	synced func() bool // the event handler has seen the informer's initial list
}

func newAuthorizerMap() *authorizerMap {
	return &authorizerMap{
		byKey: map[authorizerKey][]*wechatv1alpha1.WeChatAuthorizer{},
		keyOf: map[types.NamespacedName]authorizerKey{},
	}
}

// WatchAuthorizers feeds the WeChatAuthorizers to the receiver from the events of informer
// (the WeChatAuthorizer informer of the cache behind Options.Reader): a message then finds
// its account's with a map read. Until the informer's initial list has been delivered,
// messages read the cache as before.
func (s *Server) WatchAuthorizers(informer crcache.Informer) error {
	m := newAuthorizerMap()
	reg, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    m.set,
		UpdateFunc: func(_, obj any) { m.set(obj) },
		DeleteFunc: m.remove,
	})
	if err != nil {
		return err
	}
	m.synced = reg.HasSynced
	s.authorizers.Store(m)
	return nil
}

// set records obj under its key, replacing what was recorded for the same object.
func (m *authorizerMap) set(obj any) {
	a, ok := obj.(*wechatv1alpha1.WeChatAuthorizer)
	if !ok {
		return
	}
	name := types.NamespacedName{Namespace: a.Namespace, Name: a.Name}
	key := authorizerKey{a.Namespace, a.Spec.ComponentRef.Name, a.Spec.AppID}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drop(name)
	m.keyOf[name] = key
	m.byKey[key] = append(m.byKey[key], a)
}

// remove forgets a deleted object (or the tombstone of one).
func (m *authorizerMap) remove(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	a, ok := obj.(*wechatv1alpha1.WeChatAuthorizer)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drop(types.NamespacedName{Namespace: a.Namespace, Name: a.Name})
}

// drop removes name's entry; the caller holds the lock.
func (m *authorizerMap) drop(name types.NamespacedName) {
	key, ok := m.keyOf[name]
	if !ok {
		return
	}
	delete(m.keyOf, name)
	rest := slices.DeleteFunc(m.byKey[key], func(a *wechatv1alpha1.WeChatAuthorizer) bool {
		return a.Namespace == name.Namespace && a.Name == name.Name
	})
	if len(rest) == 0 {
		delete(m.byKey, key)
		return
	}
	m.byKey[key] = rest
}

// find returns the authorizer of component for appID (PickAuthorizer's choice when there are
// several), and whether the map could answer: false until the initial list is in.
func (m *authorizerMap) find(namespace, component, appID string) (*wechatv1alpha1.WeChatAuthorizer, bool) {
	if m.synced != nil && !m.synced() {
		return nil, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return wechatv1alpha1.PickAuthorizerOf(m.byKey[authorizerKey{namespace, component, appID}], component, appID), true
}
