/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"errors"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/authstate"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// errUnknownComponent means no WeChatComponent of that name exists, or the manager has not
// projected its keys into the keyring yet.
var errUnknownComponent = errors.New("unknown component")

// componentKeys is what the receiver needs to verify one component's pushes.
type componentKeys struct {
	component *wechatv1alpha1.WeChatComponent
	crypter   *wxcrypto.Crypter
	window    time.Duration
	stateKey  []byte // checks the state of authorization links (internal/authstate)
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
}

type cachedCrypter struct {
	appID, token, aesKey string
	crypter              *wxcrypto.Crypter
	stateKey             []byte
}

func (k *keyStore) lookup(ctx context.Context, namespace, name string) (*componentKeys, error) {
	component := &wechatv1alpha1.WeChatComponent{}
	if err := k.reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, component); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errUnknownComponent
		}
		return nil, err
	}
	// Not a copy in production (CacheOptions): read only.
	secret := &corev1.Secret{}
	if err := k.reader.Get(ctx, k.keyring, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errUnknownComponent
		}
		return nil, err
	}
	token := string(secret.Data[keyring.TokenKey(namespace, name)])
	aesKey := string(secret.Data[keyring.AESKeyKey(namespace, name)])
	if token == "" || aesKey == "" {
		return nil, errUnknownComponent
	}
	cached, err := k.crypter(namespace+"/"+name, component.Spec.AppID, token, aesKey)
	if err != nil {
		return nil, errUnknownComponent
	}
	return &componentKeys{component: component, crypter: cached.crypter, stateKey: cached.stateKey,
		window: timestampWindow(component, k.defaultWindow), keyring: secret.Data}, nil
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
	c := cachedCrypter{appID: appID, token: token, aesKey: aesKey, crypter: crypter, stateKey: authstate.Key(token, aesKey)}
	k.crypters[key] = c
	return c, nil
}
