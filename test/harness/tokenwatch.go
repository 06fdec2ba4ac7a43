/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// TokenValue is one value an app-facing token Secret held. It carries a hash of the token,
// never the token.
type TokenValue struct {
	Secret    string
	Kind      TokenKind
	Hash      string
	ExpiresAt time.Time
	// SeenAt is when the watch saw the value appear; ReplacedAt when it saw it replaced or
	// removed (zero while the Secret still holds it).
	SeenAt, ReplacedAt time.Time
	// Verified is set once the simulator was asked about the value; Answer is what it said
	// (VerifyErr if it could not be asked).
	Verified  bool
	Answer    WeChatAnswer
	VerifyErr string
}

// ExpiredFor is how long the Secret held this value past its expires_at, up to now.
func (v TokenValue) ExpiredFor(now time.Time) time.Duration {
	end := v.ReplacedAt
	if end.IsZero() {
		end = now
	}
	start := v.ExpiresAt
	if v.SeenAt.After(start) {
		start = v.SeenAt
	}
	return max(end.Sub(start), 0)
}

type trackedSecret struct {
	kind           TokenKind
	componentAppID string
	values         []*TokenValue
	token          string // of the last value, to notice a change; never printed
}

// TokenWatch watches the app-facing token Secrets of one namespace for as long as a
// scenario runs, as an app mounting them would see them: every value, when it appeared
// and when it was replaced, how long any of them was served past its expires_at, and
// whether the simulator accepted it the way an app uses it.
type TokenWatch struct {
	namespace, wechatURL string
	informer             cache.SharedIndexInformer
	cancel               context.CancelFunc
	verifyCtx            context.Context
	verifies             sync.WaitGroup

	mu      sync.Mutex
	tracked map[string]*trackedSecret
}

// WatchTokens starts watching the operator-managed Secrets of namespace with the given
// (admin) config; wechatURL is the simulator the values are verified against.
func WatchTokens(ctx context.Context, cfg *rest.Config, namespace, wechatURL string) (*TokenWatch, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = wechatv1alpha1.LabelManagedBy + "=" + wechatv1alpha1.ManagedByValue
		}))
	ctx, cancel := context.WithCancel(ctx)
	w := &TokenWatch{namespace: namespace, wechatURL: wechatURL, cancel: cancel, verifyCtx: ctx,
		tracked: map[string]*trackedSecret{}}
	w.informer = factory.Core().V1().Secrets().Informer()
	if _, err := w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.observe(obj, false) },
		UpdateFunc: func(_, obj any) { w.observe(obj, false) },
		DeleteFunc: func(obj any) { w.observe(obj, true) },
	}); err != nil {
		cancel()
		return nil, err
	}
	go w.informer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced) {
		cancel()
		return nil, fmt.Errorf("the Secret watch of namespace %s did not sync", namespace)
	}
	return w, nil
}

// Track follows the token Secret name (of the given kind; componentAppID is needed to use a
// component token). Call it before the Secret is written, or at any time after.
func (w *TokenWatch) Track(name string, kind TokenKind, componentAppID string) {
	w.mu.Lock()
	if _, ok := w.tracked[name]; !ok {
		w.tracked[name] = &trackedSecret{kind: kind, componentAppID: componentAppID}
	}
	w.mu.Unlock()
	if obj, ok, _ := w.informer.GetStore().GetByKey(w.namespace + "/" + name); ok {
		w.observe(obj, false)
	}
}

func (w *TokenWatch) observe(obj any, deleted bool) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = tomb.Obj, true
	}
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.tracked[s.Name]
	if t == nil {
		return
	}
	token := string(s.Data[wechatv1alpha1.SecretKeyAccessToken])
	if deleted {
		token = ""
	}
	if token == t.token {
		return
	}
	if n := len(t.values); n > 0 && t.values[n-1].ReplacedAt.IsZero() {
		t.values[n-1].ReplacedAt = now
	}
	t.token = token
	if token == "" {
		return
	}
	v := &TokenValue{Secret: s.Name, Kind: t.kind, Hash: TokenHash(token), SeenAt: now}
	if at, err := time.Parse(time.RFC3339, string(s.Data[wechatv1alpha1.SecretKeyExpiresAt])); err == nil {
		v.ExpiresAt = at
	} else {
		v.ExpiresAt = now // an unreadable expiry counts as expired
		v.VerifyErr = "expires_at is not RFC 3339"
	}
	t.values = append(t.values, v)
	w.verifies.Add(1)
	go w.verify(v, t.kind, t.componentAppID, token)
}

// verify asks the simulator about a value right after it appeared.
func (w *TokenWatch) verify(v *TokenValue, kind TokenKind, componentAppID, token string) {
	defer w.verifies.Done()
	ctx, cancel := context.WithTimeout(w.verifyCtx, 15*time.Second)
	defer cancel()
	answer, err := VerifyToken(ctx, w.wechatURL, kind, componentAppID, token)
	w.mu.Lock()
	defer w.mu.Unlock()
	v.Verified, v.Answer = true, answer
	if err != nil {
		v.VerifyErr = err.Error()
	}
}

// Values returns copies of every value the Secret held, oldest first.
func (w *TokenWatch) Values(name string) []TokenValue {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.tracked[name]
	if t == nil {
		return nil
	}
	out := make([]TokenValue, 0, len(t.values))
	for _, v := range t.values {
		out = append(out, *v)
	}
	return out
}

// Current is the value the Secret holds now, if any.
func (w *TokenWatch) Current(name string) (TokenValue, bool) {
	values := w.Values(name)
	if n := len(values); n > 0 && values[n-1].ReplacedAt.IsZero() {
		return values[n-1], true
	}
	return TokenValue{}, false
}

// ValuesSince returns the values that appeared at or after t.
func (w *TokenWatch) ValuesSince(name string, t time.Time) []TokenValue {
	var out []TokenValue
	for _, v := range w.Values(name) {
		if !v.SeenAt.Before(t) {
			out = append(out, v)
		}
	}
	return out
}

// ExpiredServed is, per tracked Secret, how long it held a token past its expires_at.
func (w *TokenWatch) ExpiredServed() map[string]time.Duration {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]time.Duration{}
	for name, t := range w.tracked {
		var d time.Duration
		for _, v := range t.values {
			d += v.ExpiredFor(now)
		}
		out[name] = d
	}
	return out
}

// Problems lists every value the simulator rejected (or that could not be checked, or whose
// expiry could not be read), and the values not checked yet.
func (w *TokenWatch) Problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	names := make([]string, 0, len(w.tracked))
	for name := range w.tracked {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range w.tracked[name].values {
			switch {
			case v.VerifyErr != "":
				out = append(out, fmt.Sprintf("%s value %s: %s", name, v.Hash, v.VerifyErr))
			case !v.Verified:
				out = append(out, fmt.Sprintf("%s value %s: not verified yet", name, v.Hash))
			case !v.Answer.OK():
				out = append(out, fmt.Sprintf("%s value %s: the simulator rejected it: %s", name, v.Hash, v.Answer))
			}
		}
	}
	return out
}

// Stop ends the watch (and waits for verifications in flight).
func (w *TokenWatch) Stop() {
	w.cancel()
	w.verifies.Wait()
}
