/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/authlink"
	"github.com/wechat-operator/wechat-operator/internal/authstate"
)

// The authorization start page, GET /wechat/{namespace}/{component}/authorize: WeChat opens
// its PC authorization page only for a browser that comes from a page on the platform's
// 授权发起页域名, so the receiver serves one (spec.authorizePage, off unless enabled). It holds
// no token: it records a request in the component's status.authorizeLinkRequests, the
// manager answers it with a fresh pre_auth_code sealed for the receiver (internal/authlink),
// and the page shows a button to the link (PC and mobile) and removes the request, so the
// code is in status for about a second. Anyone on the internet can open the page, and each
// visit costs WeChat a pre_auth_code (the manager bounds those calls too), so it is
// rate-limited per client IP and per component, and status holds a bounded number of
// requests.

// Defaults of the start page's Options.
const (
	// DefaultAuthorizePageTimeout is how long a visit waits for the manager's answer; the
	// manager answers within about a second.
	DefaultAuthorizePageTimeout = 5 * time.Second
	// DefaultAuthorizePageRate and DefaultAuthorizePageBurst bound visits per component
	// (matching the manager's api_create_preauthcode budget).
	DefaultAuthorizePageRate  = 12 * time.Second
	DefaultAuthorizePageBurst = 5
	// DefaultAuthorizePageClientRate and DefaultAuthorizePageClientBurst bound visits per
	// client IP: an administrator reloads a few times.
	DefaultAuthorizePageClientRate  = 30 * time.Second
	DefaultAuthorizePageClientBurst = 3
	// authorizePagePoll is how often a visit rereads the cache should the informer's
	// notification (WatchComponents) be missed or not wired.
	authorizePagePoll = 200 * time.Millisecond
	// linkRequestLifetime is the manager's: older requests are dropped when adding one.
	linkRequestLifetime = time.Minute
	retryAfterSeconds   = "10"
)

// Results of the start page (besides rejected, unknown, rate_limited and persist_error).
const (
	resultAuthorizeShown = "shown"     // a link was shown
	resultNoAnswer       = "no_answer" // the manager did not answer in time, or could not make a code: 503
)

var (
	// hostPattern is what the page accepts as the Host it derives the redirect URI from.
	hostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[0-9]{1,5})?$`)

	errLinkRequestsFull = errors.New("status.authorizeLinkRequests is full")
)

// authorizeQuery is the start page's query, validated.
type authorizeQuery struct {
	authType int    // 0: not given
	bizAppID string // "": not given
}

// parseAuthorizeQuery accepts only auth_type (1, 2 or 3) and biz_appid (an appid), each at
// most once: the query comes from anyone, and whatever it holds ends up in a link.
func parseAuthorizeQuery(raw string) (authorizeQuery, error) {
	var q authorizeQuery
	if len(raw) > 256 {
		return q, errors.New("query too long")
	}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return q, errors.New("malformed query")
	}
	for k, v := range values {
		if len(v) != 1 {
			return q, fmt.Errorf("%s given %d times", k, len(v))
		}
		switch k {
		case "auth_type":
			if v[0] != "1" && v[0] != "2" && v[0] != "3" {
				return q, errors.New("auth_type must be 1, 2 or 3")
			}
			q.authType = int(v[0][0] - '0')
		case "biz_appid":
			if !appIDPattern.MatchString(v[0]) {
				return q, errors.New("biz_appid must be an appid")
			}
			q.bizAppID = v[0]
		default:
			return q, errors.New("unknown query parameter")
		}
	}
	return q, nil
}

// resolve combines the query with spec: spec wins, and a query that asks for something else
// is refused rather than silently changed.
func (q authorizeQuery) resolve(page wechatv1alpha1.AuthorizePage) (authlink.AuthType, string, error) {
	authType := int(page.AuthType)
	switch {
	case authType == 0 && q.authType != 0:
		authType = q.authType
	case authType == 0:
		authType = int(authlink.AuthTypeBoth)
	case q.authType != 0 && q.authType != authType:
		return 0, "", errors.New("this platform's page offers another auth_type")
	}
	biz := page.BizAppID
	switch {
	case biz == "":
		biz = q.bizAppID
	case q.bizAppID != "" && q.bizAppID != biz:
		return 0, "", errors.New("this platform's page is for another account")
	}
	return authlink.AuthType(authType), biz, nil
}

type startPage struct {
	Title, Message   string
	PCURL, MobileURL string
	MobileFirst      bool
	ExpiresInMinutes int
	HasLink          bool
}

var startPageTemplate = template.Must(template.New("authorize").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="strict-origin-when-cross-origin">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.4em}
a.button{display:block;margin:1em 0;padding:.8em 1em;border-radius:.4em;background:#07c160;color:#fff;text-decoration:none;text-align:center;font-weight:600}
a.button.secondary{background:#f2f2f2;color:#222}small{color:#666}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p>
{{- if .HasLink}}
{{- if .MobileFirst}}
<a class="button" id="mobile" href="{{.MobileURL}}">Authorize in WeChat</a>
<a class="button secondary" id="pc" href="{{.PCURL}}">Authorize on a computer (scan a QR code)</a>
{{- else}}
<a class="button" id="pc" href="{{.PCURL}}">Authorize on a computer (scan a QR code)</a>
<a class="button secondary" id="mobile" href="{{.MobileURL}}">Authorize in WeChat (open this page inside WeChat)</a>
{{- end}}
<p><small>The link works once and expires in about {{.ExpiresInMinutes}} minutes; reload this page for a new one.</small></p>
{{- end}}
</body></html>
`))

