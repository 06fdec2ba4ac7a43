/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// Daily quotas and clear_quota (spec.quota.resetOnExhausted).
//
// WeChat's daily quotas reset at midnight Beijing time; clear_quota resets them earlier, but
// only about 10 times a month. So a component that opted in is reset at most once per Beijing
// day: the day of status.lastQuotaResetTime, which survives restarts, and, within one process,
// the memory below (which also covers a status write that was lost).

// beijing is China Standard Time. It has had no daylight saving time since 1991, so a fixed
// zone is exact and needs no tzdata in the image.
var beijing = time.FixedZone("Asia/Shanghai", 8*60*60)

// quotaRequestRepeat is how long an authorizer's pending quota-reset request stands before
// another 45009 asks again: requests are not repeated by every authorizer of a busy platform,
// yet one that could not be honoured (WeChat busy) is asked again.
const quotaRequestRepeat = time.Minute

// beijingDayStart is midnight, Beijing time, at the start of t's Beijing day.
func beijingDayStart(t time.Time) time.Time {
	y, m, d := t.In(beijing).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, beijing)
}

// nextBeijingMidnight is when WeChat's daily quotas next reset on their own.
func nextBeijingMidnight(t time.Time) time.Time {
	return beijingDayStart(t).AddDate(0, 0, 1)
}

// quotaResetAllowed reports whether no quota reset happened in now's Beijing day. A reset
// time in the future (a clock set back) counts as today's: better one reset too few.
func quotaResetAllowed(lastReset time.Time, now time.Time) bool {
	return lastReset.IsZero() || lastReset.Before(beijingDayStart(now))
}

// lastQuotaReset is status.lastQuotaResetTime, the zero time if there is none.
func lastQuotaReset(c *wechatv1alpha1.WeChatComponent) time.Time {
	if c.Status.LastQuotaResetTime == nil {
		return time.Time{}
	}
	return c.Status.LastQuotaResetTime.Time
}

// quotaResetRequestedAt parses the component's quota-reset request annotation.
func quotaResetRequestedAt(c *wechatv1alpha1.WeChatComponent) (time.Time, bool) {
	value, ok := c.Annotations[wechatv1alpha1.AnnotationQuotaResetRequestedAt]
	if !ok {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339, value)
	return at, err == nil
}

// quotaResetRequested reports whether the component should honour a quota-reset request now:
// it opted in, the request was made today (Beijing time; yesterday's exhausted quotas have
// reset at midnight anyway), after the last reset, and no reset happened today.
func quotaResetRequested(c *wechatv1alpha1.WeChatComponent, now time.Time) bool {
	at, ok := quotaResetRequestedAt(c)
	if !ok || !c.Spec.Quota.ResetOnExhausted || !beijingDayStart(at).Equal(beijingDayStart(now)) {
		return false
	}
	last := lastQuotaReset(c)
	return (last.IsZero() || at.After(last)) && quotaResetAllowed(last, now)
}

// shouldRequestQuotaReset reports whether an authorizer that got 45009 should ask its
// component for a reset: the component opted in, has not reset today, and carries no
// request of its own from the last quotaRequestRepeat.
func shouldRequestQuotaReset(c *wechatv1alpha1.WeChatComponent, now time.Time) bool {
	if !c.Spec.Quota.ResetOnExhausted || !quotaResetAllowed(lastQuotaReset(c), now) {
		return false
	}
	if quotaResetRequested(c, now) {
		at, _ := quotaResetRequestedAt(c)
		return now.Sub(at) >= quotaRequestRepeat
	}
	return true
}

// quotaResetChanged reports a new quota reset on a component: its authorizers waiting on
// QuotaExceeded retry at once.
func quotaResetChanged(oldC, newC *wechatv1alpha1.WeChatComponent) bool {
	return !equality.Semantic.DeepEqual(oldC.Status.LastQuotaResetTime, newC.Status.LastQuotaResetTime)
}

// QuotaClearer is what resetting the daily quotas needs of WeChat.
type QuotaClearer interface {
	ClearQuota(ctx context.Context, componentToken, appID string) error
}

