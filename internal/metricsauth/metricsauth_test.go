/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package metricsauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// apiServer answers TokenReviews and SubjectAccessReviews as the API server would for the
// users and permissions it is given, and counts them. (The manager's envtest spec asks a
// real API server; this one counts what the caches save.)
type apiServer struct {
	users       map[string]authenticationv1.UserInfo // token → user
	allowed     map[string]bool                      // user → may get /metrics
	fail        error
	tokenCalls  int
	accessCalls int
	lastAccess  authorizationv1.SubjectAccessReviewSpec
}

func (s *apiServer) gate(c *clocktesting.FakeClock) *Gate {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s.tokenCalls++
		if s.fail != nil {
			return true, nil, s.fail
		}
		r := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		u, ok := s.users[r.Spec.Token]
		r.Status = authenticationv1.TokenReviewStatus{Authenticated: ok, User: u}
		return true, r, nil
	})
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s.accessCalls++
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		s.lastAccess = r.Spec
		na := r.Spec.NonResourceAttributes
		r.Status.Allowed = s.allowed[r.Spec.User] && na != nil && na.Verb == "get" && na.Path == "/metrics"
		return true, r, nil
	})
	return NewGate(cs.AuthenticationV1().TokenReviews(), cs.AuthorizationV1().SubjectAccessReviews(), c)
}

func serve(t *testing.T, h http.Handler, path, authorization string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestGate(t *testing.T) {
	s := &apiServer{
		users: map[string]authenticationv1.UserInfo{
			"scraper-token": {Username: "system:serviceaccount:monitoring:prometheus", Groups: []string{"system:serviceaccounts"},
				Extra: map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"prometheus-0"}}},
			"nobody-token": {Username: "system:serviceaccount:default:nobody"},
		},
		allowed: map[string]bool{"system:serviceaccount:monitoring:prometheus": true},
	}
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	var seenAuthorization []string
	h, err := s.gate(clock).Filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenAuthorization = append(seenAuthorization, r.Header.Get("Authorization"))
		_, _ = w.Write([]byte("metrics"))
	}))
	if err != nil {
		t.Fatal(err)
	}

	for _, header := range []string{"", "Bearer", "Bearer ", "Basic c2NyYXBlcjp4", "scraper-token", "Bearer scraper-token extra"} {
		if code, _ := serve(t, h, "/metrics", header); code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", header, code)
		}
	}
	if s.tokenCalls != 0 {
		t.Errorf("%d TokenReviews for requests without a bearer token, want 0", s.tokenCalls)
	}

	if code, _ := serve(t, h, "/metrics", "Bearer made-up"); code != http.StatusUnauthorized {
		t.Errorf("a token the API server does not know: %d, want 401", code)
	}
	if code, body := serve(t, h, "/metrics", "Bearer nobody-token"); code != http.StatusForbidden {
		t.Errorf("a user without get /metrics: %d %q, want 403", code, body)
	}
	if code, _ := serve(t, h, "/metrics", "bearer  scraper-token"); code != http.StatusOK {
		t.Errorf("an allowed user: %d, want 200", code)
	}
	if len(seenAuthorization) != 1 || seenAuthorization[0] != "" {
		t.Errorf("the handler saw Authorization %q, want it removed", seenAuthorization)
	}
	want := authorizationv1.SubjectAccessReviewSpec{
		User: "system:serviceaccount:monitoring:prometheus", Groups: []string{"system:serviceaccounts"},
		Extra:                 map[string]authorizationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"prometheus-0"}},
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
	}
	if fmt.Sprint(s.lastAccess) != fmt.Sprint(want) {
		t.Errorf("SubjectAccessReview %+v, want %+v", s.lastAccess, want)
	}
	if code, _ := serve(t, h, "/debug/pprof", "Bearer scraper-token"); code != http.StatusForbidden {
		t.Errorf("an allowed user on another path: %d, want 403", code)
	}
	if s.tokenCalls != 3 || s.accessCalls != 3 {
		t.Fatalf("%d TokenReviews, %d SubjectAccessReviews, want 3 and 3", s.tokenCalls, s.accessCalls)
	}

	// Within the TTLs every answer is reused: no review at all.
	clock.Step(29 * time.Second)
	serve(t, h, "/metrics", "Bearer made-up")
	serve(t, h, "/metrics", "Bearer nobody-token")
	serve(t, h, "/metrics", "Bearer scraper-token")
	if s.tokenCalls != 3 || s.accessCalls != 3 {
		t.Errorf("within the TTLs: %d TokenReviews, %d SubjectAccessReviews, want still 3 and 3", s.tokenCalls, s.accessCalls)
	}
	// A denial is asked again after 30 s, an authentication after a minute, an allowance after five.
	clock.Step(2 * time.Second)
	serve(t, h, "/metrics", "Bearer nobody-token")
	if s.tokenCalls != 3 || s.accessCalls != 4 {
		t.Errorf("after 31 s: %d TokenReviews, %d SubjectAccessReviews, want 3 and 4", s.tokenCalls, s.accessCalls)
	}
	clock.Step(30 * time.Second)
	serve(t, h, "/metrics", "Bearer scraper-token")
	if s.tokenCalls != 4 || s.accessCalls != 4 {
		t.Errorf("after 61 s: %d TokenReviews, %d SubjectAccessReviews, want 4 and 4", s.tokenCalls, s.accessCalls)
	}
	clock.Step(4 * time.Minute)
	if code, _ := serve(t, h, "/metrics", "Bearer scraper-token"); code != http.StatusOK {
		t.Errorf("after 5 min: %d, want 200", code)
	}
	if s.tokenCalls != 5 || s.accessCalls != 5 {
		t.Errorf("after 5 min 1 s: %d TokenReviews, %d SubjectAccessReviews, want 5 and 5", s.tokenCalls, s.accessCalls)
	}

	// A revoked permission stops working within the allowance's TTL.
	s.allowed = nil
	clock.Step(5 * time.Minute)
	if code, _ := serve(t, h, "/metrics", "Bearer scraper-token"); code != http.StatusForbidden {
		t.Errorf("after the permission was removed: %d, want 403", code)
	}

	// When the API server cannot be asked, nobody is let in.
	s.fail = errors.New("connection refused")
	clock.Step(time.Minute)
	if code, body := serve(t, h, "/metrics", "Bearer scraper-token"); code != http.StatusInternalServerError {
		t.Errorf("TokenReview failing: %d %q, want 500", code, body)
	}
}

// Tokens a caller makes up cannot grow the caches without bound.
func TestGateCachesAreBounded(t *testing.T) {
	s := &apiServer{}
	g := s.gate(clocktesting.NewFakeClock(time.Now()))
	h, _ := g.Filter(logr.Discard(), http.NotFoundHandler())
	for i := range 3 * cacheSize {
		serve(t, h, "/metrics", fmt.Sprintf("Bearer token-%d", i))
	}
	if n := g.users.Len(); n > cacheSize {
		t.Errorf("%d tokens cached, want at most %d", n, cacheSize)
	}
	if s.tokenCalls != 3*cacheSize {
		t.Errorf("%d TokenReviews for %d distinct tokens", s.tokenCalls, 3*cacheSize)
	}
}
