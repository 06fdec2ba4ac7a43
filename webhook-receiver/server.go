/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package receiver is the webhook receiver: the internet-facing endpoint of WeChat's pushes
// to the 授权事件接收URL. It verifies and decrypts each push with the component's keys (from
// the keyring Secret the manager writes), records what it carries on the custom resources'
// status, and answers "success". It also serves the 消息与事件接收URL of the authorized
// accounts (messages.go): the 全网发布 test responder and forwarding to apps. It never holds
// an access token, and never logs a ticket, code, token, key or message content.
package receiver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes    = 64 << 10
	DefaultTimestampWindow = 5 * time.Minute
	// MaxTimestampWindow caps the window (the CRD's spec.receiver.timestampWindow says the
	// same): the replay cache remembers a push until its timestamp leaves the window.
	MaxTimestampWindow = time.Hour
	// DefaultPersistTimeout leaves WeChat's 5-second deadline room for the network.
	DefaultPersistTimeout = 4 * time.Second
	// defaultReplayEntries bounds the replay cache's memory (about 70 bytes an entry):
	// 100,000 pushes inside the window, 333 a second with the default 5 minutes.
	defaultReplayEntries = 100_000
	// defaultAuthCodeLifetime applies when a push lacks AuthorizationCodeExpiredTime.
	defaultAuthCodeLifetime = time.Hour
)

// Options configure a Server.
type Options struct {
	// Reader reads WeChatComponents, WeChatAuthorizers and the keyring Secret; an informer
	// cache in production.
	Reader client.Reader
	// AuthorizersIndexed says Reader has AuthorizerIndex (IndexAuthorizers): a message then
	// reads its account's WeChatAuthorizer alone rather than all of the namespace's.
	AuthorizersIndexed bool
	// APIReader reads uncached, after a write conflict.
	APIReader client.Reader
	// Client writes status.
	Client client.Client
	// Keyring is the keyring Secret the manager projects component keys into.
	Keyring types.NamespacedName
	// Clock is the time source; tests use a fake one.
	Clock clock.PassiveClock
	// MaxBodyBytes caps a push body; larger ones get 413. DefaultMaxBodyBytes if 0.
	MaxBodyBytes int64
	// TimestampWindow is how far a push's timestamp may be from now, unless the component
	// says otherwise. DefaultTimestampWindow if 0; at most MaxTimestampWindow.
	TimestampWindow time.Duration
	// PersistTimeout bounds the status write of one push. DefaultPersistTimeout if 0.
	PersistTimeout time.Duration
	// Metrics receives push counts.
	Metrics *Metrics
	// Recorder emits Events on WeChatComponents (for example an authorization that has no
	// WeChatAuthorizer to be recorded on). Optional.
	Recorder events.EventRecorder
	// ForwardTimeout is how long an app may take to answer a forwarded message, unless its
	// forwarding target says less. DefaultForwardTimeout if 0; at most MaxForwardTimeout.
	ForwardTimeout time.Duration
	// ForwardClient sends forwarded messages; one that follows no redirects if nil.
	ForwardClient *http.Client
	// ForwardAllowedHosts are hosts a forwarding URL may name besides in-cluster Services
	// (<service>.<namespace>.svc[.<ClusterDomain>]): host names, IP literals, or domain
	// suffixes starting with "." (forwardpolicy.go).
	ForwardAllowedHosts []string
	// ClusterDomain is the cluster's DNS domain; DefaultClusterDomain if empty.
	ClusterDomain string
	// Logger receives one line per push: component, InfoType, result. Never a secret. Lines
	// about rejected requests are sampled (logsample.go).
	Logger logr.Logger
	// RedirectRate and RedirectBurst bound how many codes the redirect landing page records
	// per component (DefaultRedirectRate, DefaultRedirectBurst if 0).
	RedirectRate  time.Duration
	RedirectBurst int
	// The authorization start page (authorizepage.go): how long a visit waits for the
	// manager (DefaultAuthorizePageTimeout if 0); visits per component and per client IP
	// (the Default… values if 0); and the request header holding the client's IP, set by the
	// Ingress (X-Real-IP, X-Forwarded-For), "" for the connection's peer.
	AuthorizePageTimeout     time.Duration
	AuthorizePageRate        time.Duration
	AuthorizePageBurst       int
	AuthorizePageClientRate  time.Duration
	AuthorizePageClientBurst int
	ClientIPHeader           string
}

