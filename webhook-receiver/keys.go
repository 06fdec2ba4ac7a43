/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/authlink"
	"github.com/wechat-operator/wechat-operator/internal/authstate"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// errUnknownComponent means no WeChatComponent of that name exists, or the manager has not
// projected its keys into the keyring yet.
var errUnknownComponent = errors.New("unknown component")

// componentKeys is what the receiver needs to verify one component's pushes.
type componentKeys struct {
	// component is read only: from lookupShared it is the cache's own object.
	component *wechatv1alpha1.WeChatComponent
	crypter   *wxcrypto.Crypter
	window    time.Duration
	stateKey  []byte // checks the state of authorization links (internal/authstate)
	sealKey   []byte // opens the start page's pre_auth_codes (internal/authlink)
	// keyring is the keyring Secret's data as lookup read it, so that a message's forwarding
	// key comes from the same read. Read only (in production, the cache's own map).
	keyring map[string][]byte
}

// keyStore finds a component's keys. Both the component and the keyring Secret come from
// the receiver's informer cache (watched, never read per request); crypters are reused while
// the keys stay the same.
type keyStore struct {
	reader        client.Reader
	keyring       types.NamespacedName
	defaultWindow time.Duration

	mu       sync.Mutex
	crypters map[string]cachedCrypter

	// watched is the keyring as informer events last delivered it (WatchKeyring), or nil:
	// then each push Gets it from the reader.
	watched atomic.Pointer[keyringSnapshot]
}

// keyringSnapshot is the keyring Secret's data, or that it does not exist.
type keyringSnapshot struct {
	data   map[string][]byte // the cache's own map: read only
	exists bool
}

// WatchKeyring feeds the keyring Secret to the receiver from the events of informer (the
// Secret informer of the cache behind Options.Reader), so that pushes read its data without
// a cache Get: in a cache restricted to one namespace, each Get costs a REST mapping, the
// largest single cost of a message. Until the first event, pushes Get it as before.
func (s *Server) WatchKeyring(informer crcache.Informer) error {
	_, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.keys.observe(obj, true) },
		UpdateFunc: func(_, obj any) { s.keys.observe(obj, true) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			s.keys.observe(obj, false)
		},
	})
	return err
}

// observe records an event of a Secret, if it is the keyring.
func (k *keyStore) observe(obj any, exists bool) {
	secret, ok := obj.(*corev1.Secret)
	if !ok || secret.Namespace != k.keyring.Namespace || secret.Name != k.keyring.Name {
		return
	}
	snap := &keyringSnapshot{exists: exists}
	if exists {
		snap.data = secret.Data
	}
	k.watched.Store(snap)
}

// keyringData is the keyring's data: the watched snapshot, else a Get. Read only.
func (k *keyStore) keyringData(ctx context.Context) (map[string][]byte, error) {
	if snap := k.watched.Load(); snap != nil {
		if !snap.exists {
			return nil, errUnknownComponent
		}
		return snap.data, nil
	}
	// Not a copy in production (CacheOptions).
	secret := &corev1.Secret{}
	if err := k.reader.Get(ctx, k.keyring, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errUnknownComponent
		}
		return nil, err
	}
	return secret.Data, nil
}

type cachedCrypter struct {
	appID, token, aesKey string
	crypter              *wxcrypto.Crypter
	stateKey             []byte
	sealKey              []byte
}

// lookup is a component's keys, with a deep copy of the component that the caller may modify.
func (k *keyStore) lookup(ctx context.Context, namespace, name string) (*componentKeys, error) {
	return k.lookupComponent(ctx, namespace, name)
}

// lookupShared is lookup for a caller that only reads the component (the message path): the
// component is the cache's own object, not a deep copy of it, and must not be modified.
// The deep copy of the whole object (status with its pending codes, managed fields) was
// about 4 % of the receiver's CPU per message with one sender.
func (k *keyStore) lookupShared(ctx context.Context, namespace, name string) (*componentKeys, error) {
	return k.lookupComponent(ctx, namespace, name, client.UnsafeDisableDeepCopy)
}

func (k *keyStore) lookupComponent(ctx context.Context, namespace, name string, opts ...client.GetOption) (*componentKeys, error) {
	component := &wechatv1alpha1.WeChatComponent{}
	if err := k.reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, component, opts...); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errUnknownComponent
		}
		return nil, err
	}
	ring, err := k.keyringData(ctx)
	if err != nil {
		return nil, err
	}
	token := string(ring[keyring.TokenKey(namespace, name)])
	aesKey := string(ring[keyring.AESKeyKey(namespace, name)])
	if token == "" || aesKey == "" {
		return nil, errUnknownComponent
	}
	cached, err := k.crypter(namespace+"/"+name, component.Spec.AppID, token, aesKey)
	if err != nil {
		return nil, errUnknownComponent
	}
	return &componentKeys{component: component, crypter: cached.crypter, stateKey: cached.stateKey, sealKey: cached.sealKey,
		window: timestampWindow(component, k.defaultWindow), keyring: ring}, nil
}

// timestampWindow is the component's window, else the default; never over MaxTimestampWindow
// (the CRD refuses more, but an object stored before that rule may say more).
func timestampWindow(component *wechatv1alpha1.WeChatComponent, defaultWindow time.Duration) time.Duration {
	window := defaultWindow
	if w, err := time.ParseDuration(component.Spec.Receiver.TimestampWindow); err == nil && w > 0 {
		window = w
	}
	return min(window, MaxTimestampWindow)
}

func (k *keyStore) crypter(key, appID, token, aesKey string) (cachedCrypter, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c, ok := k.crypters[key]; ok && c.appID == appID && c.token == token && c.aesKey == aesKey {
		return c, nil
	}
	crypter, err := wxcrypto.NewCrypter(token, aesKey, appID)
	if err != nil {
		return cachedCrypter{}, err
	}
	if k.crypters == nil {
		k.crypters = map[string]cachedCrypter{}
	}
	c := cachedCrypter{appID: appID, token: token, aesKey: aesKey, crypter: crypter, stateKey: authstate.Key(token, aesKey),
		sealKey: authlink.SealKey(token, aesKey)}
	k.crypters[key] = c
	return c, nil
}
