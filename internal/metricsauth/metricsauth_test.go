/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package metricsauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// apiServer answers TokenReviews and SubjectAccessReviews as the API server would for the
// users and permissions it is given, and counts them. (The manager's envtest spec asks a
// real API server; this one counts what the caches save.)
type apiServer struct {
	users       map[string]authenticationv1.UserInfo // token → user
	allowed     map[string]bool                      // user → may get /metrics
	fail        error                                // what TokenReviews answer, if set
	accessFail  error                                // what SubjectAccessReviews answer, if set
	denied      map[string]bool                      // user → explicitly denied
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
		if s.accessFail != nil {
			return true, nil, s.accessFail
		}
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		s.lastAccess = r.Spec
		na := r.Spec.NonResourceAttributes
		r.Status.Allowed = s.allowed[r.Spec.User] && na != nil && na.Verb == "get" && na.Path == "/metrics"
		r.Status.Denied = s.denied[r.Spec.User]
		return true, r, nil
	})
	g := NewGate(cs.AuthenticationV1().TokenReviews(), cs.AuthorizationV1().SubjectAccessReviews(), c)
	g.backoff.Duration = 0
	return g
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
			"scraper-token": {Username: "system:serviceaccount:monitoring:prometheus", UID: "7f3c", Groups: []string{"system:serviceaccounts"},
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

	// Read as the API server reads the header: "Bearer  x" has an empty token, "Bearer x y" the token x.
	for _, header := range []string{"", "Bearer", "Bearer ", "Basic c2NyYXBlcjp4", "scraper-token", "Bearer  scraper-token", "Token scraper-token"} {
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
	if code, _ := serve(t, h, "/metrics", "bearer scraper-token trailing"); code != http.StatusOK {
		t.Errorf("an allowed user: %d, want 200", code)
	}
	if len(seenAuthorization) != 1 || seenAuthorization[0] != "" {
		t.Errorf("the handler saw Authorization %q, want it removed", seenAuthorization)
	}
	want := authorizationv1.SubjectAccessReviewSpec{
		User: "system:serviceaccount:monitoring:prometheus", UID: "7f3c", Groups: []string{"system:serviceaccounts"},
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

	// Within the TTLs every answer is reused, each for its own token and user: no review at all.
	clock.Step(29 * time.Second)
	for header, want := range map[string]int{"Bearer made-up": 401, "Bearer nobody-token": 403, "Bearer scraper-token": 200} {
		if code, _ := serve(t, h, "/metrics", header); code != want {
			t.Errorf("%s within the TTLs: %d, want %d", header, code, want)
		}
	}
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

	// A denial wins over a grant.
	s.allowed = map[string]bool{"system:serviceaccount:default:nobody": true}
	s.denied = map[string]bool{"system:serviceaccount:default:nobody": true}
	clock.Step(5 * time.Minute)
	if code, _ := serve(t, h, "/metrics", "Bearer nobody-token"); code != http.StatusForbidden {
		t.Errorf("allowed and denied: %d, want 403", code)
	}

	// When the API server cannot be asked, nobody is let in.
	s.accessFail = errors.New("connection refused")
	clock.Step(5 * time.Minute)
	calls := s.accessCalls
	if code, _ := serve(t, h, "/metrics", "Bearer scraper-token"); code != http.StatusInternalServerError {
		t.Errorf("SubjectAccessReview failing: %d, want 500", code)
	}
	if s.accessCalls-calls != maxTries {
		t.Errorf("%d SubjectAccessReviews for an unreachable API server, want %d", s.accessCalls-calls, maxTries)
	}
	s.fail = errors.New("connection refused")
	clock.Step(time.Minute)
	calls = s.tokenCalls
	if code, body := serve(t, h, "/metrics", "Bearer scraper-token"); code != http.StatusInternalServerError {
		t.Errorf("TokenReview failing: %d %q, want 500", code, body)
	}
	if s.tokenCalls-calls != maxTries {
		t.Errorf("%d TokenReviews for an unreachable API server, want %d", s.tokenCalls-calls, maxTries)
	}
	// A refusal (the manager not allowed to create TokenReviews) is not retried.
	s.fail = apierrors.NewForbidden(schema.GroupResource{Group: "authentication.k8s.io", Resource: "tokenreviews"}, "", errors.New("RBAC"))
	calls = s.tokenCalls
	if code, _ := serve(t, h, "/metrics", "Bearer scraper-token"); code != http.StatusInternalServerError || s.tokenCalls-calls != 1 {
		t.Errorf("TokenReview refused: %d after %d tries, want 500 after 1", code, s.tokenCalls-calls)
	}
}

// Tokens a caller makes up cannot push a scraper's answer out of the cache.
func TestMadeUpTokensDoNotEvictAScrapersToken(t *testing.T) {
	s := &apiServer{
		users:   map[string]authenticationv1.UserInfo{"scraper-token": {Username: "prometheus"}},
		allowed: map[string]bool{"prometheus": true},
	}
	g := s.gate(clocktesting.NewFakeClock(time.Now()))
	h, _ := g.Filter(logr.Discard(), http.NotFoundHandler())
	serve(t, h, "/metrics", "Bearer scraper-token")
	for i := range 3 * cacheSize {
		serve(t, h, "/metrics", fmt.Sprintf("Bearer made-up-%d", i))
	}
	if n := g.refused.Len(); n != cacheSize {
		t.Errorf("%d refused tokens cached, want %d", n, cacheSize)
	}
	calls := s.tokenCalls
	serve(t, h, "/metrics", "Bearer scraper-token")
	if s.tokenCalls != calls {
		t.Error("the scraper's token was reviewed again after a flood of made-up tokens")
	}
}

// slowReviews answers every TokenReview "not authenticated" once release is closed, and tells
// entered of each (client-go's fake clientset serves one request at a time, so it cannot
// hold several in flight).
type slowReviews struct {
	authenticationclient.TokenReviewInterface
	entered, release chan struct{}
	calls            atomic.Int32
}

func (s *slowReviews) Create(_ context.Context, r *authenticationv1.TokenReview, _ metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	s.calls.Add(1)
	s.entered <- struct{}{}
	<-s.release
	return r, nil
}

// A flood of requests with new tokens costs the API server at most maxInFlight reviews at a time.
func TestReviewsInFlightAreBounded(t *testing.T) {
	reviews := &slowReviews{entered: make(chan struct{}), release: make(chan struct{})}
	g := NewGate(reviews, nil, clocktesting.NewFakeClock(time.Now()))
	h, _ := g.Filter(logr.Discard(), http.NotFoundHandler())
	codes := make(chan int, maxInFlight)
	for i := range maxInFlight {
		go func() {
			code, _ := serve(t, h, "/metrics", fmt.Sprintf("Bearer made-up-%d", i))
			codes <- code
		}()
		<-reviews.entered
	}
	if code, _ := serve(t, h, "/metrics", "Bearer one-more"); code != http.StatusServiceUnavailable {
		t.Errorf("with %d reviews in flight: %d, want 503", maxInFlight, code)
	}
	close(reviews.release)
	for range maxInFlight {
		if code := <-codes; code != http.StatusUnauthorized {
			t.Errorf("a made-up token: %d, want 401", code)
		}
	}
	if n := reviews.calls.Load(); n != maxInFlight {
		t.Errorf("%d TokenReviews, want %d", n, maxInFlight)
	}
}

// TestConcurrentRequestsShareOneReview: requests with the same token that all miss the caches
// before the API server has answered (a burst of scrapes, or after the answer expired) share
// one TokenReview and one SubjectAccessReview, and so one in-flight slot: more of them than
// maxInFlight are all served, none answered 503.
func TestConcurrentRequestsShareOneReview(t *testing.T) {
	const requests = 3 * maxInFlight
	s := &apiServer{
		users:   map[string]authenticationv1.UserInfo{"scraper-token": {Username: "prometheus"}},
		allowed: map[string]bool{"prometheus": true},
	}
	g := s.gate(clocktesting.NewFakeClock(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)))
	// Each review waits until every request has missed the cache it answers for (the API
	// server's answers held back), so without the sharing each request would ask on its own:
	// the TokenReview for the first requests misses, the SubjectAccessReview for the next.
	var tokenMissed, accessMissed sync.WaitGroup
	tokenMissed.Add(requests)
	accessMissed.Add(requests)
	var misses atomic.Int32
	g.afterMiss = func() {
		switch n := misses.Add(1); {
		case n <= requests:
			tokenMissed.Done()
		case n <= 2*requests:
			accessMissed.Done()
		}
	}
	// Without the sharing, fewer requests than that reach the SubjectAccessReview (the rest
	// are answered 503): the wait gives up after a while rather than hang the test.
	all := func(wg *sync.WaitGroup) func() {
		return func() {
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
			}
		}
	}
	g.tokens = blockingReviews{TokenReviewInterface: g.tokens, wait: all(&tokenMissed)}
	g.access = blockingAccess{SubjectAccessReviewInterface: g.access, wait: all(&accessMissed)}
	h, _ := g.Filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) }))
	codes := make(chan int, requests)
	for range requests {
		go func() {
			code, _ := serve(t, h, "/metrics", "Bearer scraper-token")
			codes <- code
		}()
	}
	for range requests {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("a scrape: %d, want 200", code)
		}
	}
	if s.tokenCalls != 1 || s.accessCalls != 1 {
		t.Fatalf("%d requests at once: %d TokenReviews and %d SubjectAccessReviews, want 1 each", requests, s.tokenCalls, s.accessCalls)
	}
}

// blockingReviews and blockingAccess hold a review back until wait returns.
type blockingReviews struct {
	authenticationclient.TokenReviewInterface
	wait func()
}

func (b blockingReviews) Create(ctx context.Context, r *authenticationv1.TokenReview, o metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	b.wait()
	return b.TokenReviewInterface.Create(ctx, r, o)
}

type blockingAccess struct {
	authorizationclient.SubjectAccessReviewInterface
	wait func()
}

func (b blockingAccess) Create(ctx context.Context, r *authorizationv1.SubjectAccessReview, o metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error) {
	b.wait()
	return b.SubjectAccessReviewInterface.Create(ctx, r, o)
}