// quotaMemory is what one manager process knows about each component's resets beyond its
// status: the last reset (whose status write may have been lost to a conflict), and the
// Beijing day on which clear_quota must not be called again (48006, or an answer lost after
// the request may have reached WeChat). A restart forgets a 48006: it costs one more call,
// which WeChat refuses again without counting it.
type quotaMemory struct {
	mu      sync.Mutex
	resets  map[types.NamespacedName]time.Time
	blocked map[types.NamespacedName]blockedDay
}

type blockedDay struct {
	day     time.Time // the start of the Beijing day
	refused bool      // 48006, rather than an answer that may have been lost
}

// check says whether this process may call clear_quota for the component today, and if not
// because WeChat refused it (48006) today.
func (m *quotaMemory) check(key types.NamespacedName, now time.Time) (allowed, refused bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.blocked[key]; ok && b.day.Equal(beijingDayStart(now)) {
		return false, b.refused
	}
	return quotaResetAllowed(m.resets[key], now), false
}

func (m *quotaMemory) reset(key types.NamespacedName, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.resets == nil {
		m.resets = map[types.NamespacedName]time.Time{}
	}
	m.resets[key] = at
}

func (m *quotaMemory) block(key types.NamespacedName, now time.Time, refused bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.blocked == nil {
		m.blocked = map[types.NamespacedName]blockedDay{}
	}
	m.blocked[key] = blockedDay{day: beijingDayStart(now), refused: refused}
}

// restore puts a remembered reset back into status if the status write that carried it was lost.
func (m *quotaMemory) restore(key types.NamespacedName, c *wechatv1alpha1.WeChatComponent) {
	m.mu.Lock()
	at, ok := m.resets[key]
	m.mu.Unlock()
	if ok && at.Truncate(time.Second).After(lastQuotaReset(c)) {
		c.Status.LastQuotaResetTime = timePtr(at)
	}
}

// quotaResetOutcome is what resetQuota did.
type quotaResetOutcome int

const (
	quotaNotReset     quotaResetOutcome = iota // not opted in, already reset today, or no valid token: nothing called
	quotaReset                                 // clear_quota reset the quotas
	quotaResetRefused                          // clear_quota answered 48006 (today): this month's resets are used up
	quotaResetFailed                           // clear_quota failed otherwise
)

const (
	msgQuotaReset          = "daily API quotas reset with clear_quota after %s answered 45009; no other reset before midnight Beijing time (%s)"
	msgQuotaResetExhausted = "clear_quota answered 48006: this month's quota resets are used up; waiting for the quotas to reset at midnight Beijing time (%s)"
	msgQuotaResetFailed    = "clear_quota failed (%s); the quota stays used up"
	msgQuotaNoToken        = "; spec.quota.resetOnExhausted is set, but clear_quota needs a valid component_access_token and there is none"
	msgQuotaResetToday     = "; the quotas were already reset with clear_quota today (at %s), the next reset is allowed after midnight Beijing time"
)

// resetQuota calls clear_quota for the component if it opted in, holds a valid token, and
// has not reset today. cause names the API that answered 45009. On success it records
// status.lastQuotaResetTime and a Normal Event. A 48006 earlier today is answered from
// memory (quotaResetRefused with a nil error), without calling WeChat again.
func (r *WeChatComponentReconciler) resetQuota(ctx context.Context, c *wechatv1alpha1.WeChatComponent, token *issuedToken, cause string) (quotaResetOutcome, error) {
	now := r.Clock.Now()
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	clearer, ok := r.WeChat.(QuotaClearer)
	if !ok || !c.Spec.Quota.ResetOnExhausted || !quotaResetAllowed(lastQuotaReset(c), now) {
		return quotaNotReset, nil
	}
	if allowed, refused := r.quota.check(key, now); refused {
		return quotaResetRefused, nil
	} else if !allowed || !token.validAt(now) {
		return quotaNotReset, nil
	}
	logger := log.FromContext(ctx)
	midnight := nextBeijingMidnight(now).Format(time.RFC3339)
	err := clearer.ClearQuota(ctx, token.accessToken, c.Spec.AppID)
	if err == nil {
		r.quota.reset(key, now)
		c.Status.LastQuotaResetTime = timePtr(now)
		r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, wechatv1alpha1.EventQuotaReset, "ClearQuota", msgQuotaReset, cause, midnight)
		logger.Info("daily API quotas reset with clear_quota", "cause", cause)
		return quotaReset, nil
	}
	if code, _ := wxapi.Code(err); code == wxapi.CodeClearQuotaLimit {
		r.quota.block(key, now, true)
		logger.Info("clear_quota refused: this month's quota resets are used up", "cause", cause)
		return quotaResetRefused, err
	}
	var netErr *wxapi.NetworkError
	if errors.As(err, &netErr) && !netErr.NotSent {
		// The reset may have happened and been counted: do not risk a second one today.
		r.quota.block(key, now, false)
	}
	logger.Info("clear_quota failed", "cause", cause, "error", err.Error())
	return quotaResetFailed, err
}

