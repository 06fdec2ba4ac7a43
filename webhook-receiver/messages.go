/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// The 消息与事件接收URL: WeChat sends every message and event of every account that authorized
// a platform to POST /wechat/{namespace}/{component}/messages/{authorizerAppID}, encrypted with
// the platform's keys. Verification is the events endpoint's (body cap, timestamp window,
// signature, strict padding, appid, replay cache); then the 全网发布 test responder answers the
// test accounts, or the message is forwarded to the app the resources name, or answered
// "success". Message content, openids and codes are never logged.

// Results of a message, the "result" label of wechat_receiver_messages_total.
const (
	msgTestReply    = "test_reply"    // a 全网发布 test case answered with a passive reply
	msgTestRecorded = "test_recorded" // a QUERY_AUTH_CODE recorded for the manager
	msgForwarded    = "forwarded"     // forwarded to an app (its outcome: wechat_receiver_forwards_total)
	msgAnswered     = "answered"      // verified; nothing to do but answer "success"
)

// Values of the "account" label: whether a WeChatAuthorizer exists for the URL's appid, and
// whether the message is addressed to that account.
const (
	accountKnown      = "known"      // a WeChatAuthorizer whose original id is the ToUserName
	accountUnknown    = "unknown"    // no WeChatAuthorizer for the URL's appid
	accountUnbound    = "unbound"    // a WeChatAuthorizer, but its original id (status.info.userName) is not known yet
	accountMismatch   = "mismatch"   // the ToUserName is not the URL account's original id
	accountUnverified = "unverified" // the message did not verify
)

// appIDPattern is the shape of the {authorizerAppID} path segment.
var appIDPattern = regexp.MustCompile(`^wx[0-9a-f]{16}$`)

// knownMsgTypes bound the msgtype label.
var knownMsgTypes = map[string]bool{
	"text": true, "image": true, "voice": true, "video": true, "shortvideo": true, "location": true,
	"link": true, "event": true, "file": true, "miniprogrampage": true,
}

// message is the part of a decrypted message the receiver reads.
type message struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   string   `xml:"ToUserName"`
	FromUserName string   `xml:"FromUserName"`
	MsgType      string   `xml:"MsgType"`
	Content      string   `xml:"Content"`
	Event        string   `xml:"Event"`
}

// parseMessage reads a decrypted message. It must have the root <xml>, a ToUserName, a
// FromUserName and a MsgType.
func parseMessage(plaintext []byte) (*message, error) {
	m := &message{}
	if !scanFlatMessage(plaintext, m) {
		*m = message{}
		if err := xml.Unmarshal(plaintext, m); err != nil {
			return nil, errors.New("the decrypted message is not XML")
		}
	}
	if m.ToUserName == "" || m.FromUserName == "" || m.MsgType == "" {
		return nil, errors.New("the decrypted message lacks ToUserName, FromUserName or MsgType")
	}
	return m, nil
}

// messageOutcome is how one message was answered.
type messageOutcome struct {
	msgType, account, result string
	reply                    []byte // an encrypted reply envelope, or nil
	empty                    bool   // answer an empty body rather than "success"
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("component")}
	appID := r.PathValue("authorizerAppID")
	out, err := s.processMessage(r, w, key, appID)
	if s.metrics != nil {
		s.metrics.Messages.WithLabelValues(out.msgType, out.account, out.result).Inc()
	}
	// The logger's values are built only for a line that is written: most messages write none.
	logger := func(l logr.Logger) logr.Logger {
		return l.WithValues("component", key.String(), "authorizerAppID", appID, "msgType", out.msgType,
			"account", out.account, "result", out.result)
	}
	var pe *pushError
	if errors.As(err, &pe) {
		s.logNotAccepted(logger(s.log), "message not accepted", pe)
		http.Error(w, http.StatusText(pe.status), pe.status)
		return
	}
	if v := s.log.V(1); v.Enabled() {
		logger(v).Info("message answered", "reply", out.reply != nil)
	}
	switch {
	case out.reply != nil:
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		_, _ = w.Write(out.reply)
	case out.empty:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "success")
	}
}

