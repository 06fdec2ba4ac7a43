/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// failure is a classified reason why a reconcile could not do its job. Its message is safe
// to show in a condition, an Event or a log line: it never holds a token, ticket, code or key.
type failure struct {
	reason  string
	message string
	backoff refresh.Backoff
}

func (f *failure) Error() string { return f.reason + ": " + f.message }

// needsHuman reports a failure only a human can fix (Stalled); it is retried slowly.
func (f *failure) needsHuman() bool { return f != nil && f.backoff == refresh.ConfigurationError }

// configurationFailure is a problem only a human can fix; it is retried slowly.
func configurationFailure(reason, message string) *failure {
	return &failure{reason: reason, message: message, backoff: refresh.ConfigurationError}
}

// classifyComponentTokenError classifies an error of api_component_token. That call carries
// no access token, so a "token invalid" answer (40001, 42001, 40014) cannot be cured by
// calling it again: WeChat rejects the AppSecret (a wrong one looks exactly like this) or the
// appid. It is a credentials problem, backed off like one, never a refresh-now loop.
func classifyComponentTokenError(err error, credentialsSecret string) *failure {
	if wxapi.IsInvalidToken(err) {
		return configurationFailure(wechatv1alpha1.ReasonCredentialsRejected, err.Error()+
			"; api_component_token takes no access token, so WeChat rejected the credentials: check the AppSecret in Secret "+
			strconv.Quote(credentialsSecret)+" (was it reset in the platform console?) and spec.appID, "+
			"then update the Secret; the manager retries at once when the Secret changes")
	}
	if wxapi.IsInvalidAppSecret(err) {
		return configurationFailure(wechatv1alpha1.ReasonInvalidAppSecret, err.Error()+
			"; check the AppSecret in Secret "+strconv.Quote(credentialsSecret)+
			" against the platform's settings; the manager retries at once when the Secret changes")
	}
	return classifyAPIError(err)
}

// classifyAPIError maps a WeChat client error to a condition reason and a hint of what to do.
// The client's error texts carry no secrets (it redacts them), so they may be quoted.
func classifyAPIError(err error) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	api := func(reason, hint string) *failure {
		return &failure{reason: reason, message: err.Error() + hint, backoff: refresh.APIFailure}
	}
	cfg := func(reason, hint string) *failure {
		return configurationFailure(reason, err.Error()+hint)
	}
	switch {
	case wxapi.IsBusy(err):
		return api(wechatv1alpha1.ReasonWeChatBusy, "; WeChat is busy, retrying with backoff")
	case wxapi.IsInvalidToken(err):
		return api(wechatv1alpha1.ReasonInvalidToken, "; a new component token is requested (at once the first time, then with backoff)")
	case wxapi.IsQuota(err):
		return api(wechatv1alpha1.ReasonQuotaExceeded,
			"; the daily quota of this API is used up, retrying with backoff (the quota resets at midnight Beijing time)")
	case wxapi.IsTicketInvalid(err):
		return api(wechatv1alpha1.ReasonTicketRejected,
			"; waiting for WeChat to push a new component_verify_ticket (a push was requested)")
	case wxapi.IsInvalidAppSecret(err):
		return cfg(wechatv1alpha1.ReasonInvalidAppSecret,
			"; check the AppSecret in the credentials Secret against the platform's settings")
	case wxapi.IsInvalidAppID(err):
		return cfg(wechatv1alpha1.ReasonInvalidAppID,
			"; check spec.appID against the platform's component appid")
	case wxapi.IsIPNotWhitelisted(err):
		return cfg(wechatv1alpha1.ReasonIPNotWhitelisted,
			"; add the manager's egress IP addresses to the platform's IP whitelist")
	case wxapi.IsUnauthorizedAPI(err):
		return cfg(wechatv1alpha1.ReasonAPIUnauthorized,
			"; the platform lacks the permission for this API: check the permission sets (权限集) in the platform's settings")
	case wxapi.IsNotAuthorized(err):
		return cfg(wechatv1alpha1.ReasonNotAuthorized,
			"; the account has not authorized the platform (or revoked it): it must authorize again")
	case wxapi.IsRefreshTokenInvalid(err):
		return api(wechatv1alpha1.ReasonRefreshTokenInvalid, "")
	case wxapi.IsAuthCodeInvalid(err):
		return api(wechatv1alpha1.ReasonAuthorizationCodeInvalid, "")
	}
	if _, ok := wxapi.Code(err); ok {
		return api(wechatv1alpha1.ReasonWeChatError, "")
	}
	var netErr *wxapi.NetworkError
	if errors.As(err, &netErr) {
		return api(wechatv1alpha1.ReasonWeChatUnreachable, "; retrying with backoff")
	}
	return api(wechatv1alpha1.ReasonWeChatError, "")
}

// failureRecorder is the one way both reconcilers record a failure: count it in status, say
// it in a Warning Event and a log line, and back off. Its two fields are the intended
// differences between the kinds:
//   - humanEvent: the Event reason of a failure only a human can fix. The WeChatComponent says
//     CredentialsInvalid (what alerts on a platform's credentials look for); the
//     WeChatAuthorizer says RefreshFailed for every failure (an authorizer has no credentials
//     of its own: its human failures are the spec's or the account's).
//   - what: the log line's subject.
//
// Failures found without calling WeChat (localFailureReasons) leave status.refreshAt alone;
// any other moves it to the end of the backoff, and no wake-up calls WeChat before then.
type failureRecorder struct {
	recorder     events.EventRecorder
	clock        clock.PassiveClock
	random       func() float64
	backoffScale float64
	humanEvent   string
	what         string
}

// record counts f in s, reports it, and returns the backoff and, unless f is local, the
// time status.refreshAt is to show (zero: leave it).
func (fr failureRecorder) record(ctx context.Context, obj runtime.Object, s *wechatv1alpha1.TokenStatus, f *failure) (wait time.Duration, retryAt time.Time) {
	s.FailedAttempts++
	s.LastFailureReason = f.reason
	reason := wechatv1alpha1.EventRefreshFailed
	if f.needsHuman() && fr.humanEvent != "" {
		reason = fr.humanEvent
	}
	fr.recorder.Eventf(obj, nil, corev1.EventTypeWarning, reason, "Refresh", "%s", f.message)
	log.FromContext(ctx).Info(fr.what+" reconcile failed", "reason", f.reason, "message", f.message, "failedAttempts", s.FailedAttempts)
	wait = max(f.backoff.Scaled(fr.backoffScale).Delay(s.FailedAttempts, fr.random()), time.Second)
	if !localFailureReasons[f.reason] {
		retryAt = fr.clock.Now().Add(wait).Truncate(time.Second)
	}
	return wait, retryAt
}
