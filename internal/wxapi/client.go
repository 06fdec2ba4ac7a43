/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package wxapi is the typed client for the WeChat Open Platform third-party
// platform ("component") endpoints. Every WeChat call of the operator goes
// through one Client: it rate limits, bounds concurrency, times out, retries
// only what is safe to retry, records metrics, and never lets a token or a
// URL query into an error, a log line or a metric label.
package wxapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// DefaultBaseURL is WeChat's API host.
const DefaultBaseURL = "https://api.weixin.qq.com"

// Defaults applied by New to zero-valued Options fields.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultRateLimit      = rate.Limit(10)
	DefaultBurst          = 10
	DefaultMaxConcurrency = 4
	DefaultMaxAttempts    = 3
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second

	maxResponseBytes = 4 << 20
)

// RetryPolicy bounds retries of failed attempts. Only failures that are safe
// to repeat are retried: errcode -1 (busy), transport errors and HTTP 5xx/429
// on calls that may be repeated, and, for calls that must not be repeated
// blindly (the code exchange api_query_auth and clear_quota, whose resets are
// limited per month), only failures where the request never left this
// process (the connection could not be opened).
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, first included. 0 means
	// DefaultMaxAttempts; 1 disables retries.
	MaxAttempts int
	// InitialBackoff is the wait before the second attempt; it doubles for
	// every further attempt. 0 means DefaultInitialBackoff.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait between attempts. 0 means DefaultMaxBackoff.
	MaxBackoff time.Duration
}

// Options configure a Client. The zero value is usable.
type Options struct {
	// BaseURL is scheme://host[:port] of the API; DefaultBaseURL if empty.
	BaseURL string
	// HTTPClient performs the requests; a client with its own transport if
	// nil. Redirects are never followed, whatever its CheckRedirect says.
	HTTPClient *http.Client
	// Timeout bounds one HTTP attempt; DefaultTimeout if 0.
	Timeout time.Duration
	// Limiter is shared by every call of the client (and of other clients
	// given the same limiter). If nil, one is made from RateLimit and Burst.
	Limiter *rate.Limiter
	// RateLimit is the sustained request rate when Limiter is nil;
	// DefaultRateLimit if 0. rate.Inf disables rate limiting.
	RateLimit rate.Limit
	// Burst is the limiter's burst when Limiter is nil; DefaultBurst if 0.
	Burst int
	// MaxConcurrency bounds the requests in flight; DefaultMaxConcurrency if 0.
	MaxConcurrency int
	// Retry is the retry policy.
	Retry RetryPolicy
	// Clock drives rate limiting and backoff waits; the real clock if nil.
	Clock clock.Clock
	// Metrics receives request counts and latencies; DefaultMetrics if nil.
	Metrics *Metrics
	// Logger receives one V(1) line per failed attempt (endpoint, attempt,
	// outcome): never a token, a URL or a request body.
	Logger logr.Logger
	// UserAgent is sent with every request; "wechat-operator" if empty.
	UserAgent string
}

// Client calls the WeChat Open Platform component endpoints. It is safe for
// concurrent use; share one per process.
type Client struct {
	base      *url.URL
	hc        *http.Client
	timeout   time.Duration
	limiter   *rate.Limiter
	sem       chan struct{}
	waiting   atomic.Int64 // calls waiting for a concurrency slot (tests)
	retry     RetryPolicy
	clock     clock.Clock
	metrics   *Metrics
	log       logr.Logger
	userAgent string
}