// processMessage verifies, decrypts and answers one message. It returns how it was answered,
// and a *pushError for any answer but a reply, an empty body or "success".
func (s *Server) processMessage(r *http.Request, w http.ResponseWriter, key types.NamespacedName, appID string) (messageOutcome, error) {
	out := messageOutcome{msgType: "unknown", account: accountUnverified}
	fail := func(status int, result, detail string) (messageOutcome, error) {
		out.result = result
		return out, &pushError{status, result, detail}
	}
	if !appIDPattern.MatchString(appID) {
		return fail(http.StatusNotFound, resultRejected, "the authorizer appid in the path is malformed")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fail(http.StatusRequestEntityTooLarge, resultTooLarge, "body over the size cap")
		}
		return fail(http.StatusBadRequest, resultRejected, "could not read the body")
	}
	keys, err := s.keys.lookupShared(r.Context(), key.Namespace, key.Name)
	if err != nil {
		if errors.Is(err, errUnknownComponent) {
			return fail(http.StatusNotFound, resultUnknown, "no such component, or its keys are not in the keyring yet")
		}
		return fail(http.StatusServiceUnavailable, resultPersistError, "reading the component: "+err.Error())
	}
	q := r.URL.Query()
	timestamp, nonce, signature := q.Get("timestamp"), q.Get("nonce"), q.Get("msg_signature")
	ts, pe := s.checkTimestamp(timestamp, keys.window)
	if pe != nil {
		return fail(pe.status, pe.result, pe.detail)
	}
	plaintext, err := keys.crypter.Open(body, timestamp, nonce, signature)
	if err != nil {
		// The crypto errors are typed and carry no key, token or plaintext.
		status := http.StatusBadRequest
		if errors.Is(err, wxcrypto.ErrBadSignature) {
			status = http.StatusForbidden
		}
		return fail(status, resultRejected, err.Error())
	}
	m, err := parseMessage(plaintext)
	if err != nil {
		return fail(http.StatusBadRequest, resultRejected, err.Error())
	}
	if env, err := wxcrypto.ParseEnvelope(body); err == nil && env.ToUserName != "" && env.ToUserName != m.ToUserName {
		return fail(http.StatusBadRequest, resultRejected, "the envelope's ToUserName is not the message's")
	}
	out.msgType = "other"
	if knownMsgTypes[m.MsgType] {
		out.msgType = m.MsgType
	}
	authorizer, err := s.findAuthorizer(r.Context(), false, key.Namespace, key.Name, appID)
	if err != nil {
		return fail(http.StatusServiceUnavailable, resultPersistError, "listing authorizers: "+err.Error())
	}
	out.account = accountOf(authorizer, m)

	// Reserved before anything is done, released only on a 5xx: of copies sent at once, one
	// is acted on.
	replay := replayKey("messages", key.String(), timestamp, nonce, signature)
	state := s.replay.reserve(replay, s.replayTTL(ts, keys.window))
	if state == replayInFlight {
		return fail(errInFlight.status, errInFlight.result, errInFlight.detail)
	}
	in := inbound{key: key, appID: appID, keys: keys, msg: m, plaintext: plaintext, authorizer: authorizer, duplicate: state == replayDone}
	out, err = s.answerMessage(r.Context(), in, out)
	switch {
	case state == replayDone:
	case err != nil:
		s.replay.release(replay)
	default:
		s.replay.complete(replay)
	}
	return out, err
}

// accountOf says whether m is for the account of the URL: WeChat puts that account's original
// id (gh_…) in ToUserName. A message signed for one account and sent to another's URL is
// valid all the same (one platform key signs them all), so only this binds the two.
func accountOf(a *wechatv1alpha1.WeChatAuthorizer, m *message) string {
	switch {
	case a == nil:
		return accountUnknown
	case a.Status.Info == nil || a.Status.Info.UserName == "":
		return accountUnbound
	case a.Status.Info.UserName != m.ToUserName:
		return accountMismatch
	}
	return accountKnown
}

// inbound is a verified message and what it was found to belong to.
type inbound struct {
	key        types.NamespacedName
	appID      string
	keys       *componentKeys
	msg        *message
	plaintext  []byte
	authorizer *wechatv1alpha1.WeChatAuthorizer
	duplicate  bool
}

