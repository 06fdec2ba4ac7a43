/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/authlink"
	"github.com/wechat-operator/wechat-operator/internal/authstate"
)

const startPath = "/wechat/" + tNamespace + "/" + tComponent + "/authorize"

func withStartPage(mutate func(*wechatv1alpha1.AuthorizePage, *Options)) envOption {
	return func(c *wechatv1alpha1.WeChatComponent, _ *corev1.Secret, o *Options) {
		c.Spec.AuthorizePage.Enabled = true
		o.AuthorizePageTimeout = 2 * time.Second
		if mutate != nil {
			mutate(&c.Spec.AuthorizePage, o)
		}
	}
}

// fakeManager answers the start page's requests as the manager does (the real one is
// tested with the receiver in controllers/authorizepage_test.go): code, or a failure.
type fakeManager struct {
	e        *msgEnv
	answered atomic.Int32
	stop     chan struct{}
}

func (e *msgEnv) runFakeManager(code, failure string) *fakeManager {
	m := &fakeManager{e: e, stop: make(chan struct{})}
	done := make(chan struct{})
	e.t.Cleanup(func() { close(m.stop); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
			c := &wechatv1alpha1.WeChatComponent{}
			if err := e.client.Get(context.Background(), types.NamespacedName{Namespace: tNamespace, Name: tComponent}, c); err != nil {
				continue
			}
			changed := false
			for i, req := range c.Status.AuthorizeLinkRequests {
				if req.AnsweredAt != nil {
					continue
				}
				now := metav1.Now()
				c.Status.AuthorizeLinkRequests[i].AnsweredAt, changed = &now, true
				if failure != "" {
					c.Status.AuthorizeLinkRequests[i].FailureReason = failure
					continue
				}
				sealed, err := authlink.Seal(authlink.SealKey(tToken, tAESKey), tNamespace, tComponent, req.ID, code)
				if err != nil {
					panic(err)
				}
				expires := metav1.NewTime(e.clock.Now().Add(10 * time.Minute))
				c.Status.AuthorizeLinkRequests[i].SealedPreAuthCode, c.Status.AuthorizeLinkRequests[i].ExpiresAt = sealed, &expires
			}
			if changed && e.client.Status().Update(context.Background(), c) == nil {
				m.answered.Add(1)
			}
		}
	}()
	return m
}

type startAnswer struct {
	code   int
	body   string
	header http.Header
}

func (e *msgEnv) start(query string, header map[string]string) startAnswer {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+startPath+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if h, ok := header["Host"]; ok {
		req.Host = h
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return startAnswer{resp.StatusCode, string(b), resp.Header}
}

var hrefPattern = regexp.MustCompile(`id="(pc|mobile)" href="([^"]+)"`)

// links are the page's PC and mobile links, unescaped.
func links(t *testing.T, body string) map[string]*url.URL {
	t.Helper()
	out := map[string]*url.URL{}
	for _, m := range hrefPattern.FindAllStringSubmatch(body, -1) {
		u, err := url.Parse(html.UnescapeString(m[2]))
		if err != nil {
			t.Fatalf("%s link %q: %v", m[1], m[2], err)
		}
		out[m[1]] = u
	}
	return out
}

func TestTheStartPageIsOffUnlessEnabled(t *testing.T) {
	e := newMsgEnv(t)
	m := e.runFakeManager("preauthcode@@@never-shown", "")
	got := e.start("", nil)
	if got.code != http.StatusNotFound {
		t.Fatalf("disabled page: HTTP %d, want 404", got.code)
	}
	unknown, _ := http.Get(e.url + "/wechat/" + tNamespace + "/nope/authorize")
	if unknown.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown component: HTTP %d, want 404", unknown.StatusCode)
	}
	if len(e.component().Status.AuthorizeLinkRequests) != 0 || m.answered.Load() != 0 {
		t.Fatal("a disabled page recorded a request")
	}
}