// New returns a Client. An invalid BaseURL makes every call fail.
func New(opts Options) *Client {
	c := &Client{
		timeout:   opts.Timeout,
		limiter:   opts.Limiter,
		retry:     opts.Retry,
		clock:     opts.Clock,
		metrics:   opts.Metrics,
		log:       opts.Logger,
		userAgent: opts.UserAgent,
	}
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	if u, err := url.Parse(strings.TrimRight(base, "/")); err == nil && u.Scheme != "" && u.Host != "" {
		u.RawQuery, u.Fragment = "", ""
		c.base = u
	}
	if opts.HTTPClient != nil {
		hc := *opts.HTTPClient
		c.hc = &hc
	} else {
		c.hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.limiter == nil {
		r, b := opts.RateLimit, opts.Burst
		if r == 0 {
			r = DefaultRateLimit
		}
		if b <= 0 {
			b = DefaultBurst
		}
		c.limiter = rate.NewLimiter(r, b)
	}
	n := opts.MaxConcurrency
	if n <= 0 {
		n = DefaultMaxConcurrency
	}
	c.sem = make(chan struct{}, n)
	if c.retry.MaxAttempts <= 0 {
		c.retry.MaxAttempts = DefaultMaxAttempts
	}
	if c.retry.InitialBackoff <= 0 {
		c.retry.InitialBackoff = DefaultInitialBackoff
	}
	if c.retry.MaxBackoff <= 0 {
		c.retry.MaxBackoff = DefaultMaxBackoff
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	if c.metrics == nil {
		c.metrics = DefaultMetrics
	}
	if c.log.GetSink() == nil {
		c.log = logr.Discard()
	}
	if c.userAgent == "" {
		c.userAgent = "wechat-operator"
	}
	return c
}

// retryClass says which failures of an endpoint may be retried.
type retryClass int

const (
	// retrySafe: busy, transport errors, HTTP 5xx and 429.
	retrySafe retryClass = iota
	// retryIfNotSent: only failures where the request never left.
	retryIfNotSent
)

type endpoint struct {
	name  string
	retry retryClass
	// path is the URL path; "/cgi-bin/component/<name>" if empty.
	path string
	// tokenParam is the query parameter the token goes in; "component_access_token" if empty.
	tokenParam string
	// get: a GET whose parameters are the url.Values body, added to the query (getticket).
	get bool
}

func (ep endpoint) urlPath() string {
	if ep.path != "" {
		return ep.path
	}
	return "/cgi-bin/component/" + ep.name
}

func (ep endpoint) tokenQuery() string {
	if ep.tokenParam != "" {
		return ep.tokenParam
	}
	return "component_access_token"
}

// apiStatus is the errcode/errmsg pair every WeChat answer may carry.
type apiStatus struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (s *apiStatus) status() *apiStatus { return s }

type response interface{ status() *apiStatus }

// call POSTs body as JSON to the endpoint, with the access token (if any) in
// the query, and decodes the answer into out. secrets are scrubbed from every
// error text.
func (c *Client) call(ctx context.Context, ep endpoint, accessToken string, body any, out response, secrets redactor) error {
	if c.base == nil {
		return fmt.Errorf("wechat %s: invalid base URL", ep.name)
	}
	query := url.Values{}
	var payload []byte
	if params, ok := body.(url.Values); ok && ep.get {
		query = params
	} else {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("wechat %s: encoding request: %w", ep.name, err)
		}
	}
	u := *c.base
	u.Path = c.base.Path + ep.urlPath()
	if accessToken != "" {
		query.Set(ep.tokenQuery(), accessToken)
	}
	u.RawQuery = query.Encode()
	target := u.String()

	for attempt := 1; ; attempt++ {
		err := c.attempt(ctx, ep.name, target, payload, out, secrets)
		if err == nil {
			return nil
		}
		if attempt >= c.retry.MaxAttempts || !retryable(ep.retry, err) || ctx.Err() != nil {
			c.log.V(1).Info("wechat call failed", "api", ep.name, "attempt", attempt, "outcome", outcome(err), "error", err.Error())
			return err
		}
		wait := c.backoff(attempt)
		c.log.V(1).Info("wechat call failed, retrying", "api", ep.name, "attempt", attempt, "outcome", outcome(err), "retryIn", wait.String())
		t := c.clock.NewTimer(wait)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.InitialBackoff
	for i := 1; i < attempt && d < c.retry.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, c.retry.MaxBackoff)
}

func retryable(class retryClass, err error) bool {
	var netErr *NetworkError
	isNet := errors.As(err, &netErr)
	if isNet && netErr.Kind == "canceled" {
		return false
	}
	if class == retryIfNotSent {
		return isNet && netErr.NotSent
	}
	if IsBusy(err) {
		return true
	}
	if !isNet {
		return false
	}
	if strings.HasPrefix(netErr.Kind, "http_") {
		status, _ := strconv.Atoi(strings.TrimPrefix(netErr.Kind, "http_"))
		return status >= 500 || status == http.StatusTooManyRequests
	}
	return netErr.Kind != "invalid_response"
}

// outcome is the errcode label for an attempt's result.
func outcome(err error) string {
	if err == nil {
		return "0"
	}
	if code, ok := Code(err); ok {
		return strconv.Itoa(code)
	}
	var netErr *NetworkError
	if errors.As(err, &netErr) {
		return netErr.Kind
	}
	return "error"
}

// acquire waits for the rate limiter and a concurrency slot.
func (c *Client) acquire(ctx context.Context, api string) (release func(), err error) {
	if err := c.waitLimiter(ctx); err != nil {
		return nil, fmt.Errorf("wechat %s: waiting for rate limiter: %w", api, err)
	}
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	select {
	case c.sem <- struct{}{}:
		return func() { <-c.sem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wechat %s: waiting for a concurrency slot: %w", api, ctx.Err())
	}
}

func (c *Client) waitLimiter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := c.clock.Now()
	r := c.limiter.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("rate limiter burst is 0")
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	t := c.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		r.CancelAt(c.clock.Now())
		return ctx.Err()
	}
}

func (c *Client) attempt(ctx context.Context, api, target string, payload []byte, out response, secrets redactor) error {
	release, err := c.acquire(ctx, api)
	if err != nil {
		return err
	}
	defer release()

	start := time.Now()
	err = c.roundTrip(ctx, api, target, payload, out, secrets)
	c.metrics.observe(api, outcome(err), time.Since(start))
	return err
}

func (c *Client) roundTrip(ctx context.Context, api, target string, payload []byte, out response, secrets redactor) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	method, reqBody := http.MethodPost, io.Reader(bytes.NewReader(payload))
	if payload == nil {
		method, reqBody = http.MethodGet, nil
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reqBody)
	if err != nil {
		return newNetworkError(api, err, secrets)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)

	resp, err := c.hc.Do(req)
	if err != nil {
		return newNetworkError(api, err, secrets)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return newHTTPStatusError(api, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return newNetworkError(api, err, secrets)
	}
	if len(data) > maxResponseBytes {
		return newInvalidResponseError(api, errors.New("response body too large"), secrets)
	}
	st := out.status()
	*st = apiStatus{}
	if err := json.Unmarshal(data, out); err != nil {
		// Decode the status alone: an error answer may not fit out's shape.
		var only apiStatus
		if json.Unmarshal(data, &only) != nil || only.ErrCode == 0 {
			return newInvalidResponseError(api, errors.New("body is not the expected JSON"), secrets)
		}
		*st = only
	}
	if st.ErrCode != 0 {
		return &APIError{API: api, Code: st.ErrCode, Msg: secrets.apply(st.ErrMsg)}
	}
	return nil
}