// answerMessage answers a verified message: a test reply, a recorded test code, a forward,
// or "success". Only messages bound to a known account are forwarded.
func (s *Server) answerMessage(ctx context.Context, in inbound, out messageOutcome) (messageOutcome, error) {
	m := in.msg
	action, content := testNone, ""
	if in.keys.component.TestResponderOn() && IsReleaseTestAccount(in.appID, m.ToUserName) {
		action, content = releaseTestAnswer(m)
	}
	switch {
	case action == testReply:
		// A pure function of the message: a retry gets the same answer.
		reply, err := s.sealTextReply(in.keys.crypter, m, content)
		if err != nil {
			out.result = resultPersistError
			return out, &pushError{http.StatusInternalServerError, resultPersistError, "sealing the reply failed"}
		}
		out.result, out.reply = msgTestReply, reply
		if in.duplicate {
			out.result = resultDuplicate
		}
	case action == testRecordCode:
		out.empty = true
		out.result = resultDuplicate
		if in.duplicate {
			break
		}
		out.result = msgAnswered
		if !authCodePattern.MatchString(content) || !openIDPattern.MatchString(m.FromUserName) {
			break // not a code WeChat would send: answered, not recorded
		}
		ctx, cancel := context.WithTimeout(ctx, s.persistTimeout)
		defer cancel()
		if _, err := s.recordTestReply(ctx, in.key, in.appID, m.FromUserName, content); err != nil {
			out.result = resultPersistError
			return out, &pushError{http.StatusServiceUnavailable, resultPersistError, "recording the test reply: " + err.Error()}
		}
		out.result = msgTestRecorded
	case in.duplicate:
		// Already forwarded (or answered) once: apps never see a message twice.
		out.result = resultDuplicate
	default:
		out.result = msgAnswered
		if out.account != accountKnown {
			break // not bound to an account of the cluster: never forwarded
		}
		target := s.forwardTargetFor(in.keys.component, in.authorizer)
		if target == nil {
			break
		}
		out.result = msgForwarded
		out.reply = s.forwardAndSeal(ctx, in, target)
	}
	return out, nil
}

// forwardAndSeal forwards a message and returns the app's reply encrypted for WeChat, or nil.
func (s *Server) forwardAndSeal(ctx context.Context, in inbound, target *forwardTarget) []byte {
	appReply, _ := s.forward(ctx, target, in.keys.keyring, in.key.String(), in.appID, in.plaintext)
	if appReply == nil {
		return nil
	}
	reply, err := in.keys.crypter.SealReply(appReply, s.replyTimestamp(), newReplyNonce())
	if err != nil {
		return nil // answered "success": WeChat must not wait for an error
	}
	return reply
}

// sealTextReply builds and encrypts a passive text reply to m.
func (s *Server) sealTextReply(c *wxcrypto.Crypter, m *message, content string) ([]byte, error) {
	now := s.replyTimestamp()
	var b bytes.Buffer
	b.WriteString("<xml><ToUserName>")
	writeCDATA(&b, m.FromUserName)
	b.WriteString("</ToUserName><FromUserName>")
	writeCDATA(&b, m.ToUserName)
	b.WriteString("</FromUserName><CreateTime>" + now + "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>")
	writeCDATA(&b, content)
	b.WriteString("</Content></xml>")
	return c.SealReply(b.Bytes(), now, newReplyNonce())
}

func (s *Server) replyTimestamp() string { return strconv.FormatInt(s.clock.Now().Unix(), 10) }

// writeCDATA writes v as CDATA; "]]>" cannot occur inside a section, so it is split.
func writeCDATA(b *bytes.Buffer, v string) {
	b.WriteString("<![CDATA[")
	b.WriteString(strings.ReplaceAll(v, "]]>", "]]]]><![CDATA[>"))
	b.WriteString("]]>")
}

// newReplyNonce is a random decimal nonce, as WeChat's own are.
func newReplyNonce() string {
	n, err := rand.Int(rand.Reader, big.NewInt(9_000_000_000))
	if err != nil {
		return "1234567890"
	}
	return strconv.FormatInt(n.Int64()+1_000_000_000, 10)
}
