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

	"k8s.io/apimachinery/pkg/types"

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

// Values of the "account" label: whether a WeChatAuthorizer exists for the URL's appid.
const (
	accountKnown      = "known"
	accountUnknown    = "unknown"
	accountUnverified = "unverified"
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
	if err := xml.Unmarshal(plaintext, m); err != nil {
		return nil, errors.New("the decrypted message is not XML")
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
	logger := s.log.WithValues("component", key.String(), "authorizerAppID", appID, "msgType", out.msgType,
		"account", out.account, "result", out.result)
	var pe *pushError
	if errors.As(err, &pe) {
		logger.Info("message not accepted", "status", pe.status, "reason", pe.detail)
		http.Error(w, http.StatusText(pe.status), pe.status)
		return
	}
	logger.V(1).Info("message answered", "reply", out.reply != nil)
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
	keys, err := s.keys.lookup(r.Context(), key.Namespace, key.Name)
	if err != nil {
		if errors.Is(err, errUnknownComponent) {
			return fail(http.StatusNotFound, resultUnknown, "no such component, or its keys are not in the keyring yet")
		}
		return fail(http.StatusServiceUnavailable, resultPersistError, "reading the component: "+err.Error())
	}
	q := r.URL.Query()
	timestamp, nonce, signature := q.Get("timestamp"), q.Get("nonce"), q.Get("msg_signature")
	if pe := s.checkTimestamp(timestamp, keys.window); pe != nil {
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
	component := keys.component
	authorizer, err := s.findAuthorizer(r.Context(), s.reader, key.Namespace, key.Name, appID)
	if err != nil {
		return fail(http.StatusServiceUnavailable, resultPersistError, "listing authorizers: "+err.Error())
	}
	out.account = accountUnknown
	if authorizer != nil {
		out.account = accountKnown
	}

	replayKey := "message\x00" + key.String() + "\x00" + appID + "\x00" + timestamp + "\x00" + nonce + "\x00" + signature
	duplicate := s.replay.seen(replayKey)

	action, content := testNone, ""
	if component.TestResponderOn() && IsReleaseTestAccount(appID, m.ToUserName) {
		action, content = releaseTestAnswer(m)
	}
	switch {
	case action == testReply:
		// A pure function of the message: a retry gets the same answer.
		reply, err := s.sealTextReply(keys.crypter, m, content)
		if err != nil {
			return fail(http.StatusInternalServerError, resultPersistError, "sealing the reply failed")
		}
		out.result, out.reply = msgTestReply, reply
		if duplicate {
			out.result = resultDuplicate
		}
	case action == testRecordCode:
		out.empty = true
		out.result = resultDuplicate
		if duplicate {
			break
		}
		out.result = msgAnswered
		if !authCodePattern.MatchString(content) || !openIDPattern.MatchString(m.FromUserName) {
			break // not a code WeChat would send: answered, not recorded
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.persistTimeout)
		defer cancel()
		if _, err := s.recordTestReply(ctx, key, appID, m.FromUserName, content); err != nil {
			return fail(http.StatusServiceUnavailable, resultPersistError, "recording the test reply: "+err.Error())
		}
		out.result = msgTestRecorded
	case duplicate:
		// Already forwarded (or answered) once: apps never see a message twice.
		out.result = resultDuplicate
	default:
		out.result = msgAnswered
		target := s.forwardTargetFor(component, authorizer)
		if target == nil {
			break
		}
		out.result = msgForwarded
		appReply, _ := s.forward(r.Context(), target, key.String(), appID, plaintext)
		if appReply == nil {
			break
		}
		reply, err := keys.crypter.SealReply(appReply, s.replyTimestamp(), newReplyNonce())
		if err != nil {
			break // answered "success": WeChat must not wait for an error
		}
		out.reply = reply
	}
	s.replay.add(replayKey)
	return out, nil
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
