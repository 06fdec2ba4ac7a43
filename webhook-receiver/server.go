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
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes    = 64 << 10
	DefaultTimestampWindow = 5 * time.Minute
	// DefaultPersistTimeout leaves WeChat's 5-second deadline room for the network.
	DefaultPersistTimeout = 4 * time.Second
	defaultReplayEntries  = 100_000
	// defaultAuthCodeLifetime applies when a push lacks AuthorizationCodeExpiredTime.
	defaultAuthCodeLifetime = time.Hour
)

// Options configure a Server.
type Options struct {
	// Reader reads WeChatComponents and the keyring Secret; an informer cache in production.
	Reader client.Reader
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
	// says otherwise. DefaultTimestampWindow if 0.
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
	// Logger receives one line per push: component, InfoType, result. Never a secret.
	Logger logr.Logger
}

// Server handles WeChat's pushes.
type Server struct {
	reader, apiReader client.Reader
	client            client.Client
	clock             clock.PassiveClock
	keys              *keyStore
	replay            *replayCache
	maxBody           int64
	persistTimeout    time.Duration
	metrics           *Metrics
	recorder          events.EventRecorder
	log               logr.Logger
	forwardTimeout    time.Duration
	forwardClient     *http.Client
	forwardPolicy     *forwardPolicy
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
	policy := newForwardPolicy(opts.ClusterDomain, opts.ForwardAllowedHosts)
	if opts.ForwardClient == nil {
		opts.ForwardClient = newForwardClient(policy.allowsLoopback())
	}
	return &Server{
		reader:    opts.Reader,
		apiReader: opts.APIReader,
		client:    opts.Client,
		clock:     opts.Clock,
		keys:      &keyStore{reader: opts.Reader, keyring: opts.Keyring, defaultWindow: opts.TimestampWindow},
		// A push is accepted only inside the window on either side of now, so remembering it
		// for twice the largest window covers every retry and replay.
		replay:         newReplayCache(opts.Clock, 2*max(opts.TimestampWindow, time.Hour), defaultReplayEntries),
		maxBody:        opts.MaxBodyBytes,
		persistTimeout: opts.PersistTimeout,
		metrics:        opts.Metrics,
		recorder:       opts.Recorder,
		log:            opts.Logger,
		forwardTimeout: min(opts.ForwardTimeout, MaxForwardTimeout),
		forwardClient:  opts.ForwardClient,
		forwardPolicy:  policy,
	}
}

// Handler returns the push endpoints:
//
//	POST /wechat/{namespace}/{component}/events                     the platform's 授权事件接收URL
//	POST /wechat/{namespace}/{component}/messages/{authorizerAppID} its 消息与事件接收URL ($APPID$)
//	GET  /wechat/{namespace}/{component}/authorized                 the redirect_uri of authorization links
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /wechat/{namespace}/{component}/events", s.handleEvents)
	mux.HandleFunc("POST /wechat/{namespace}/{component}/messages/{authorizerAppID}", s.handleMessages)
	mux.HandleFunc("GET /wechat/{namespace}/{component}/authorized", s.handleAuthorized)
	return mux
}

// CacheOptions shapes the receiver's informer cache: the custom resources, and of all Secrets
// only the keyring, which is all its RBAC lets it read (a list or watch with a metadata.name
// field selector is what resourceNames authorizes).
func CacheOptions(keyring types.NamespacedName) cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Namespaces: map[string]cache.Config{keyring.Namespace: {}},
				Field:      fields.OneTermEqualSelector("metadata.name", keyring.Name),
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

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("component")}
	infoType, result, err := s.processEvent(r, w, key)
	if s.metrics != nil {
		s.metrics.Pushes.WithLabelValues(infoType, result).Inc()
	}
	logger := s.log.WithValues("component", key.String(), "infoType", infoType, "result", result)
	var pe *pushError
	if errors.As(err, &pe) {
		logger.Info("push not accepted", "status", pe.status, "reason", pe.detail)
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
	if pe := s.checkTimestamp(timestamp, keys.window); pe != nil {
		return infoType, pe.result, pe
	}
	replayKey := key.String() + "\x00" + timestamp + "\x00" + nonce + "\x00" + signature
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
	if s.replay.seen(replayKey) {
		return infoType, resultDuplicate, nil
	}

	ctx, cancel := context.WithTimeout(r.Context(), s.persistTimeout)
	defer cancel()
	result := resultIgnored
	switch p := push.(type) {
	case wxcrypto.TicketPush:
		wrote, err := s.applyTicket(ctx, key, p)
		if err != nil {
			return infoType, resultPersistError, &pushError{http.StatusServiceUnavailable, resultPersistError, "storing the ticket: " + err.Error()}
		}
		result = resultStale
		if wrote {
			result = resultApplied
		}
	case wxcrypto.AuthorizedPush:
		expires := time.Unix(p.AuthorizationCodeExpiredTime, 0)
		if p.AuthorizationCodeExpiredTime == 0 {
			expires = time.Unix(p.Created, 0).Add(defaultAuthCodeLifetime)
		}
		wrote, err := s.recordAuthorizationCode(ctx, keys.component, p.AuthorizerAppID, p.AuthorizationCode, expires)
		if err != nil {
			return infoType, resultPersistError, &pushError{http.StatusServiceUnavailable, resultPersistError, "recording the authorization: " + err.Error()}
		}
		result = resultStale
		if wrote {
			result = resultApplied
		}
	case wxcrypto.UnauthorizedPush:
		wrote, err := s.recordRevocation(ctx, keys.component, p.AuthorizerAppID, time.Unix(p.Created, 0))
		if err != nil {
			return infoType, resultPersistError, &pushError{http.StatusServiceUnavailable, resultPersistError, "recording the revocation: " + err.Error()}
		}
		result = resultStale
		if wrote {
			result = resultApplied
		}
	default:
		// Other pushes are accepted and answered, so WeChat does not retry them.
	}
	s.replay.add(replayKey)
	return infoType, result, nil
}

// checkTimestamp rejects pushes whose timestamp is missing or outside the window.
func (s *Server) checkTimestamp(timestamp string, window time.Duration) *pushError {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return &pushError{http.StatusBadRequest, resultRejected, "missing or malformed timestamp"}
	}
	skew := s.clock.Now().Sub(time.Unix(ts, 0))
	if skew > window || skew < -window {
		return &pushError{http.StatusBadRequest, resultRejected,
			fmt.Sprintf("timestamp is %s away from now, outside the %s window", skew.Round(time.Second), window)}
	}
	return nil
}