var (
	pageStartNotFound   = startPage{Title: "Page not found", Message: "There is no authorization page here."}
	pageStartBadRequest = startPage{Title: "Invalid request", Message: "This address takes only auth_type (1, 2 or 3) and biz_appid (an appid) that match the platform's settings."}
	pageStartLimited    = startPage{Title: "Please try again", Message: "This page was opened many times in a short while. Please try again in a minute."}
	pageStartNoAnswer   = startPage{Title: "Please try again", Message: "An authorization link could not be made just now. Please reload this page in a few seconds."}
	pageStartReady      = startPage{Title: "Authorize this platform",
		Message: "An administrator of the official account or mini program authorizes this platform on WeChat's page."}
)

// authorizeAnswer is what processAuthorize decided.
type authorizeAnswer struct {
	status int
	page   startPage
	result string
	detail string // safe to log
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("component")}
	a := s.processAuthorize(r, key)
	if s.metrics != nil {
		s.metrics.Pushes.WithLabelValues("authorize_page", a.result).Inc()
	}
	logger := s.log.WithValues("component", key.String(), "result", a.result, "status", a.status)
	if a.status >= 400 && a.status < 500 {
		s.logRejected(logger, "authorization start page not shown", "detail", a.detail)
	} else {
		logger.Info("authorization start page", "detail", a.detail)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The link is single use: no cache may keep the page.
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	// WeChat opens its authorization page only when the Referer is on the 授权发起页域名, so
	// the origin must go with the click (no-referrer would break it); the path and query of
	// this page are not sent to other sites, and nothing at all from HTTPS to HTTP.
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	// No script, no frames (clickjacking the button), no form, no base: the page is a link.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	if a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", retryAfterSeconds)
	}
	w.WriteHeader(a.status)
	_ = startPageTemplate.Execute(w, a.page)
}

func (s *Server) processAuthorize(r *http.Request, key types.NamespacedName) authorizeAnswer {
	q, err := parseAuthorizeQuery(r.URL.RawQuery)
	if err != nil {
		return authorizeAnswer{http.StatusBadRequest, pageStartBadRequest, resultRejected, err.Error()}
	}
	keys, err := s.keys.lookup(r.Context(), key.Namespace, key.Name)
	if errors.Is(err, errUnknownComponent) || (err == nil && !keys.component.Spec.AuthorizePage.Enabled) {
		// One answer for both: the page does not tell which components exist.
		return authorizeAnswer{http.StatusNotFound, pageStartNotFound, resultUnknown, "no such component, or its authorizePage is not enabled"}
	}
	if err != nil {
		return authorizeAnswer{http.StatusServiceUnavailable, pageStartNoAnswer, resultPersistError, "reading the component: " + err.Error()}
	}
	spec := keys.component.Spec.AuthorizePage
	authType, bizAppID, err := q.resolve(spec)
	if err != nil {
		return authorizeAnswer{http.StatusBadRequest, pageStartBadRequest, resultRejected, err.Error()}
	}
	redirectURI := spec.RedirectURI
	if redirectURI == "" {
		if redirectURI, err = landingPageURL(r, key); err != nil {
			return authorizeAnswer{http.StatusBadRequest, pageStartBadRequest, resultRejected, err.Error()}
		}
	}
	if !s.startClients.allow(s.clientIP(r)) || !s.startLimits.allow(key.String()) {
		return authorizeAnswer{http.StatusTooManyRequests, pageStartLimited, resultRateLimited, "over the start page's rate limit"}
	}
	code, expiresAt, a := s.fetchPreAuthCode(r.Context(), key, keys)
	if code == "" {
		return a
	}
	// The state is signed before the page is shown: the landing page takes the code only then.
	// The state lives as long as the code in its link, not the hour of an operator-made one.
	stateExpires := expiresAt
	if limit := s.clock.Now().Add(authstate.DefaultLifetime); stateExpires.After(limit) {
		stateExpires = limit
	}
	stateExpires = stateExpires.Truncate(time.Second)
	redirect, err := authlink.WithState(redirectURI, keys.stateKey, key.Namespace, key.Name, stateExpires)
	if err != nil {
		return authorizeAnswer{http.StatusServiceUnavailable, pageStartNoAnswer, resultRejected, "the redirect URI: " + err.Error()}
	}
	link := authlink.Link{ComponentAppID: keys.component.Spec.AppID, PreAuthCode: code, RedirectURI: redirect, AuthType: authType, BizAppID: bizAppID}
	page := pageStartReady
	page.HasLink, page.PCURL, page.MobileURL = true, link.PCURL(), link.MobileURL()
	page.MobileFirst = mobileUserAgent(r.UserAgent())
	page.ExpiresInMinutes = max(1, int(expiresAt.Sub(s.clock.Now()).Minutes()))
	return authorizeAnswer{http.StatusOK, page, resultAuthorizeShown, "a link was shown"}
}