// Server handles WeChat's pushes.
type Server struct {
	reader, apiReader client.Reader
	indexed           bool // reader has AuthorizerIndex
	// authorizers is the WeChatAuthorizers as informer events deliver them
	// (WatchAuthorizers), or nil: then the cache is listed.
	authorizers    atomic.Pointer[authorizerMap]
	client         client.Client
	clock          clock.PassiveClock
	keys           *keyStore
	replay         *replayCache
	maxBody        int64
	persistTimeout time.Duration
	metrics        *Metrics
	recorder       events.EventRecorder
	log            logr.Logger
	forwardTimeout time.Duration
	forwardClient  *http.Client
	rejectLog      *rejectLogSampler
	redirectLimits *componentLimiter
	forwardPolicy  *forwardPolicy
	// the authorization start page
	startTimeout   time.Duration
	startLimits    *componentLimiter
	startClients   *componentLimiter
	clientIPHeader string
	linkWaiters    linkWaiters
}

// New returns a Server.
func New(opts Options) *Server {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.TimestampWindow <= 0 {
		opts.TimestampWindow = DefaultTimestampWindow
	}
	opts.TimestampWindow = min(opts.TimestampWindow, MaxTimestampWindow)
	if opts.PersistTimeout <= 0 {
		opts.PersistTimeout = DefaultPersistTimeout
	}
	if opts.APIReader == nil {
		opts.APIReader = opts.Reader
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.ForwardTimeout <= 0 {
		opts.ForwardTimeout = DefaultForwardTimeout
	}
	if opts.AuthorizePageTimeout <= 0 {
		opts.AuthorizePageTimeout = DefaultAuthorizePageTimeout
	}
	policy := newForwardPolicy(opts.ClusterDomain, opts.ForwardAllowedHosts)
	if opts.ForwardClient == nil {
		opts.ForwardClient = newForwardClient(policy.allowsLoopback())
	}
	return &Server{
		reader:         opts.Reader,
		indexed:        opts.AuthorizersIndexed,
		apiReader:      opts.APIReader,
		client:         opts.Client,
		clock:          opts.Clock,
		keys:           &keyStore{reader: opts.Reader, keyring: opts.Keyring, defaultWindow: opts.TimestampWindow},
		replay:         newReplayCache(opts.Clock, defaultReplayEntries),
		maxBody:        opts.MaxBodyBytes,
		persistTimeout: opts.PersistTimeout,
		metrics:        opts.Metrics,
		recorder:       opts.Recorder,
		log:            opts.Logger,
		forwardTimeout: min(opts.ForwardTimeout, MaxForwardTimeout),
		forwardClient:  opts.ForwardClient,
		rejectLog:      newRejectLogSampler(opts.Clock),
		redirectLimits: newComponentLimiter(opts.Clock, opts.RedirectRate, opts.RedirectBurst),
		forwardPolicy:  policy,
		startTimeout:   opts.AuthorizePageTimeout,
		startLimits: newComponentLimiter(opts.Clock, cmp.Or(opts.AuthorizePageRate, DefaultAuthorizePageRate),
			cmp.Or(opts.AuthorizePageBurst, DefaultAuthorizePageBurst)),
		startClients: newComponentLimiter(opts.Clock, cmp.Or(opts.AuthorizePageClientRate, DefaultAuthorizePageClientRate),
			cmp.Or(opts.AuthorizePageClientBurst, DefaultAuthorizePageClientBurst)),
		clientIPHeader: opts.ClientIPHeader,
	}
}

// Handler returns the push endpoints:
//
//	POST /wechat/{namespace}/{component}/events                     the platform's 授权事件接收URL
//	POST /wechat/{namespace}/{component}/messages/{authorizerAppID} its 消息与事件接收URL ($APPID$)
//	GET  /wechat/{namespace}/{component}/authorized                 the redirect_uri of authorization links
//	GET  /wechat/{namespace}/{component}/authorize                  the authorization start page (spec.authorizePage)
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /wechat/{namespace}/{component}/events", s.handleEvents)
	mux.HandleFunc("POST /wechat/{namespace}/{component}/messages/{authorizerAppID}", s.handleMessages)
	mux.HandleFunc("GET /wechat/{namespace}/{component}/authorized", s.handleAuthorized)
	mux.HandleFunc("GET /wechat/{namespace}/{component}/authorize", s.handleAuthorize)
	return mux
}

