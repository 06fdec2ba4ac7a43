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

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// status.pendingAuthorizationCodes holds codes for the component controller to exchange:
// from WeChat's signed pushes (Push, verified) and from the redirect landing page (Redirect:
// whoever holds a valid link can open it). The list is bounded, so a flood of Redirect codes
// must never push a Push code out.

// maxPendingCodes matches the CRD's MaxItems on status.pendingAuthorizationCodes.
const maxPendingCodes = 16

// errPendingFull: the list is full of verified codes, and an unverified one may not displace them.
var errPendingFull = errors.New("status.pendingAuthorizationCodes is full of codes pushed by WeChat")

// addPendingCode returns pending with entry added: expired codes go first; then, when full,
// the oldest Redirect code; a Push code may also displace the oldest Push code, a Redirect
// code never (errPendingFull). A code already there is not added twice, but a Push of a
// code recorded from the redirect marks it verified. It reports whether anything changed.
func addPendingCode(pending []wechatv1alpha1.AuthorizationCode, entry wechatv1alpha1.AuthorizationCode, now time.Time) ([]wechatv1alpha1.AuthorizationCode, bool, error) {
	verified := entry.Source == wechatv1alpha1.AuthorizationCodeFromPush
	for i, p := range pending {
		if p.Code != entry.Code {
			continue
		}
		if !verified || p.Source == wechatv1alpha1.AuthorizationCodeFromPush {
			return pending, false, nil
		}
		out := append([]wechatv1alpha1.AuthorizationCode(nil), pending...)
		out[i].Source, out[i].ExpiresAt, out[i].AuthorizerAppID = entry.Source, entry.ExpiresAt, entry.AuthorizerAppID
		return out, true, nil
	}
	out := make([]wechatv1alpha1.AuthorizationCode, 0, len(pending)+1)
	for _, p := range pending {
		if now.Before(p.ExpiresAt.Time) {
			out = append(out, p)
		}
	}
	if len(out) >= maxPendingCodes {
		drop := oldestUnverified(out)
		if drop < 0 && !verified {
			return pending, false, errPendingFull
		}
		if drop < 0 {
			drop = 0 // all verified: the oldest goes, it expires first
		}
		out = append(out[:drop], out[drop+1:]...)
	}
	return append(out, entry), true, nil
}

// oldestUnverified is the index of the first code not pushed by WeChat, or -1.
func oldestUnverified(pending []wechatv1alpha1.AuthorizationCode) int {
	for i, p := range pending {
		if p.Source != wechatv1alpha1.AuthorizationCodeFromPush {
			return i
		}
	}
	return -1
}

// recordPendingCode adds entry to the component's status.pendingAuthorizationCodes. It
// reports whether it wrote; errPendingFull when the list has no room for it.
func (s *Server) recordPendingCode(ctx context.Context, component *wechatv1alpha1.WeChatComponent, entry wechatv1alpha1.AuthorizationCode) (bool, error) {
	var full error
	wrote, err := patchStatus(ctx, s, client.ObjectKeyFromObject(component), newComponent, func(c *wechatv1alpha1.WeChatComponent) bool {
		pending, changed, err := addPendingCode(c.Status.PendingAuthorizationCodes, entry, s.clock.Now())
		full = err
		c.Status.PendingAuthorizationCodes = pending
		return changed
	})
	if err == nil {
		err = full
	}
	return wrote, err
}

// Redirect codes a component takes in: a burst, then one every DefaultRedirectRate. A
// genuine administrator authorizes once; the limit bounds the status writes and the
// api_query_auth calls (a daily quota) that holders of a link can cause.
const (
	DefaultRedirectRate  = 10 * time.Second
	DefaultRedirectBurst = 5
	// maxLimitedComponents bounds the limiter map; components are few, this is a backstop.
	maxLimitedComponents = 10_000
)

// componentLimiter rate-limits per component.
type componentLimiter struct {
	clock clock.PassiveClock
	every time.Duration
	burst int

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

func newComponentLimiter(c clock.PassiveClock, every time.Duration, burst int) *componentLimiter {
	if every <= 0 {
		every = DefaultRedirectRate
	}
	if burst <= 0 {
		burst = DefaultRedirectBurst
	}
	return &componentLimiter{clock: c, every: every, burst: burst, limiters: map[string]*rate.Limiter{}}
}

// allow takes one token of component's bucket, if there is one.
func (l *componentLimiter) allow(component string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.limiters[component]
	if !ok {
		if len(l.limiters) >= maxLimitedComponents {
			clear(l.limiters) // buckets start full again: at worst one more burst each
		}
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.limiters[component] = lim
	}
	return lim.AllowN(l.clock.Now(), 1)
}
