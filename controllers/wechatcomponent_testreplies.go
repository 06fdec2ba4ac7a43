/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

// The last case of WeChat's 全网发布 test: a test account sent QUERY_AUTH_CODE:<code> to the
// message URL, and the receiver, which holds no access token, recorded the code and the
// sender in status.pendingTestReplies. Here the component controller exchanges the code with
// api_query_auth and sends "<code>_from_api" to the sender as a customer-service message with
// the authorizer_access_token it got. (The test accounts and the rule are in the receiver's
// testresponder.go.)

const (
	testReplySuffix    = "_from_api"
	msgTestReplySent   = "sent the 全网发布 test's customer-service reply for account %s"
	msgTestReplyFailed = "could not answer the 全网发布 test's QUERY_AUTH_CODE for account %s: %s"
	msgTestReplyExpiry = "the 全网发布 test's QUERY_AUTH_CODE for account %s expired before it could be answered"
)

// TestReplySender is what answering the 全网发布 test needs of WeChat.
type TestReplySender interface {
	QueryAuth(ctx context.Context, componentToken, appID, authCode string) (wxapi.AuthorizationInfo, error)
	SendCustomText(ctx context.Context, authorizerToken, toUser, content string) error
}

// testReplyMemory remembers, per code, the authorizer token an exchange returned (a code
// works once: a send that failed is retried with the token, not a second exchange) and
// whether the reply was sent (so a lost status write never sends it twice).
type testReplyMemory struct {
	mu      sync.Mutex
	entries map[string]testReplyEntry
}

type testReplyEntry struct {
	token    *issuedToken
	sent     bool
	forgetAt time.Time
}

func (m *testReplyMemory) get(code string, now time.Time) testReplyEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.entries {
		if !now.Before(e.forgetAt) {
			delete(m.entries, k)
		}
	}
	return m.entries[code]
}

func (m *testReplyMemory) put(code string, e testReplyEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = map[string]testReplyEntry{}
	}
	m.entries[code] = e
}

// answerTestReplies sends the customer-service replies in status.pendingTestReplies and
// removes them from status. It returns how soon to come back for replies that failed for a
// passing reason (they back off) or wait for the component's budget (0: none).
func (r *WeChatComponentReconciler) answerTestReplies(ctx context.Context, c *wechatv1alpha1.WeChatComponent, componentToken string) time.Duration {
	sender, ok := r.WeChat.(TestReplySender)
	if !ok || len(c.Status.PendingTestReplies) == 0 {
		return 0
	}
	logger := log.FromContext(ctx)
	now := r.Clock.Now()
	key := client.ObjectKeyFromObject(c)
	var keep []wechatv1alpha1.TestReply
	var retry, throttled time.Duration
	// wait keeps p for later unless the budget allows a call for what (the code, or its reply).
	wait := func(p wechatv1alpha1.TestReply, what string) bool {
		allowed, after, overBudget := r.budget().allow(key, what)
		if allowed {
			return false
		}
		if overBudget {
			throttled = firstRetry(throttled, after)
		}
		retry = firstRetry(retry, after)
		keep = append(keep, p)
		return true
	}
	backOff := func(p wechatv1alpha1.TestReply, what string) {
		retry = firstRetry(retry, r.budget().failed(what, p.ExpiresAt.Time))
		keep = append(keep, p)
	}
	for _, p := range c.Status.PendingTestReplies {
		remembered := r.testReplies.get(p.Code, now)
		if remembered.sent {
			continue // sent by an earlier reconcile whose status write was lost
		}
		if !now.Before(p.ExpiresAt.Time) {
			r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, wechatv1alpha1.EventTestReplyFailed, "AnswerTest", msgTestReplyExpiry, p.AuthorizerAppID)
			continue
		}
		token := remembered.token
		if !token.validAt(now) {
			if wait(p, p.Code) {
				continue
			}
			var err error
			if token, err = r.testReplyToken(ctx, sender, c, p, componentToken, now); err != nil {
				if passing(err) {
					logger.Info("the 全网发布 test reply waits: getting the authorizer token failed", "authorizerAppID", p.AuthorizerAppID, "error", err.Error())
					backOff(p, p.Code)
					continue
				}
				r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, wechatv1alpha1.EventTestReplyFailed, "AnswerTest", msgTestReplyFailed, p.AuthorizerAppID, err.Error())
				continue
			}
			r.testReplies.put(p.Code, testReplyEntry{token: token, forgetAt: p.ExpiresAt.Time})
		}
		reply := p.Code + testReplySuffix
		if wait(p, reply) {
			continue
		}
		if err := sender.SendCustomText(ctx, token.accessToken, p.ToUser, reply); err != nil {
			if sendRetryable(err) {
				logger.Info("the 全网发布 test reply waits: sending failed", "authorizerAppID", p.AuthorizerAppID, "error", err.Error())
				backOff(p, reply)
				continue
			}
			r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, wechatv1alpha1.EventTestReplyFailed, "AnswerTest", msgTestReplyFailed, p.AuthorizerAppID, err.Error())
			continue
		}
		r.testReplies.put(p.Code, testReplyEntry{sent: true, forgetAt: p.ExpiresAt.Time})
		r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, wechatv1alpha1.EventTestReplySent, "AnswerTest", msgTestReplySent, p.AuthorizerAppID)
		logger.Info("answered the 全网发布 test's QUERY_AUTH_CODE", "authorizerAppID", p.AuthorizerAppID)
	}
	c.Status.PendingTestReplies = keep
	if throttled > 0 {
		r.budget().throttledNotice(ctx, r.Recorder, c, key, throttled)
	}
	return retry
}

