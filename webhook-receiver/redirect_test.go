/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/authstate"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

const redirectPath = "/wechat/" + tNamespace + "/" + tComponent + "/authorized"

// state is what `kubectl wechat auth-link` puts in the redirect_uri of its links.
func (e *msgEnv) state(token, component string, expires time.Time) string {
	e.t.Helper()
	s, err := authstate.Sign(authstate.Key(token, tAESKey), tNamespace, component, expires)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *msgEnv) redirect(code, expiresIn, state string) answer {
	e.t.Helper()
	q := url.Values{"auth_code": {code}}
	if expiresIn != "" {
		q.Set("expires_in", expiresIn)
	}
	if state != "" {
		q.Set(authstate.Param, state)
	}
	return e.get(redirectPath + "?" + q.Encode())
}

func TestTheRedirectPageTakesCodesOnlyFromTheOperatorsLinks(t *testing.T) {
	e := newMsgEnv(t)
	inAnHour := e.clock.Now().Add(time.Hour)
	cases := []struct {
		name, state string
	}{
		{"no state (a bare redirect_uri)", ""},
		{"a state signed with another platform's Token", e.state("another-token", tComponent, inAnHour)},
		{"a state of another component", e.state(tToken, "platform2", inAnHour)},
		{"an expired state", e.state(tToken, tComponent, e.clock.Now().Add(-time.Second))},
		{"garbage", "v1.1.2.3"},
	}
	for i, tc := range cases {
		got := e.redirect("queryauthcode@@@refused"+strconv.Itoa(i), "", tc.state)
		if got.code != http.StatusForbidden || !strings.Contains(got.body, "Authorization link not valid") {
			t.Errorf("%s: HTTP %d, want 403 and a page that says the link is not valid", tc.name, got.code)
		}
	}
	if p := e.component().Status.PendingAuthorizationCodes; len(p) != 0 {
		t.Fatalf("codes recorded without a valid state: %+v", p)
	}

	// The operator's link; expires_in asks for a day, WeChat's codes last an hour.
	if got := e.redirect("queryauthcode@@@genuine", "86400", e.state(tToken, tComponent, inAnHour)); got.code != 200 ||
		!strings.Contains(got.body, "Authorization received") {
		t.Fatalf("the operator's link: HTTP %d %q", got.code, got.body)
	}
	p := e.component().Status.PendingAuthorizationCodes
	if len(p) != 1 || p[0].Code != "queryauthcode@@@genuine" || p[0].Source != wechatv1alpha1.AuthorizationCodeFromRedirect {
		t.Fatalf("pending = %+v, want the code, unverified", p)
	}
	if !p[0].ExpiresAt.Time.Equal(e.clock.Now().Add(maxCodeLifetime)) {
		t.Fatalf("the code expires at %s, want capped at an hour from now", p[0].ExpiresAt)
	}
	if n := e.apiLists.Load(); n != 0 {
		t.Fatalf("the redirect page made %d uncached LISTs", n)
	}
	if strings.Contains(e.logs.String(), "queryauthcode@@@") {
		t.Fatal("a code is in the logs")
	}
}

func TestTheRedirectPageIsRateLimitedPerComponent(t *testing.T) {
	e := newMsgEnv(t, func(_ *wechatv1alpha1.WeChatComponent, _ *corev1.Secret, o *Options) {
		o.RedirectBurst, o.RedirectRate = 3, 10*time.Second
	})
	// A state is single use: each code comes through a link of its own.
	state := func() string { return e.state(tToken, tComponent, e.clock.Now().Add(time.Hour)) }
	for i := range 3 {
		if got := e.redirect("queryauthcode@@@burst"+strconv.Itoa(i), "3600", state()); got.code != 200 {
			t.Fatalf("code %d: HTTP %d", i, got.code)
		}
	}
	limited := state()
	if got := e.redirect("queryauthcode@@@burst3", "3600", limited); got.code != http.StatusTooManyRequests {
		t.Fatalf("over the burst: HTTP %d, want 429", got.code)
	}
	if n := len(e.component().Status.PendingAuthorizationCodes); n != 3 {
		t.Fatalf("%d codes recorded, want the burst of 3", n)
	}
	e.clock.Step(10 * time.Second)
	// A link refused by the limit was not used up: it works once the limit allows.
	if got := e.redirect("queryauthcode@@@burst3", "3600", limited); got.code != 200 {
		t.Fatalf("after the interval: HTTP %d", got.code)
	}
	if got := counterValue(e.metrics.Pushes.WithLabelValues("redirect", resultRateLimited)); got != 1 {
		t.Fatalf("rate_limited = %v, want 1", got)
	}
}

