/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"html/template"
	"net/http"
	"regexp"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// The redirect landing page: WeChat sends the account administrator's browser to the
// redirect_uri of the authorization link with ?auth_code=…&expires_in=…. The code is recorded
// (once, whichever of the page and the push comes first) and never shown back.

// authCodePattern bounds what is accepted as an authorization code before it is stored.
var authCodePattern = regexp.MustCompile(`^[A-Za-z0-9@_\-.=+/]{8,256}$`)

const (
	maxCodeLifetime = 24 * time.Hour
	// maxPendingCodes matches the CRD's MaxItems on status.pendingAuthorizationCodes.
	maxPendingCodes = 16
)

var landingPage = template.Must(template.New("landing").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.4em}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

type landing struct{ Title, Message string }

var (
	pageAuthorized  = landing{"Authorization received", "Thank you: the platform has received your authorization. You can close this page."}
	pageBadRequest  = landing{"Authorization not received", "This page was opened without a valid authorization code. Please start the authorization again from the link you were given."}
	pageUnknown     = landing{"Authorization not received", "This platform is not configured here. Please contact the platform's operator."}
	pageUnavailable = landing{"Please try again", "The authorization could not be recorded just now. Reload this page in a moment; your authorization is not lost."}
)

func (s *Server) handleAuthorized(w http.ResponseWriter, r *http.Request) {
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("component")}
	status, page, result := s.processRedirect(r, key)
	if s.metrics != nil {
		s.metrics.Pushes.WithLabelValues("redirect", result).Inc()
	}
	s.log.Info("authorization redirect", "component", key.String(), "result", result)
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
	lifetime := defaultAuthCodeLifetime
	if v := q.Get("expires_in"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || time.Duration(n)*time.Second > maxCodeLifetime {
			return http.StatusBadRequest, pageBadRequest, resultRejected
		}
		lifetime = time.Duration(n) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.persistTimeout)
	defer cancel()
	component := &wechatv1alpha1.WeChatComponent{}
	if err := s.reader.Get(ctx, key, component); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return http.StatusNotFound, pageUnknown, resultUnknown
		}
		return http.StatusServiceUnavailable, pageUnavailable, resultPersistError
	}
	wrote, err := s.recordRedirectCode(ctx, component, code, s.clock.Now().Add(lifetime))
	if err != nil {
		return http.StatusServiceUnavailable, pageUnavailable, resultPersistError
	}
	if !wrote {
		return http.StatusOK, pageAuthorized, resultDuplicate
	}
	return http.StatusOK, pageAuthorized, resultApplied
}

// recordRedirectCode records a code from the redirect page unless it is already pending,
// on an authorizer (its push came first) or on the component. It reports whether it wrote.
func (s *Server) recordRedirectCode(ctx context.Context, component *wechatv1alpha1.WeChatComponent, code string, expiresAt time.Time) (bool, error) {
	list := &wechatv1alpha1.WeChatAuthorizerList{}
	if err := s.apiReader.List(ctx, list, client.InNamespace(component.Namespace)); err != nil {
		return false, err
	}
	for _, a := range list.Items {
		if a.Spec.ComponentRef.Name == component.Name && a.Status.AuthorizationCode != nil && a.Status.AuthorizationCode.Code == code {
			return false, nil
		}
	}
	return patchStatus(ctx, s, client.ObjectKeyFromObject(component), newComponent, func(c *wechatv1alpha1.WeChatComponent) bool {
		pending := c.Status.PendingAuthorizationCodes
		for _, p := range pending {
			if p.Code == code {
				return false
			}
		}
		now := metav1.NewTime(s.clock.Now().UTC().Truncate(time.Second))
		entry := wechatv1alpha1.AuthorizationCode{Code: code, ExpiresAt: metav1.NewTime(expiresAt.UTC().Truncate(time.Second)), ReceivedAt: &now}
		// Keep the newest ones: the list is bounded, and old codes are the first to expire.
		pending = append(pending, entry)
		if len(pending) > maxPendingCodes {
			pending = pending[len(pending)-maxPendingCodes:]
		}
		c.Status.PendingAuthorizationCodes = pending
		return true
	})
}