func TestTheStartPageShowsAFreshLinkFromTheManager(t *testing.T) {
	e := newMsgEnv(t, withStartPage(nil))
	const code = "preauthcode@@@Cx_Dk6qiBE0Dmx4EmlT3oRfArPvw"
	m := e.runFakeManager(code, "")
	got := e.start("?auth_type=2&biz_appid="+tAccountAppID, map[string]string{"User-Agent": "Mozilla/5.0 (Windows NT 10.0)"})
	if got.code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", got.code, got.body)
	}
	l := links(t, got.body)
	pc, mobile := l["pc"], l["mobile"]
	if pc == nil || mobile == nil {
		t.Fatalf("the page lacks a PC or mobile link:\n%s", got.body)
	}
	if pc.Host != "mp.weixin.qq.com" || pc.Path != "/cgi-bin/componentloginpage" || mobile.Path != "/safe/bindcomponent" || mobile.Fragment != "wechat_redirect" {
		t.Fatalf("links %s and %s are not WeChat's authorization pages", pc, mobile)
	}
	if strings.Index(got.body, `id="pc"`) > strings.Index(got.body, `id="mobile"`) {
		t.Fatal("a desktop browser gets the mobile link first")
	}
	for name, u := range l {
		q := u.Query()
		if q.Get("pre_auth_code") != code || q.Get("component_appid") != tComponentAppID || q.Get("auth_type") != "2" || q.Get("biz_appid") != tAccountAppID {
			t.Fatalf("%s link query %v", name, q)
		}
		redirect, err := url.Parse(q.Get("redirect_uri"))
		if err != nil || redirect.Host != strings.TrimPrefix(e.url, "http://") || redirect.Path != "/wechat/"+tNamespace+"/"+tComponent+"/authorized" {
			t.Fatalf("%s link redirect_uri %q: want the landing page on the host the page was opened on", name, q.Get("redirect_uri"))
		}
		expires, err := authstate.Verify(authstate.Key(tToken, tAESKey), tNamespace, tComponent, redirect.Query().Get(authstate.Param), e.clock.Now())
		if err != nil {
			t.Fatalf("%s link: the landing page would refuse its state: %v", name, err)
		}
		// The fake manager's code lasts 10 minutes; the state no longer than that.
		if !expires.Equal(e.clock.Now().Add(10 * time.Minute).Truncate(time.Second)) {
			t.Fatalf("%s link: the state expires at %s, want with the pre_auth_code (10 minutes)", name, expires)
		}
	}
	for k, want := range map[string]string{
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "strict-origin-when-cross-origin",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	} {
		if got.header.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, got.header.Get(k), want)
		}
	}
	if reqs := e.component().Status.AuthorizeLinkRequests; len(reqs) != 0 || m.answered.Load() != 1 {
		t.Fatalf("after the page: %d requests in status (want 0: removed once shown), %d answered", len(reqs), m.answered.Load())
	}
	if strings.Contains(e.logs.String(), "preauthcode@@@") || strings.Contains(e.logs.String(), "Cx_Dk6") {
		t.Fatal("the pre_auth_code is in the logs")
	}
	if n := e.pushes("authorize_page", resultAuthorizeShown); n != 1 {
		t.Fatalf("authorize_page shown = %v", n)
	}

	// In WeChat (or on a phone) the mobile link comes first.
	got = e.start("", map[string]string{"User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0"})
	if got.code != http.StatusOK || strings.Index(got.body, `id="mobile"`) > strings.Index(got.body, `id="pc"`) {
		t.Fatalf("in WeChat: HTTP %d, the mobile link is not first", got.code)
	}
	if q := links(t, got.body)["pc"].Query(); q.Get("auth_type") != "3" || q.Has("biz_appid") {
		t.Fatalf("without a query or spec: %v, want auth_type 3 and no biz_appid", q)
	}
}