func TestARedirectStateTakesOneCode(t *testing.T) {
	e := newMsgEnv(t)
	state := e.state(tToken, tComponent, e.clock.Now().Add(time.Hour))
	if got := e.redirect("queryauthcode@@@first", "3600", state); got.code != 200 {
		t.Fatalf("the link's first use: HTTP %d", got.code)
	}
	// Replayed with a made-up code (anyone the start page gave the link to could): the page
	// says the code was received, and nothing is written.
	if got := e.redirect("queryauthcode@@@replayed", "3600", state); got.code != 200 || !strings.Contains(got.body, "Authorization received") {
		t.Fatalf("the link's second use: HTTP %d %q", got.code, got.body)
	}
	p := e.component().Status.PendingAuthorizationCodes
	if len(p) != 1 || p[0].Code != "queryauthcode@@@first" {
		t.Fatalf("pending = %+v, want the first code alone", p)
	}
	if got := counterValue(e.metrics.Pushes.WithLabelValues("redirect", resultDuplicate)); got != 1 {
		t.Fatalf("duplicate = %v, want 1", got)
	}
}

func TestRedirectCodesNeverDisplaceCodesWeChatPushed(t *testing.T) {
	e := newMsgEnv(t, func(c *wechatv1alpha1.WeChatComponent, _ *corev1.Secret, o *Options) {
		c.Spec.Authorizers.AutoCreate = true
		o.RedirectBurst = 100
	})
	c := e.component()
	for i := range maxPendingCodes {
		c.Status.PendingAuthorizationCodes = append(c.Status.PendingAuthorizationCodes, code("queryauthcode@@@pushed"+strconv.Itoa(i),
			wechatv1alpha1.AuthorizationCodeFromPush, e.clock.Now().Add(time.Hour)))
	}
	if err := e.client.Status().Update(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	state := e.state(tToken, tComponent, e.clock.Now().Add(time.Hour))
	for i := range 50 {
		if got := e.redirect("queryauthcode@@@flood"+strconv.Itoa(i), "3600", state); got.code != http.StatusServiceUnavailable {
			t.Fatalf("flood %d: HTTP %d, want 503 (no room)", i, got.code)
		}
	}
	p := e.component().Status.PendingAuthorizationCodes
	if len(p) != maxPendingCodes || p[0].Code != "queryauthcode@@@pushed0" {
		t.Fatalf("the flood changed the verified codes: %d, first %s", len(p), p[0].Code)
	}
	// A pushed code still gets in: the oldest pushed one goes.
	ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
	query, body := e.pushEvent(e.authorizedPush("queryauthcode@@@newest"), ts, "88")
	if got := e.post(eventsPath, query, body); got.code != 200 {
		t.Fatalf("HTTP %d", got.code)
	}
	p = e.component().Status.PendingAuthorizationCodes
	if len(p) != maxPendingCodes || p[0].Code != "queryauthcode@@@pushed1" || p[len(p)-1].Code != "queryauthcode@@@newest" {
		t.Fatalf("pending after a push: %d, %s … %s", len(p), p[0].Code, p[len(p)-1].Code)
	}
	_ = wxcrypto.InfoTypeAuthorized
}

func code(c string, source wechatv1alpha1.AuthorizationCodeSource, expires time.Time) wechatv1alpha1.AuthorizationCode {
	return wechatv1alpha1.AuthorizationCode{Code: c, Source: source, ExpiresAt: metav1.NewTime(expires)}
}

func TestAddPendingCode(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)
	push, redirect := wechatv1alpha1.AuthorizationCodeFromPush, wechatv1alpha1.AuthorizationCodeFromRedirect
	full := func(sources ...wechatv1alpha1.AuthorizationCodeSource) []wechatv1alpha1.AuthorizationCode {
		var out []wechatv1alpha1.AuthorizationCode
		for i := range maxPendingCodes {
			out = append(out, code("c"+strconv.Itoa(i), sources[i%len(sources)], later))
		}
		return out
	}
	cases := map[string]struct {
		pending   []wechatv1alpha1.AuthorizationCode
		entry     wechatv1alpha1.AuthorizationCode
		wantCodes string // first, last and length, or "" for no change
		wantErr   error
	}{
		"room: appended":                                    {nil, code("n", redirect, later), "n n 1", nil},
		"the same code from the redirect again":             {[]wechatv1alpha1.AuthorizationCode{code("n", redirect, later)}, code("n", redirect, later), "", nil},
		"full of pushes: a redirect is refused":             {full(push), code("n", redirect, later), "", errPendingFull},
		"full of pushes: a push drops the oldest":           {full(push), code("n", push, later), "c1 n 16", nil},
		"full, mixed: a redirect drops the oldest redirect": {full(push, redirect), code("n", redirect, later), "c0 n 16", nil},
		"full, mixed: a push drops the oldest redirect too": {full(push, redirect), code("n", push, later), "c0 n 16", nil},
		"expired codes go first":                            {append(full(push)[:15], code("old", push, now)), code("n", redirect, later), "c0 n 16", nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, changed, err := addPendingCode(tc.pending, tc.entry, now)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantCodes == "" {
				if changed {
					t.Fatalf("changed the list: %+v", got)
				}
				return
			}
			summary := got[0].Code + " " + got[len(got)-1].Code + " " + strconv.Itoa(len(got))
			if !changed || summary != tc.wantCodes {
				t.Fatalf("got %q (changed %v), want %q", summary, changed, tc.wantCodes)
			}
			if tc.entry.Source == redirect {
				for _, p := range tc.pending {
					if p.Source == push && now.Before(p.ExpiresAt.Time) && !contains(got, p.Code) {
						t.Fatalf("a redirect code displaced the pushed code %s", p.Code)
					}
				}
			}
		})
	}
	// A push of a code that came by the redirect first marks it verified.
	got, changed, _ := addPendingCode([]wechatv1alpha1.AuthorizationCode{code("n", redirect, later)}, code("n", push, later), now)
	if !changed || len(got) != 1 || got[0].Source != push {
		t.Fatalf("got %+v", got)
	}
}