// CacheOptions shapes the receiver's informer cache: the custom resources, and of all Secrets
// only the keyring, which is all its RBAC lets it read (a list or watch with a metadata.name
// field selector is what resourceNames authorizes). The keyring holds every component's keys
// and every forwarding key, and each push reads it, so reads of it are not
// deep-copied: the receiver only ever reads the cached Secret (keys.go, forward.go).
func CacheOptions(keyring types.NamespacedName) cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Namespaces:            map[string]cache.Config{keyring.Namespace: {}},
				Field:                 fields.OneTermEqualSelector("metadata.name", keyring.Name),
				UnsafeDisableDeepCopy: ptr.To(true),
			},
		},
	}
}

// NewHTTPServer wraps handler with the timeouts an internet-facing endpoint needs.
func NewHTTPServer(addr string, handler http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// pushError is an answer other than "success", with the metrics result it counts as.
type pushError struct {
	status int
	result string
	detail string // safe to log: no secret
}

func (e *pushError) Error() string { return e.detail }

// ours reports a failure on our side (the API server did not take a write), as opposed to
// a request refused because of what it is, which anyone can send.
func (e *pushError) ours() bool { return e.status >= 500 && e.result != resultInFlight }

// errInFlight answers a copy of a push that is being processed right now. If the first copy
// fails, WeChat's next retry is processed; if it succeeds, the retry is a duplicate.
var errInFlight = &pushError{http.StatusServiceUnavailable, resultInFlight, "a copy of this push is being processed right now"}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("component")}
	infoType, result, err := s.processEvent(r, w, key)
	if s.metrics != nil {
		s.metrics.Pushes.WithLabelValues(infoType, result).Inc()
	}
	logger := s.log.WithValues("component", key.String(), "infoType", infoType, "result", result)
	var pe *pushError
	if errors.As(err, &pe) {
		s.logNotAccepted(logger, "push not accepted", pe)
		http.Error(w, http.StatusText(pe.status), pe.status)
		return
	}
	logger.V(1).Info("push accepted")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "success")
}

