/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
)

// Bounded calls: under a persistent WeChat error no path calls WeChat more often than its
// backoff allows. A failed api_component_token call sets status.refreshAt to the end of its
// backoff, and no wake-up (a ticket push, an authorizer's refresh request, an annotation)
// calls WeChat before then, unless what failed has changed since: the spec (a new generation)
// or the credentials Secret (a new resourceVersion). A refresh requested by an authorizer
// whose call WeChat rejected (40001/42001) is honoured at once the first time, then with the
// API backoff between requested refreshes, so a token rejected again and again costs at most
// one call per backoff however many authorizers ask.

// localFailureReasons are failures found without calling WeChat: they are looked at again on
// every reconcile, since fixing them calls WeChat no more often than the fix is made.
var localFailureReasons = map[string]bool{
	wechatv1alpha1.ReasonCredentialsSecretNotFound: true,
	wechatv1alpha1.ReasonCredentialsInvalid:        true,
	wechatv1alpha1.ReasonInvalidSpec:               true,
	wechatv1alpha1.ReasonSecretConflict:            true,
	// Only an authorizer has it: spec.refreshTokenSecretRef names a missing Secret or key.
	wechatv1alpha1.ReasonRefreshTokenSecretInvalid: true,
}

// retryMemory is what one manager process knows about a component's failures beyond its
// status. A restart forgets it: the backoff in status.refreshAt still holds, only a
// credentials change is then noticed when that backoff ends.
type retryMemory struct {
	mu sync.Mutex
	// failedWith is the credentials Secret's resourceVersion at the last failed WeChat call.
	failedWith map[types.NamespacedName]string
	// requested is the run of refresh requests honoured in a row.
	requested map[types.NamespacedName]requestRun
}

// requestRun is a run of honoured refresh requests: how many, and when the last one was.
type requestRun struct {
	inARow int32
	last   time.Time
}

func (m *retryMemory) failed(key types.NamespacedName, credentialsVersion string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failedWith == nil {
		m.failedWith = map[types.NamespacedName]string{}
	}
	m.failedWith[key] = credentialsVersion
}

func (m *retryMemory) succeeded(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.failedWith, key)
}

// credentialsChanged reports a credentials Secret other than the one of the last failure.
func (m *retryMemory) credentialsChanged(key types.NamespacedName, credentialsVersion string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.failedWith[key]
	return ok && v != credentialsVersion
}

func (m *retryMemory) requestRun(key types.NamespacedName) requestRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requested[key]
}

func (m *retryMemory) honourRequest(key types.NamespacedName, inARow int32, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.requested == nil {
		m.requested = map[types.NamespacedName]requestRun{}
	}
	m.requested[key] = requestRun{inARow: inARow, last: now.Truncate(time.Second)}
}

// retryGate is what the last failure allows now.
type retryGate struct {
	// waiting: a WeChat call failed and its backoff runs until at.
	waiting bool
	at      time.Time
	// changed: the spec or the credentials changed since the failure; try again at once.
	changed bool
}

// blocks reports whether the backoff forbids a WeChat call now.
func (g retryGate) blocks(now time.Time) bool { return g.waiting && !g.changed && now.Before(g.at) }

// gate reads the backoff of the last failed WeChat call from status.
func (r *WeChatComponentReconciler) gate(c *wechatv1alpha1.WeChatComponent, credentialsVersion string) retryGate {
	s := c.Status
	if s.FailedAttempts == 0 || localFailureReasons[s.LastFailureReason] || s.RefreshAt == nil {
		return retryGate{}
	}
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	return retryGate{
		waiting: true,
		at:      s.RefreshAt.Time,
		changed: c.Generation != s.ObservedGeneration || r.retries.credentialsChanged(key, credentialsVersion),
	}
}

// refreshRequest reads the run of honoured requests from memory and decides on the
// refresh-requested-at annotation (decideRefreshRequest).
func (r *WeChatComponentReconciler) refreshRequest(c *wechatv1alpha1.WeChatComponent, token *issuedToken, now time.Time) (honour bool, inARow int32, wait time.Duration) {
	at, err := time.Parse(time.RFC3339, c.Annotations[wechatv1alpha1.AnnotationRefreshRequestedAt])
	d := decideRefreshRequest(at, err == nil, token, r.retries.requestRun(client.ObjectKeyFromObject(c)),
		refresh.APIFailure.Scaled(r.BackoffScale), now)
	return d.honour, d.inARow, d.wait
}