func TestTheStartPageRefusesQueriesItDoesNotExpect(t *testing.T) {
	e := newMsgEnv(t, withStartPage(func(p *wechatv1alpha1.AuthorizePage, _ *Options) {
		p.BizAppID = tAccountAppID
	}))
	m := e.runFakeManager("preauthcode@@@x", "")
	for _, query := range []string{
		"?auth_type=4", "?auth_type=0", "?auth_type=1&auth_type=2", "?auth_type=%31%32", "?auth_type=",
		"?biz_appid=wxABCDEF0123456789", "?biz_appid=wx0123", "?biz_appid=wxffffffffffffffff", // the spec names another
		"?redirect_uri=https://evil.example/", "?auth_type=1;x", "?%zz", "?" + strings.Repeat("a", 300),
	} {
		if got := e.start(query, nil); got.code != http.StatusBadRequest {
			t.Errorf("%q: HTTP %d, want 400", query, got.code)
		}
	}
	if got := e.start("", map[string]string{"Host": "under_score.example"}); got.code != http.StatusBadRequest {
		t.Errorf("a Host that is no host name: HTTP %d, want 400", got.code)
	}
	if m.answered.Load() != 0 || len(e.component().Status.AuthorizeLinkRequests) != 0 {
		t.Fatal("a refused query recorded a request")
	}
	// The spec's own appid in the query is fine.
	if got := e.start("?biz_appid="+tAccountAppID, nil); got.code != http.StatusOK {
		t.Fatalf("the spec's biz_appid: HTTP %d", got.code)
	}
}

func TestTheStartPageIsRateLimitedPerClientAndPerComponent(t *testing.T) {
	e := newMsgEnv(t, withStartPage(func(_ *wechatv1alpha1.AuthorizePage, o *Options) {
		o.AuthorizePageClientBurst, o.AuthorizePageClientRate = 2, time.Minute
		o.AuthorizePageBurst, o.AuthorizePageRate = 3, time.Minute
		o.ClientIPHeader = "X-Real-IP"
	}))
	m := e.runFakeManager("preauthcode@@@limited", "")
	from := func(ip string) map[string]string { return map[string]string{"X-Real-IP": ip} }
	for i := range 2 {
		if got := e.start("", from("203.0.113.7")); got.code != http.StatusOK {
			t.Fatalf("visit %d: HTTP %d", i, got.code)
		}
	}
	got := e.start("", from("203.0.113.7"))
	if got.code != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" {
		t.Fatalf("third visit from one client: HTTP %d Retry-After %q, want 429 with Retry-After", got.code, got.header.Get("Retry-After"))
	}
	if got := e.start("", from("198.51.100.1")); got.code != http.StatusOK {
		t.Fatalf("another client: HTTP %d", got.code)
	}
	if got := e.start("", from("198.51.100.2")); got.code != http.StatusTooManyRequests {
		t.Fatalf("over the component's burst of 3: HTTP %d, want 429", got.code)
	}
	if n := m.answered.Load(); n != 3 {
		t.Fatalf("the manager was asked %d times, want 3 (refused visits ask nothing)", n)
	}
	e.clock.Step(time.Minute)
	if got := e.start("", from("203.0.113.7")); got.code != http.StatusOK {
		t.Fatalf("a minute later: HTTP %d", got.code)
	}
}