// processEvent verifies, decrypts and applies one push. It returns the InfoType and result
// for the metrics, and a *pushError for any answer but "success".
func (s *Server) processEvent(r *http.Request, w http.ResponseWriter, key types.NamespacedName) (string, string, error) {
	infoType := "unknown"
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return infoType, resultTooLarge, &pushError{http.StatusRequestEntityTooLarge, resultTooLarge, "body over the size cap"}
		}
		return infoType, resultRejected, &pushError{http.StatusBadRequest, resultRejected, "could not read the body"}
	}
	keys, err := s.keys.lookup(r.Context(), key.Namespace, key.Name)
	if err != nil {
		if errors.Is(err, errUnknownComponent) {
			return infoType, resultUnknown, &pushError{http.StatusNotFound, resultUnknown, "no such component, or its keys are not in the keyring yet"}
		}
		return infoType, resultPersistError, &pushError{http.StatusServiceUnavailable, resultPersistError, "reading the component: " + err.Error()}
	}
	q := r.URL.Query()
	timestamp, nonce, signature := q.Get("timestamp"), q.Get("nonce"), q.Get("msg_signature")
	ts, pe := s.checkTimestamp(timestamp, keys.window)
	if pe != nil {
		return infoType, pe.result, pe
	}
	push, err := keys.crypter.OpenPush(body, timestamp, nonce, signature)
	if err != nil {
		// The crypto errors are typed and carry no key, token or plaintext.
		status := http.StatusBadRequest
		if errors.Is(err, wxcrypto.ErrBadSignature) {
			status = http.StatusForbidden
		}
		return infoType, resultRejected, &pushError{status, resultRejected, err.Error()}
	}
	infoType = push.InfoType()
	// Reserved only once verified: junk cannot fill the cache.
	replay := replayKey("events", key.String(), timestamp, nonce, signature)
	switch s.replay.reserve(replay, s.replayTTL(ts, keys.window)) {
	case replayDone:
		return infoType, resultDuplicate, nil
	case replayInFlight:
		return infoType, resultInFlight, errInFlight
	}
	result, err := s.applyPush(r.Context(), key, keys, push)
	if err != nil {
		s.replay.release(replay) // answered 5xx: WeChat's retry must be processed
		return infoType, result, err
	}
	s.replay.complete(replay)
	return infoType, result, nil
}

// applyPush records what a verified push carries. It returns the result for the metrics,
// and a *pushError (5xx) when it could not.
func (s *Server) applyPush(ctx context.Context, key types.NamespacedName, keys *componentKeys, push wxcrypto.Push) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.persistTimeout)
	defer cancel()
	var wrote bool
	var err error
	var what string
	switch p := push.(type) {
	case wxcrypto.TicketPush:
		what = "storing the ticket: "
		wrote, err = s.applyTicket(ctx, key, p)
	case wxcrypto.AuthorizedPush:
		expires := time.Unix(p.AuthorizationCodeExpiredTime, 0)
		if p.AuthorizationCodeExpiredTime == 0 {
			expires = time.Unix(p.Created, 0).Add(defaultAuthCodeLifetime)
		}
		what = "recording the authorization: "
		wrote, err = s.recordAuthorizationCode(ctx, keys.component, p.AuthorizerAppID, p.AuthorizationCode, expires)
	case wxcrypto.UnauthorizedPush:
		what = "recording the revocation: "
		wrote, err = s.recordRevocation(ctx, keys.component, p.AuthorizerAppID, time.Unix(p.Created, 0))
	default:
		// Other pushes are accepted and answered, so WeChat does not retry them.
		return resultIgnored, nil
	}
	switch {
	case err != nil:
		return resultPersistError, &pushError{http.StatusServiceUnavailable, resultPersistError, what + err.Error()}
	case wrote:
		return resultApplied, nil
	}
	return resultStale, nil
}

// replayTTL is how long a push with timestamp ts must be remembered: until its timestamp
// leaves the window, after which checkTimestamp refuses it anyway. At most twice the window
// (a timestamp up to a window ahead of now), so the window bounds the cache's retention.
func (s *Server) replayTTL(ts int64, window time.Duration) time.Duration {
	return time.Unix(ts, 0).Add(window).Sub(s.clock.Now()) + time.Second
}

// checkTimestamp rejects pushes whose timestamp is missing or outside the window.
func (s *Server) checkTimestamp(timestamp string, window time.Duration) (int64, *pushError) {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return 0, &pushError{http.StatusBadRequest, resultRejected, "missing or malformed timestamp"}
	}
	skew := s.clock.Now().Sub(time.Unix(ts, 0))
	if skew > window || skew < -window {
		return 0, &pushError{http.StatusBadRequest, resultRejected,
			fmt.Sprintf("timestamp is %s away from now, outside the %s window", skew.Round(time.Second), window)}
	}
	return ts, nil
}