// testReplyToken exchanges the reply's code for the account's authorizer token. Should the
// code be used already (the account's WeChatAuthorizer controller exchanged the same code
// from the authorized push), the token that exchange stored is used instead.
func (r *WeChatComponentReconciler) testReplyToken(ctx context.Context, sender TestReplySender, c *wechatv1alpha1.WeChatComponent,
	p wechatv1alpha1.TestReply, componentToken string, now time.Time) (*issuedToken, error) {
	authorizers := &wechatv1alpha1.WeChatAuthorizerList{}
	if err := r.List(ctx, authorizers, client.InNamespace(c.Namespace)); err != nil {
		return nil, err
	}
	info, err := sender.QueryAuth(ctx, componentToken, c.Spec.AppID, p.Code)
	if wxapi.IsAuthCodeInvalid(err) {
		// Only a test account's stored token: whoever holds the receiver's credentials can
		// write any entry, recipient and text included, into status.pendingTestReplies.
		if a := wechatv1alpha1.PickAuthorizer(authorizers.Items, c.Name, p.AuthorizerAppID); a != nil && receiver.IsReleaseTestAccount(a.Spec.AppID, "") {
			secret, serr := getManagedSecret(ctx, r.APIReader, a.Namespace, stateSecretName(a)) // the cache holds no tokens of it
			if st := readState(secret, a.Spec.AppID); serr == nil && st.token.validAt(now) {
				return st.token, nil
			}
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	token := newIssuedToken(info.AccessToken, info.AuthorizerAppID, now, info.ExpiresIn)
	// Keep the refresh token the exchange returned if the account has a WeChatAuthorizer:
	// its code is spent now, and its controller would otherwise have to recover it.
	if wechatv1alpha1.PickAuthorizer(authorizers.Items, c.Name, info.AuthorizerAppID) != nil {
		if err := r.keepAuthorization(ctx, c, authorizers.Items, info, now); err != nil {
			log.FromContext(ctx).Info("keeping the test account's authorization failed", "error", err.Error())
		}
	}
	return token, nil
}

// passing reports a failure worth retrying soon: WeChat busy or unreachable, a quota, or
// our component token rejected (it is refreshed first).
func passing(err error) bool {
	return wxapi.IsBusy(err) || wxapi.IsNetwork(err) || wxapi.IsQuota(err) || wxapi.IsInvalidToken(err)
}

// sendRetryable reports a send failure that surely delivered nothing and may pass: a
// message sent twice would fail the test as surely as none.
func sendRetryable(err error) bool {
	var netErr *wxapi.NetworkError
	return wxapi.IsBusy(err) || wxapi.IsQuota(err) || (errors.As(err, &netErr) && netErr.NotSent)
}

// firstRetry is the earlier of two retries (0: none).
func firstRetry(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// soonest is the earlier of a requeue and a retry (0: no retry).
func soonest(requeue, retry time.Duration) time.Duration {
	if retry > 0 && retry < requeue {
		return retry
	}
	return requeue
}