func TestTheStartPageKeysClientsByTheNearestProxysEntry(t *testing.T) {
	s := &Server{clientIPHeader: "X-Forwarded-For"}
	for name, tc := range map[string]struct {
		lines []string
		peer  string
		want  string
	}{
		"one line, the proxy's entry last": {[]string{"198.51.100.9, 203.0.113.7"}, "10.0.0.1:4000", "203.0.113.7"},
		"a forged line before the proxy's": {[]string{"198.51.100.9", "203.0.113.7"}, "10.0.0.1:4000", "203.0.113.7"},
		"no header: the peer":              {nil, "192.0.2.4:4000", "192.0.2.4"},
		"junk in the header: the peer":     {[]string{"not-an-ip"}, "192.0.2.4:4000", "192.0.2.4"},
		"IPv6 by its /64":                  {[]string{"2001:db8:1:2:aaaa::1"}, "10.0.0.1:4000", "2001:db8:1:2::/64"},
		"IPv6 peer by its /64":             {nil, "[2001:db8:1:2:bbbb::9]:4000", "2001:db8:1:2::/64"},
	} {
		r := &http.Request{Header: http.Header{}, RemoteAddr: tc.peer}
		for _, l := range tc.lines {
			r.Header.Add("X-Forwarded-For", l)
		}
		if got := s.clientIP(r); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

func TestTheStartPageAnswers503WhenTheManagerDoesNot(t *testing.T) {
	e := newMsgEnv(t, withStartPage(func(_ *wechatv1alpha1.AuthorizePage, o *Options) {
		o.AuthorizePageTimeout = 300 * time.Millisecond
	}))
	began := time.Now()
	got := e.start("", nil)
	took := time.Since(began)
	if got.code != http.StatusServiceUnavailable || got.header.Get("Retry-After") != retryAfterSeconds || !strings.Contains(got.body, "Please try again") {
		t.Fatalf("HTTP %d Retry-After %q: want 503, Retry-After and a page that says try again", got.code, got.header.Get("Retry-After"))
	}
	if took < 300*time.Millisecond || took > 3*time.Second {
		t.Fatalf("answered after %s, want the 300ms timeout", took)
	}
	if reqs := e.component().Status.AuthorizeLinkRequests; len(reqs) != 0 {
		t.Fatalf("the unanswered request stays in status: %+v", reqs)
	}
	if n := e.pushes("authorize_page", resultNoAnswer); n != 1 {
		t.Fatalf("authorize_page no_answer = %v, want 1 (not persist_error: nothing failed to persist)", n)
	}

}

func TestTheStartPageShowsAFailureAnswerAtOnce(t *testing.T) {
	// A timeout far longer than the test may take: an answer that waited for it would fail.
	e := newMsgEnv(t, withStartPage(func(_ *wechatv1alpha1.AuthorizePage, o *Options) {
		o.AuthorizePageTimeout = time.Minute
	}))
	e.runFakeManager("", wechatv1alpha1.ReasonWeChatBusy)
	began := time.Now()
	got := e.start("", nil)
	if got.code != http.StatusServiceUnavailable || !strings.Contains(got.body, "Please try again") {
		t.Fatalf("a failure answer: HTTP %d, want 503 and a page that says try again", got.code)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Fatalf("a failure answer came after %s: it waited for the timeout", took)
	}
}

func TestTheStartPageKeepsStatusBounded(t *testing.T) {
	e := newMsgEnv(t, withStartPage(func(_ *wechatv1alpha1.AuthorizePage, o *Options) {
		o.AuthorizePageTimeout = 100 * time.Millisecond
		o.AuthorizePageBurst, o.AuthorizePageClientBurst = 100, 100
	}))
	// Requests that a stuck receiver left behind fill the list.
	c := e.component()
	now := metav1.NewTime(e.clock.Now())
	for i := range wechatv1alpha1.MaxAuthorizeLinkRequests {
		c.Status.AuthorizeLinkRequests = append(c.Status.AuthorizeLinkRequests, wechatv1alpha1.AuthorizeLinkRequest{ID: strings.Repeat(string(rune('a'+i)), 22), RequestedAt: now})
	}
	if err := e.client.Status().Update(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if got := e.start("", nil); got.code != http.StatusTooManyRequests {
		t.Fatalf("with %d requests in status: HTTP %d, want 429", wechatv1alpha1.MaxAuthorizeLinkRequests, got.code)
	}
	if n := len(e.component().Status.AuthorizeLinkRequests); n != wechatv1alpha1.MaxAuthorizeLinkRequests {
		t.Fatalf("%d requests in status, want the cap", n)
	}
	// Once they are a minute old they give way.
	e.clock.Step(linkRequestLifetime)
	if got := e.start("", nil); got.code != http.StatusServiceUnavailable {
		t.Fatalf("after the old requests expired: HTTP %d, want 503 (recorded, but nobody answers)", got.code)
	}
	if n := len(e.component().Status.AuthorizeLinkRequests); n != 0 {
		t.Fatalf("%d requests left, want the expired ones pruned and ours removed", n)
	}
}

// FuzzParseAuthorizeQuery: the query comes from anyone on the internet; whatever is
// accepted must be one of the few values the page puts into a link.
func FuzzParseAuthorizeQuery(f *testing.F) {
	for _, s := range []string{"", "auth_type=1", "biz_appid=wx0123456789abcdef&auth_type=3", "auth_type=1&auth_type=1", "%zz", "auth_type=1;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseAuthorizeQuery(raw)
		if err != nil {
			return
		}
		if q.authType < 0 || q.authType > 3 || (q.bizAppID != "" && !appIDPattern.MatchString(q.bizAppID)) {
			t.Fatalf("accepted %q as %+v", raw, q)
		}
	})
}
