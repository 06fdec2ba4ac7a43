/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
)

// Forwarding: the receiver POSTs an account's decrypted message to the in-cluster endpoint
// its WeChatAuthorizer (or, as a default, its WeChatComponent) names, signed with an
// HMAC-SHA256 key the manager copied into the keyring, and turns the app's answer into an
// encrypted passive reply. WeChat gives up after 5 seconds, so the app gets a short deadline;
// when it misses it, WeChat gets "success" (no reply) in time. docs/messages.md is the
// contract for apps.

// Headers of a forwarded message. The signature covers the timestamp, the authorizer appid
// and the body (see ForwardSignature).
const (
	HeaderTimestamp       = "X-WeChat-Operator-Timestamp"
	HeaderSignature       = "X-WeChat-Operator-Signature"
	HeaderAuthorizerAppID = "X-WeChat-Operator-Authorizer-AppID"
	HeaderComponent       = "X-WeChat-Operator-Component"
	signaturePrefix       = "sha256="
)

const (
	// DefaultForwardTimeout is how long an app may take to answer a forwarded message.
	DefaultForwardTimeout = 3 * time.Second
	// MaxForwardTimeout leaves WeChat's 5-second deadline room for decryption, encryption
	// and the network.
	MaxForwardTimeout = 4 * time.Second
)

// Results of a forward, the "result" label of wechat_receiver_forwards_total.
const (
	forwardReplied  = "replied"   // the app answered with a reply, sent to WeChat encrypted
	forwardNoReply  = "no_reply"  // the app answered empty or "success"
	forwardTimeout  = "timeout"   // the app did not answer in time: WeChat got "success"
	forwardError    = "error"     // connection failed or the app answered non-2xx
	forwardBadReply = "bad_reply" // the app's answer is not a reply message, or too large
	forwardNoKey    = "no_key"    // the HMAC key is not in the keyring (yet): not forwarded
	forwardRefused  = "refused"   // the URL is not an in-cluster Service or allowed host (forwardpolicy.go)
)

// ForwardSignature is the value of the X-WeChat-Operator-Signature header: "sha256=" and the
// lowercase hex HMAC-SHA256, under key, of timestamp + "\n" + authorizerAppID + "\n" + body.
// Apps compare it in constant time (hmac.Equal) and reject stale timestamps.
func ForwardSignature(key []byte, timestamp, authorizerAppID string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'\n'})
	mac.Write([]byte(authorizerAppID))
	mac.Write([]byte{'\n'})
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// VerifyForwardSignature checks a forwarded message's signature header in constant time.
func VerifyForwardSignature(key []byte, timestamp, authorizerAppID string, body []byte, signature string) bool {
	want := ForwardSignature(key, timestamp, authorizerAppID, body)
	return hmac.Equal([]byte(want), []byte(strings.ToLower(signature)))
}

// forwardTarget is where one message goes.
type forwardTarget struct {
	url      string
	keyEntry string // keyring data key of the HMAC key
	timeout  time.Duration
	refused  error // why the forwarding policy refuses url, or nil
}

// forwardTargetFor picks the authorizer's forwarding target, else the component's, else none.
func (s *Server) forwardTargetFor(component *wechatv1alpha1.WeChatComponent, a *wechatv1alpha1.WeChatAuthorizer) *forwardTarget {
	var fw *wechatv1alpha1.MessageForwarding
	var entry string
	switch {
	case a != nil && a.Spec.Messages.Forward != nil:
		fw, entry = a.Spec.Messages.Forward, keyring.AuthorizerForwardKeyKey(a.Namespace, a.Name)
	case component.Spec.Messages.Forward != nil:
		fw, entry = component.Spec.Messages.Forward, keyring.ForwardKeyKey(component.Namespace, component.Name)
	default:
		return nil
	}
	timeout := s.forwardTimeout
	if d, err := time.ParseDuration(fw.Timeout); err == nil && d > 0 {
		timeout = d
	}
	return &forwardTarget{url: fw.URL, keyEntry: entry, timeout: min(timeout, MaxForwardTimeout), refused: s.forwardPolicy.check(fw.URL)}
}

// forward delivers plaintext to the target, signed with its key from ring (the keyring's
// data), and returns the app's reply message (nil for no reply) and the result for the
// metrics. It never takes longer than the target's timeout.
func (s *Server) forward(ctx context.Context, t *forwardTarget, ring map[string][]byte, component, authorizerAppID string, plaintext []byte) ([]byte, string) {
	start := time.Now()
	reply, result := s.doForward(ctx, t, ring[t.keyEntry], component, authorizerAppID, plaintext)
	if s.metrics != nil {
		s.metrics.Forwards.WithLabelValues(result).Inc()
		s.metrics.ForwardDuration.Observe(time.Since(start).Seconds())
	}
	return reply, result
}

func (s *Server) doForward(ctx context.Context, t *forwardTarget, key []byte, component, authorizerAppID string, plaintext []byte) ([]byte, string) {
	if t.refused != nil {
		s.log.Info("forwarding URL refused; the message is not forwarded", "component", component,
			"authorizerAppID", authorizerAppID, "url", redactedURL(t.url), "reason", t.refused.Error())
		return nil, forwardRefused
	}
	if len(key) == 0 {
		return nil, forwardNoKey
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(plaintext))
	if err != nil {
		return nil, forwardError
	}
	timestamp := strconv.FormatInt(s.clock.Now().Unix(), 10)
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("User-Agent", "wechat-operator-receiver")
	req.Header.Set(HeaderTimestamp, timestamp)
	req.Header.Set(HeaderAuthorizerAppID, authorizerAppID)
	req.Header.Set(HeaderComponent, component)
	req.Header.Set(HeaderSignature, ForwardSignature(key, timestamp, authorizerAppID, plaintext))
	resp, err := s.forwardClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return nil, forwardTimeout
		}
		return nil, forwardError
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, forwardError
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, forwardTimeout
		}
		return nil, forwardError
	}
	answer = bytes.TrimSpace(answer)
	switch {
	case len(answer) == 0, string(answer) == "success":
		return nil, forwardNoReply
	case int64(len(answer)) > s.maxBody, !bytes.HasPrefix(answer, []byte("<xml")):
		return nil, forwardBadReply
	}
	return answer, forwardReplied
}

// Idle keep-alive connections the forward client keeps. Go's default of 2 per host made
// every forward beyond the second concurrent one to the same app dial a new connection (and
// leave it in TIME_WAIT): with 16 concurrent messages most forwards paid a TCP handshake.
const (
	forwardIdleConnsPerHost = 128
	forwardIdleConns        = 1024
)

// newForwardClient is the default client for forwards: its own connection pool, kept alive
// for as many concurrent forwards to one app as WeChat sends at once, no redirects (a forward
// goes where spec says, nowhere else), no proxy from the environment (it would see every
// message), and a dialer that refuses metadata and other special addresses (forwardpolicy.go).
func newForwardClient(allowLoopback bool) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.DialContext = forwardDialer(allowLoopback)
	transport.MaxIdleConns, transport.MaxIdleConnsPerHost = forwardIdleConns, forwardIdleConnsPerHost
	return &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