func contains(list []wechatv1alpha1.AuthorizationCode, c string) bool {
	for _, p := range list {
		if p.Code == c {
			return true
		}
	}
	return false
}

// An expires_in past what a Duration holds in nanoseconds must not wrap around into a
// negative lifetime: the code would be written already expired (a wasted status write and
// rate-limit token, and a genuine code lost to the manager).
func TestTheRedirectPageCapsAnExpiresInThatOverflows(t *testing.T) {
	e := newMsgEnv(t)
	for _, expiresIn := range []string{"9223372037", "18446744073"} {
		code := "queryauthcode@@@overflow" + expiresIn
		if got := e.redirect(code, expiresIn, e.state(tToken, tComponent, e.clock.Now().Add(time.Hour))); got.code != 200 {
			t.Fatalf("expires_in=%s: HTTP %d", expiresIn, got.code)
		}
		var found bool
		for _, p := range e.component().Status.PendingAuthorizationCodes {
			if p.Code != code {
				continue
			}
			found = true
			if !p.ExpiresAt.Time.Equal(e.clock.Now().Add(maxCodeLifetime)) {
				t.Errorf("expires_in=%s: the code expires at %s, want an hour from now (%s)", expiresIn, p.ExpiresAt.Time, e.clock.Now().Add(maxCodeLifetime))
			}
		}
		if !found {
			t.Errorf("expires_in=%s: the code was not recorded", expiresIn)
		}
	}
}
