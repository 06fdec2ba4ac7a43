/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
)

// Whoever holds the receiver's credentials can write codes into status (a component's
// pendingAuthorizationCodes and pendingTestReplies, an authorizer's authorizationCode) as
// fast as the API server takes the writes, and each code costs WeChat calls. CodeBudget
// bounds those calls per component, whatever writes the codes: a token bucket shared by the
// three paths, and a backoff per code whose call failed for a passing reason.

const (
	// DefaultCodeBurst covers real use: a handful of accounts authorizing at once, and the
	// 全网发布 test's few codes (an exchange and a send each).
	DefaultCodeBurst = 10
	// DefaultCodeInterval is the steady rate once the burst is spent: one call per interval.
	DefaultCodeInterval = 15 * time.Second

	msgCodeExchangesThrottled = "more authorization codes than the budget of %d calls plus one per %s allows; " +
		"the rest stay pending and are exchanged from %s. Many codes at once from nowhere: check who writes this component's status"
)

var codeExchangesThrottled = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "wechat_code_exchanges_throttled_total",
	Help: "Code exchanges (api_query_auth, 全网发布 test replies) put off because the component's budget was spent.",
}, []string{"namespace", "name"})

func init() { metrics.Registry.MustRegister(codeExchangesThrottled) }

// CodeBudget is shared by the component and the authorizer reconcilers. The zero value is
// not usable: use NewCodeBudget.
type CodeBudget struct {
	clock    clock.PassiveClock
	burst    int
	interval time.Duration
	backoff  refresh.Backoff
	random   func() float64

	mu       sync.Mutex
	buckets  map[types.NamespacedName]bucket
	lastWarn map[types.NamespacedName]time.Time
	// failures are keyed by a hash of the code: the manager keeps no code it does not need.
	failures map[[sha256.Size]byte]codeFailure
}

// NewCodeBudget returns a budget of burst calls per component, refilled by one per
// interval; failed codes back off with backoff.
func NewCodeBudget(c clock.PassiveClock, burst int, interval time.Duration, backoff refresh.Backoff, random func() float64) *CodeBudget {
	return &CodeBudget{clock: c, burst: burst, interval: interval, backoff: backoff, random: random,
		buckets: map[types.NamespacedName]bucket{}, lastWarn: map[types.NamespacedName]time.Time{},
		failures: map[[sha256.Size]byte]codeFailure{}}
}

// bucket is a token bucket: tokens as of at.
type bucket struct {
	tokens float64
	at     time.Time
	seen   bool
}

type codeFailure struct {
	failures  int32
	notBefore time.Time
	forgetAt  time.Time
}

// take refills b up to now and takes one call from it if it can. It returns the bucket
// after, whether the call may go, and else how long until it may.
func (b bucket) take(now time.Time, burst int, interval time.Duration) (bucket, bool, time.Duration) {
	if !b.seen {
		b = bucket{tokens: float64(burst), at: now, seen: true}
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(float64(burst), b.tokens+float64(elapsed)/float64(interval))
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return b, true, 0
	}
	wait := time.Duration((1 - b.tokens) * float64(interval))
	return b, false, max(wait, time.Second)
}

// waitFor reports how long a code still backs off after a failed call (0: it may go).
func (cb *CodeBudget) waitFor(code string) time.Duration {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	now := cb.clock.Now()
	f, ok := cb.failures[sha256.Sum256([]byte(code))]
	if !ok || !now.Before(f.notBefore) {
		return 0
	}
	return f.notBefore.Sub(now)
}

// allow says whether a call for code may be made now for component, taking it from the
// budget if so, and otherwise how long to wait and whether the budget (not the code's own
// backoff) is why. A code backing off takes nothing.
func (cb *CodeBudget) allow(component types.NamespacedName, code string) (ok bool, wait time.Duration, overBudget bool) {
	if wait := cb.waitFor(code); wait > 0 {
		return false, wait, false
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	b, ok, wait := cb.buckets[component].take(cb.clock.Now(), cb.burst, cb.interval)
	cb.buckets[component] = b
	if !ok {
		codeExchangesThrottled.WithLabelValues(component.Namespace, component.Name).Inc()
	}
	return ok, wait, !ok
}

// failed starts or lengthens the backoff of a code whose call failed for a passing reason;
// the memory of it goes when the code expires.
func (cb *CodeBudget) failed(code string, expiresAt time.Time) time.Duration {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	now := cb.clock.Now()
	for k, f := range cb.failures {
		if !now.Before(f.forgetAt) {
			delete(cb.failures, k)
		}
	}
	key := sha256.Sum256([]byte(code))
	f := cb.failures[key]
	f.failures++
	wait := max(cb.backoff.Delay(f.failures, cb.random()), time.Second)
	f.notBefore, f.forgetAt = now.Add(wait), expiresAt
	if f.forgetAt.Before(f.notBefore) {
		f.forgetAt = f.notBefore
	}
	cb.failures[key] = f
	return wait
}

// succeeded forgets a code's failures.
func (cb *CodeBudget) succeeded(code string) {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	delete(cb.failures, sha256.Sum256([]byte(code)))
}

// warnDue reports whether a throttling Warning is due for component: at most one per
// window, the time a spent budget takes to fill up again.
func (cb *CodeBudget) warnDue(component types.NamespacedName) bool {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	now := cb.clock.Now()
	window := time.Duration(cb.burst) * cb.interval
	if last, ok := cb.lastWarn[component]; ok && now.Sub(last) < window {
		return false
	}
	cb.lastWarn[component] = now
	return true
}

// codeBudgetOf returns the shared budget, or one of the reconciler's own if none was given.
func codeBudgetOf(shared **CodeBudget, once *sync.Once, c clock.PassiveClock, scale float64, random func() float64) *CodeBudget {
	once.Do(func() {
		if *shared == nil {
			*shared = NewCodeBudget(c, DefaultCodeBurst, DefaultCodeInterval, refresh.APIFailure.Scaled(scale), random)
		}
	})
	return *shared
}

// throttledNotice says that component's code exchanges wait: a log line (without the code)
// each time, a Warning Event at most once per budget window.
func (cb *CodeBudget) throttledNotice(ctx context.Context, recorder events.EventRecorder, obj runtime.Object,
	component types.NamespacedName, wait time.Duration) {
	at := cb.clock.Now().Add(wait).UTC().Truncate(time.Second)
	log.FromContext(ctx).Info("code exchanges are over the component's budget; the code stays pending",
		"component", component.String(), "retryAt", at)
	if cb.warnDue(component) {
		recorder.Eventf(obj, nil, corev1.EventTypeWarning, wechatv1alpha1.EventCodeExchangesThrottled, "ExchangeCode",
			msgCodeExchangesThrottled, cb.burst, cb.interval, at.Format(time.RFC3339))
	}
}