// quotaFailure describes a 45009 of the component's own call after resetQuota did what it
// could, given the token it had for clear_quota.
func quotaFailure(c *wechatv1alpha1.WeChatComponent, token *issuedToken, quotaErr error, outcome quotaResetOutcome, resetErr error, now time.Time) *failure {
	f := classifyAPIError(quotaErr)
	switch outcome {
	case quotaResetRefused:
		return &failure{reason: wechatv1alpha1.ReasonQuotaResetExhausted, backoff: refresh.APIFailure,
			message: quotaErr.Error() + "; " + fmt.Sprintf(msgQuotaResetExhausted, nextBeijingMidnight(now).Format(time.RFC3339))}
	case quotaResetFailed:
		return &failure{reason: f.reason, backoff: f.backoff, message: f.message + "; " + fmt.Sprintf(msgQuotaResetFailed, resetErr.Error())}
	case quotaNotReset:
		switch {
		case !c.Spec.Quota.ResetOnExhausted:
		case !quotaResetAllowed(lastQuotaReset(c), now):
			return &failure{reason: f.reason, backoff: f.backoff, message: f.message +
				fmt.Sprintf(msgQuotaResetToday, lastQuotaReset(c).UTC().Format(time.RFC3339))}
		case !token.validAt(now):
			return &failure{reason: f.reason, backoff: f.backoff, message: f.message + msgQuotaNoToken}
		}
	}
	return f
}

// honourQuotaResetRequest resets the quotas when an authorizer (or a human) asked for it
// with wechatv1alpha1.AnnotationQuotaResetRequestedAt, under the same once-per-Beijing-day rule.
func (r *WeChatComponentReconciler) honourQuotaResetRequest(ctx context.Context, c *wechatv1alpha1.WeChatComponent, token *issuedToken) {
	now := r.Clock.Now()
	if !quotaResetRequested(c, now) {
		return
	}
	outcome, err := r.resetQuota(ctx, c, token, "a WeChatAuthorizer's call")
	switch {
	case outcome == quotaResetRefused && err != nil: // only when WeChat was asked, not from memory
		r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, wechatv1alpha1.EventQuotaResetFailed, "ClearQuota",
			msgQuotaResetExhausted, nextBeijingMidnight(now).Format(time.RFC3339))
	case outcome == quotaResetFailed:
		r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, wechatv1alpha1.EventQuotaResetFailed, "ClearQuota", msgQuotaResetFailed, err.Error())
	}
}

// requestQuotaReset asks the authorizer's component for a quota reset after a 45009, if the
// component opted in and can still reset today. It reports whether it asked.
func (r *WeChatAuthorizerReconciler) requestQuotaReset(ctx context.Context, run *authorizerRun) bool {
	now := r.Clock.Now()
	if run.component == nil || !shouldRequestQuotaReset(run.component, now) {
		return false
	}
	if err := r.annotateComponent(ctx, run, wechatv1alpha1.AnnotationQuotaResetRequestedAt, now); err != nil {
		log.FromContext(ctx).Info("could not ask for a quota reset", "error", err.Error())
		return false
	}
	return true
}

// quotaRequestedHint is added to an authorizer's QuotaExceeded message when a reset was asked for.
func quotaRequestedHint(f *failure, component string) *failure {
	return &failure{reason: f.reason, backoff: f.backoff,
		message: f.message + fmt.Sprintf("; asked WeChatComponent %q to reset the quota with clear_quota (spec.quota.resetOnExhausted)", component)}
}
