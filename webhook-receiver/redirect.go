/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"regexp"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/authstate"
)

// The redirect landing page: WeChat sends the account administrator's browser to the
// redirect_uri of the authorization link with ?auth_code=…&expires_in=… appended. Anyone can
// open that URL, and a recorded code costs a status write and an api_query_auth (a daily
// quota), so the page takes codes only from links the operator made: their redirect_uri
// carries a signed, expiring state (internal/authstate, keyed by the platform's Token). It
// reads only the informer cache, takes at most a few codes per component a minute, caps
// their lifetime at WeChat's hour, and never lets them displace codes WeChat pushed. The
// code is recorded once, whichever of the page and the push comes first, and never shown back.

// authCodePattern bounds what is accepted as an authorization code before it is stored.
var authCodePattern = regexp.MustCompile(`^[A-Za-z0-9@_\-.=+/]{8,256}$`)

// maxCodeLifetime caps the expires_in of a redirect: WeChat's codes last about an hour, and
// the value comes from the browser, not from WeChat.
const maxCodeLifetime = time.Hour

var landingPage = template.Must(template.New("landing").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.4em}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

type landing struct{ Title, Message string }

var (
	pageAuthorized   = landing{"Authorization received", "Thank you: the platform has received your authorization. You can close this page."}
	pageBadRequest   = landing{"Authorization not received", "This page was opened without a valid authorization code. Please start the authorization again from the link you were given."}
	pageBadState     = landing{"Authorization link not valid", "This page was not opened from a valid authorization link of this platform (the link is incomplete, was altered, or is more than an hour old). Your authorization on WeChat's side may have succeeded all the same; if the platform does not show it, ask the platform's operator for a new link."}
	pageUnknown      = landing{"Authorization not received", "This platform is not configured here. Please contact the platform's operator."}
	pageUnavailable  = landing{"Please try again", "The authorization could not be recorded just now. Reload this page in a moment; your authorization is not lost."}
	pageRateLimited  = landing{"Please try again", "This platform has received many authorizations in the last minute. Reload this page in a minute; your authorization is not lost."}
	redirectFailures = map[string]bool{resultRejected: true, resultUnknown: true, resultRateLimited: true}
)

func (s *Server) handleAuthorized(w http.ResponseWriter, r *http.Request) {
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("component")}
	status, page, result := s.processRedirect(r, key)
	if s.metrics != nil {
		s.metrics.Pushes.WithLabelValues("redirect", result).Inc()
	}
	logger := s.log.WithValues("component", key.String(), "result", result)
	if redirectFailures[result] {
		s.logRejected(logger, "authorization redirect not accepted", "status", status)
	} else {
		logger.Info("authorization redirect", "status", status)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = landingPage.Execute(w, page)
}

func (s *Server) processRedirect(r *http.Request, key types.NamespacedName) (int, landing, string) {
	q := r.URL.Query()
	code := q.Get("auth_code")
	if !authCodePattern.MatchString(code) {
		return http.StatusBadRequest, pageBadRequest, resultRejected
	}
	lifetime := maxCodeLifetime
	if v := q.Get("expires_in"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return http.StatusBadRequest, pageBadRequest, resultRejected
		}
		// Capped in seconds, before the multiplication could overflow into a negative lifetime.
		lifetime = time.Duration(min(n, int(maxCodeLifetime/time.Second))) * time.Second
	}
	keys, err := s.keys.lookup(r.Context(), key.Namespace, key.Name)
	if err != nil {
		if errors.Is(err, errUnknownComponent) {
			return http.StatusNotFound, pageUnknown, resultUnknown
		}
		return http.StatusServiceUnavailable, pageUnavailable, resultPersistError
	}
	state := q.Get(authstate.Param)
	stateExpires, err := authstate.Verify(keys.stateKey, key.Namespace, key.Name, state, s.clock.Now())
	if err != nil {
		return http.StatusForbidden, pageBadState, resultRejected
	}
	// Limited only once the link is known to be ours: junk cannot spend a genuine link's budget.
	if !s.redirectLimits.allow(key.String()) {
		return http.StatusTooManyRequests, pageRateLimited, resultRateLimited
	}
	// A state is single use: one link brings one code, and the start page hands links to
	// anyone, who could otherwise replay its state with made-up codes until it expires. A
	// reload of the landing page finds its code received.
	used := stateReplayKey(key, state)
	switch s.replay.reserve(used, stateExpires.Sub(s.clock.Now())) {
	case replayDone, replayInFlight:
		return http.StatusOK, pageAuthorized, resultDuplicate
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.persistTimeout)
	defer cancel()
	wrote, err := s.recordRedirectCode(ctx, keys.component, code, s.clock.Now().Add(lifetime))
	if err != nil {
		s.replay.release(used) // not recorded: the same link may try again
		return http.StatusServiceUnavailable, pageUnavailable, resultPersistError
	}
	s.replay.complete(used)
	if !wrote {
		return http.StatusOK, pageAuthorized, resultDuplicate
	}
	return http.StatusOK, pageAuthorized, resultApplied
}

// stateReplayKey is a landing-page state's entry in the replay cache, apart from pushes'.
func stateReplayKey(key types.NamespacedName, state string) string {
	return "state\x00" + key.String() + "\x00" + state
}

// recordRedirectCode records a code from the redirect page unless it is already pending,
// on an authorizer (its push came first) or on the component. It reads authorizers from the
// cache: should it lag a push, the controller skips a code it finds on an authorizer. It
// reports whether it wrote.
func (s *Server) recordRedirectCode(ctx context.Context, component *wechatv1alpha1.WeChatComponent, code string, expiresAt time.Time) (bool, error) {
	list := &wechatv1alpha1.WeChatAuthorizerList{}
	if err := s.reader.List(ctx, list, client.InNamespace(component.Namespace)); err != nil {
		return false, err
	}
	for _, a := range list.Items {
		if a.Spec.ComponentRef.Name == component.Name && a.Status.AuthorizationCode != nil && a.Status.AuthorizationCode.Code == code {
			return false, nil
		}
	}
	now := metav1.NewTime(s.clock.Now().UTC().Truncate(time.Second))
	return s.recordPendingCode(ctx, component, wechatv1alpha1.AuthorizationCode{Code: code,
		ExpiresAt: metav1.NewTime(expiresAt.UTC().Truncate(time.Second)), ReceivedAt: &now,
		Source: wechatv1alpha1.AuthorizationCodeFromRedirect})
}