// fetchPreAuthCode records a request, waits for the manager's answer and removes the
// request. It returns the code, or "" and the answer to give.
func (s *Server) fetchPreAuthCode(ctx context.Context, key types.NamespacedName, keys *componentKeys) (string, time.Time, authorizeAnswer) {
	id, err := newRequestID()
	if err != nil {
		return "", time.Time{}, authorizeAnswer{http.StatusServiceUnavailable, pageStartNoAnswer, resultPersistError, "no randomness"}
	}
	wake := s.linkWaiters.add(id)
	defer s.linkWaiters.remove(id)
	writeCtx, cancel := context.WithTimeout(ctx, s.persistTimeout)
	err = s.addLinkRequest(writeCtx, key, id)
	cancel()
	switch {
	case errors.Is(err, errLinkRequestsFull):
		return "", time.Time{}, authorizeAnswer{http.StatusTooManyRequests, pageStartLimited, resultRateLimited, "status.authorizeLinkRequests is full"}
	case err != nil:
		return "", time.Time{}, authorizeAnswer{http.StatusServiceUnavailable, pageStartNoAnswer, resultPersistError, "recording the request: " + err.Error()}
	}
	// Removed whatever happens: an answered code is single use and must not linger.
	defer func() {
		removeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.persistTimeout)
		defer cancel()
		if err := s.removeLinkRequest(removeCtx, key, id); err != nil {
			s.log.Info("removing an authorization start page request failed; the manager drops it within a minute",
				"component", key.String(), "error", err.Error())
		}
	}()
	answer, err := s.waitForAnswer(ctx, key, id, wake)
	if err != nil {
		return "", time.Time{}, authorizeAnswer{http.StatusServiceUnavailable, pageStartNoAnswer, resultNoAnswer, "the manager did not answer in time"}
	}
	if answer.FailureReason != "" || answer.SealedPreAuthCode == "" || answer.ExpiresAt == nil {
		return "", time.Time{}, authorizeAnswer{http.StatusServiceUnavailable, pageStartNoAnswer, resultNoAnswer, "the manager could not make a link: " + answer.FailureReason}
	}
	code, err := authlink.Open(keys.sealKey, key.Namespace, key.Name, id, answer.SealedPreAuthCode)
	if err != nil {
		return "", time.Time{}, authorizeAnswer{http.StatusServiceUnavailable, pageStartNoAnswer, resultRejected, err.Error()}
	}
	return code, answer.ExpiresAt.Time, authorizeAnswer{}
}

// waitForAnswer rereads the component from the cache whenever the informer says it changed
// (or every authorizePagePoll) until request id is answered or the timeout passes.
func (s *Server) waitForAnswer(ctx context.Context, key types.NamespacedName, id string, wake <-chan struct{}) (wechatv1alpha1.AuthorizeLinkRequest, error) {
	ctx, cancel := context.WithTimeout(ctx, s.startTimeout)
	defer cancel()
	tick := time.NewTicker(authorizePagePoll)
	defer tick.Stop()
	for {
		c := &wechatv1alpha1.WeChatComponent{}
		if err := s.reader.Get(ctx, key, c); err == nil {
			for _, req := range c.Status.AuthorizeLinkRequests {
				if req.ID == id && req.AnsweredAt != nil {
					return req, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return wechatv1alpha1.AuthorizeLinkRequest{}, ctx.Err()
		case <-wake:
		case <-tick.C:
		}
	}
}

// addLinkRequest adds request id to the component's status, dropping requests the manager
// would drop; errLinkRequestsFull when the bounded list has no room.
func (s *Server) addLinkRequest(ctx context.Context, key types.NamespacedName, id string) error {
	var full bool
	_, err := patchStatus(ctx, s, key, newComponent, func(c *wechatv1alpha1.WeChatComponent) bool {
		now := s.clock.Now()
		kept := slices.DeleteFunc(slices.Clone(c.Status.AuthorizeLinkRequests), func(r wechatv1alpha1.AuthorizeLinkRequest) bool {
			age := now.Sub(r.RequestedAt.Time)
			return age >= linkRequestLifetime || age <= -linkRequestLifetime
		})
		if full = len(kept) >= wechatv1alpha1.MaxAuthorizeLinkRequests; full {
			return false
		}
		c.Status.AuthorizeLinkRequests = append(kept, wechatv1alpha1.AuthorizeLinkRequest{
			ID: id, RequestedAt: metav1.NewTime(now.UTC().Truncate(time.Second)),
		})
		return true
	})
	if err == nil && full {
		err = errLinkRequestsFull
	}
	return err
}

// removeLinkRequest removes request id from the component's status.
func (s *Server) removeLinkRequest(ctx context.Context, key types.NamespacedName, id string) error {
	_, err := patchStatus(ctx, s, key, newComponent, func(c *wechatv1alpha1.WeChatComponent) bool {
		before := len(c.Status.AuthorizeLinkRequests)
		c.Status.AuthorizeLinkRequests = slices.DeleteFunc(c.Status.AuthorizeLinkRequests, func(r wechatv1alpha1.AuthorizeLinkRequest) bool { return r.ID == id })
		return len(c.Status.AuthorizeLinkRequests) != before
	})
	return err
}

// newRequestID is 16 random bytes, unpadded base64url (22 characters).
func newRequestID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// landingPageURL is the receiver's redirect landing page on the host the start page was
// opened on: the 授权发起页域名 the redirect URI must be on, by construction.
func landingPageURL(r *http.Request, key types.NamespacedName) (string, error) {
	if !hostPattern.MatchString(r.Host) {
		return "", errors.New("the Host header is not a host name")
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: "/wechat/" + key.Namespace + "/" + key.Name + "/authorized"}
	return u.String(), nil
}

// mobileUserAgent reports a phone's browser or WeChat's own: the mobile link goes first.
func mobileUserAgent(ua string) bool {
	for _, s := range []string{"MicroMessenger", "Mobile", "Android", "iPhone", "iPad"} {
		if strings.Contains(ua, s) {
			return true
		}
	}
	return false
}

// clientIP is the client's rate-limit key: its address from the trusted header
// (Options.ClientIPHeader, set by the Ingress) when that holds an IP, else the connection's
// peer. Of a list (X-Forwarded-For, in one line or several), the last entry: the one the
// nearest proxy added, which a client cannot forge. An IPv6 address counts by its /64, the
// smallest block one subscriber is given, so one client cannot be many.
func (s *Server) clientIP(r *http.Request) string {
	if s.clientIPHeader != "" {
		if lines := r.Header.Values(s.clientIPHeader); len(lines) > 0 {
			v := lines[len(lines)-1]
			if i := strings.LastIndexByte(v, ','); i >= 0 {
				v = v[i+1:]
			}
			if ip := net.ParseIP(strings.TrimSpace(v)); ip != nil {
				return clientKey(ip)
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil {
		return clientKey(ip)
	}
	return host
}

// clientKey is an IPv4 address, or an IPv6 address's /64.
func clientKey(ip net.IP) string {
	if ip.To4() != nil {
		return ip.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// linkWaiters wakes the visits waiting for their request's answer.
type linkWaiters struct {
	mu      sync.Mutex
	waiters map[string]chan struct{}
}

func (l *linkWaiters) add(id string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waiters == nil {
		l.waiters = map[string]chan struct{}{}
	}
	ch := make(chan struct{}, 1)
	l.waiters[id] = ch
	return ch
}

func (l *linkWaiters) remove(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.waiters, id)
}

// notify wakes the waiters of the answered requests of c.
func (l *linkWaiters) notify(obj any) {
	c, ok := obj.(*wechatv1alpha1.WeChatComponent)
	if !ok || len(c.Status.AuthorizeLinkRequests) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, req := range c.Status.AuthorizeLinkRequests {
		if ch, ok := l.waiters[req.ID]; ok && req.AnsweredAt != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// WatchComponents wakes the start page's visits from the events of informer (the
// WeChatComponent informer of the cache behind Options.Reader) the moment the manager's
// answer arrives; without it they poll the cache every 200 ms.
func (s *Server) WatchComponents(informer crcache.Informer) error {
	_, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { s.linkWaiters.notify(obj) },
	})
	return err
}
