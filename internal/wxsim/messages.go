/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// Messages of authorized accounts: the simulator sends a user's message or event to the
// component's 消息与事件接收URL, encrypted and signed as WeChat does, and checks and decrypts
// the passive reply; it serves the customer-service message API and records what is sent
// through it; and it plays WeChat's 全网发布 (release) automated test with both.

// Texts of WeChat's 全网发布 automated test.
const (
	ReleaseTestText           = "TESTCOMPONENT_MSG_TYPE_TEXT"
	ReleaseTestTextReply      = "TESTCOMPONENT_MSG_TYPE_TEXT_callback"
	ReleaseTestQueryAuthCode  = "QUERY_AUTH_CODE:"
	ReleaseTestQueryAuthReply = "_from_api"
	ReleaseTestEventReply     = "from_callback"
	// ReleaseTestEvent is the event the simulated test sends.
	ReleaseTestEvent = "LOCATION"
)

// ErrNoMessageURL means the component has no message URL to send to.
var ErrNoMessageURL = errors.New("component has no message URL")

const maxCustomMessages = 200

// CustomMessage is one customer-service message an authorized account sent through
// /cgi-bin/message/custom/send.
type CustomMessage struct {
	ComponentAppID  string    `json:"component_appid"`
	AuthorizerAppID string    `json:"authorizer_appid"`
	ToUser          string    `json:"touser"`
	MsgType         string    `json:"msgtype"`
	Content         string    `json:"content"`
	SentAt          time.Time `json:"sent_at"`
}

// CustomMessages returns the customer-service messages sent so far, oldest first.
func (s *Simulator) CustomMessages() []CustomMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CustomMessage(nil), s.customMsgs...)
}

// SetMessageURL changes where a component's account messages go ("$APPID$" is replaced
// with the account's appid).
func (s *Simulator) SetMessageURL(componentAppID, messageURL string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.components[componentAppID]
	if !ok {
		return ErrUnknownComponent
	}
	c.seed.MessageURL = messageURL
	return nil
}

// serveSendCustomMessage answers POST /cgi-bin/message/custom/send?access_token= for
// authorizer access tokens. Text messages are recorded with the simulator's time.
func (s *Simulator) serveSendCustomMessage(w http.ResponseWriter, r *http.Request) {
	api := APISendCustomMessage
	if r.Method != http.MethodPost {
		s.count(api, nil, true)
		writeErrcode(w, 43002, "")
		return
	}
	var req struct {
		ToUser  string `json:"touser"`
		MsgType string `json:"msgtype"`
		Text    *struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil || len(body) > maxRequestBody || json.Unmarshal(body, &req) != nil {
		s.count(api, nil, true)
		writeErrcode(w, 47001, "")
		return
	}
	tok := r.URL.Query().Get("access_token")
	rec, ids, code, outcome := s.authorizerTokenCall(w, r, api, tok)
	if outcome == faultAnswered {
		return
	}

	s.mu.Lock()
	if code == 0 {
		code = s.recordCustomMessageLocked(rec, req.ToUser, req.MsgType, req.Text)
	}
	s.countLocked(api, ids, code != 0)
	s.mu.Unlock()
	s.log.Info("api call", "api", api, "errcode", code)
	if outcome == faultHoldAnswer {
		s.holdAnswer(r, api)
		return
	}
	if code != 0 {
		writeErrcode(w, code, "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"errcode": 0, "errmsg": "ok"})
}

func (s *Simulator) recordCustomMessageLocked(rec *tokenRecord, toUser, msgType string, text *struct {
	Content string `json:"content"`
}) int {
	c, ok := s.components[rec.componentAppID]
	if !ok {
		return 40001
	}
	if a, ok := c.authorizers[rec.authorizerID]; !ok || !a.authorized {
		return 40001
	}
	switch {
	case toUser == "":
		return 40003
	case msgType != "text":
		return 40008 // the simulator knows text messages only
	case text == nil || text.Content == "":
		return 44004
	}
	s.customMsgs = append(s.customMsgs, CustomMessage{
		ComponentAppID: rec.componentAppID, AuthorizerAppID: rec.authorizerID,
		ToUser: toUser, MsgType: msgType, Content: text.Content, SentAt: s.clock.Now(),
	})
	if len(s.customMsgs) > maxCustomMessages {
		s.customMsgs = append([]CustomMessage(nil), s.customMsgs[len(s.customMsgs)-maxCustomMessages:]...)
	}
	return 0
}

// MessageRequest is a message or event a user sends to an authorized account, which WeChat
// delivers to the component's message URL.
type MessageRequest struct {
	ComponentAppID  string
	AuthorizerAppID string
	// FromUser is the user's openid; a new one if empty.
	FromUser string
	// MsgType is "text" or "event".
	MsgType string
	// Content is the text of a text message.
	Content string
	// Event is the event of an event message, e.g. "subscribe" or "LOCATION".
	Event string
}

// MessageReply is the receiver's answer to a message, checked and decrypted.
type MessageReply struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Body is the raw answer.
	Body []byte
	// Empty reports an answer WeChat takes as "no reply": an empty body or "success".
	Empty bool
	// Plaintext is the decrypted reply message (nil if Empty or not 200).
	Plaintext []byte
	// The reply message's fields.
	ToUserName, FromUserName, MsgType, Content string
	CreateTime                                 int64
}

// replyEnvelope is the encrypted passive reply.
type replyEnvelope struct {
	XMLName      xml.Name `xml:"xml"`
	Encrypt      string   `xml:"Encrypt"`
	MsgSignature string   `xml:"MsgSignature"`
	TimeStamp    string   `xml:"TimeStamp"`
	Nonce        string   `xml:"Nonce"`
}

type replyMessage struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   string   `xml:"ToUserName"`
	FromUserName string   `xml:"FromUserName"`
	CreateTime   int64    `xml:"CreateTime"`
	MsgType      string   `xml:"MsgType"`
	Content      string   `xml:"Content"`
}

// SendMessage delivers one message or event to the component's message URL as WeChat
// would (once, without retries), and returns the answer. An encrypted reply must carry a
// valid signature and decrypt with the component's key, or SendMessage fails.
func (s *Simulator) SendMessage(ctx context.Context, req MessageRequest) (MessageReply, error) {
	s.mu.Lock()
	c, ok := s.components[req.ComponentAppID]
	if !ok {
		s.mu.Unlock()
		return MessageReply{}, ErrUnknownComponent
	}
	cr, token, target := c.crypter, c.seed.Token, c.seed.MessageURL
	userName := ""
	if a, ok := c.authorizers[req.AuthorizerAppID]; ok {
		userName = a.seed.UserName
	} else {
		userName = withProfileDefaults(AuthorizerSeed{AppID: req.AuthorizerAppID}).UserName
	}
	now := s.clock.Now()
	s.mu.Unlock()
	if target == "" {
		return MessageReply{}, ErrNoMessageURL
	}
	if req.FromUser == "" {
		req.FromUser = newOpenID()
	}
	msg := messageXML(userName, req, now)

	u, err := url.Parse(strings.ReplaceAll(target, "$APPID$", req.AuthorizerAppID))
	if err != nil {
		return MessageReply{}, errors.New("message URL is invalid")
	}
	timestamp, nonce := strconv.FormatInt(now.Unix(), 10), newNonce()
	enc, err := cr.Encrypt(msg)
	if err != nil {
		return MessageReply{}, fmt.Errorf("encrypting the message: %w", err)
	}
	body := buildPushXML([]pushField{{"ToUserName", userName, false}, {"Encrypt", enc, false}})
	q := u.Query()
	q.Set("signature", plainSignature(token, timestamp, nonce))
	q.Set("timestamp", timestamp)
	q.Set("nonce", nonce)
	q.Set("openid", req.FromUser)
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", wxcrypto.Signature(token, timestamp, nonce, enc))
	u.RawQuery = q.Encode()

	ctx, cancel := context.WithTimeout(ctx, s.opts.PushTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return MessageReply{}, errors.New("building the message request failed")
	}
	hreq.Header.Set("Content-Type", "text/xml")
	hreq.Header.Set("User-Agent", "Mozilla/4.0 (wechat-sim)")
	resp, err := s.opts.PushClient.Do(hreq)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return MessageReply{}, fmt.Errorf("posting the message: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxRequestBody))
	if err != nil {
		return MessageReply{}, fmt.Errorf("reading the answer: %w", err)
	}
	reply := MessageReply{StatusCode: resp.StatusCode, Body: answer}
	trimmed := strings.TrimSpace(string(answer))
	if resp.StatusCode != http.StatusOK {
		return reply, nil
	}
	if trimmed == "" || trimmed == "success" {
		reply.Empty = true
		return reply, nil
	}
	return reply, openReply(cr, token, &reply)
}

// openReply checks the reply envelope's signature and decrypts it, as WeChat does.
func openReply(cr *wxcrypto.Crypter, token string, reply *MessageReply) error {
	var env replyEnvelope
	if err := xml.Unmarshal(reply.Body, &env); err != nil {
		return fmt.Errorf("the reply is not an encrypted reply envelope: %w", err)
	}
	if env.Encrypt == "" || env.TimeStamp == "" || env.Nonce == "" {
		return errors.New("the reply envelope lacks Encrypt, TimeStamp or Nonce")
	}
	if wxcrypto.Signature(token, env.TimeStamp, env.Nonce, env.Encrypt) != strings.ToLower(env.MsgSignature) {
		return errors.New("the reply's MsgSignature is wrong")
	}
	plain, err := cr.Decrypt(env.Encrypt)
	if err != nil {
		return fmt.Errorf("decrypting the reply: %w", err)
	}
	reply.Plaintext = plain
	var m replyMessage
	if err := xml.Unmarshal(plain, &m); err != nil {
		return fmt.Errorf("the decrypted reply is not a message: %w", err)
	}
	reply.ToUserName, reply.FromUserName, reply.MsgType, reply.Content, reply.CreateTime =
		m.ToUserName, m.FromUserName, m.MsgType, m.Content, m.CreateTime
	return nil
}

// messageXML renders a user's message the way WeChat writes it.
func messageXML(toUserName string, req MessageRequest, now time.Time) []byte {
	fields := []pushField{
		{"ToUserName", toUserName, false},
		{"FromUserName", req.FromUser, false},
		{"CreateTime", strconv.FormatInt(now.Unix(), 10), true},
		{"MsgType", req.MsgType, false},
	}
	switch req.MsgType {
	case "event":
		fields = append(fields, pushField{"Event", req.Event, false})
		if req.Event == "LOCATION" {
			fields = append(fields, pushField{"Latitude", "23.137466", true}, pushField{"Longitude", "113.352425", true},
				pushField{"Precision", "119.385040", true})
		}
	default:
		fields = append(fields, pushField{"Content", req.Content, false},
			pushField{"MsgId", strconv.FormatInt(now.UnixNano()/1000+randomInt(1000), 10), true})
	}
	return buildPushXML(fields)
}

func randomInt(n int64) int64 {
	v, _ := rand.Int(rand.Reader, big.NewInt(n))
	return v.Int64()
}

// newOpenID returns an openid-shaped user id.
func newOpenID() string { return "o" + randomString(21)[:27] }

// IssueAuthCode makes authorizerAppID authorize the component silently (no push, no
// redirect: as WeChat's own test accounts do in the 全网发布 test) and returns a fresh
// authorization code for it. An unknown account is created with a default profile.
func (s *Simulator) IssueAuthCode(componentAppID, authorizerAppID string) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.components[componentAppID]
	if !ok {
		return "", time.Time{}, ErrUnknownComponent
	}
	now := s.clock.Now()
	a := c.authorizerLocked(authorizerAppID)
	if !a.authorized {
		a.authorized, a.authTime, a.refreshToken = true, now, newRefreshToken()
	}
	code := newAuthCode()
	expires := now.Add(s.opts.AuthCodeLifetime)
	s.authCodes[code] = &codeRecord{componentAppID: componentAppID, authorizerAppID: authorizerAppID, expires: expires}
	return code, expires, nil
}

// ReleaseTestAccount is an account WeChat's 全网发布 test sends its messages from.
type ReleaseTestAccount struct {
	AppID    string // the $APPID$ of the message URL
	UserName string // the original id (gh_…), the messages' ToUserName
}

// ReleaseTest is one run of the 全网发布 automated test.
type ReleaseTest struct {
	ComponentAppID string
	Account        ReleaseTestAccount
	// User is the openid the test messages come from.
	User string
	// Event and Text are the answers to the event and to TESTCOMPONENT_MSG_TYPE_TEXT.
	Event, Text MessageReply
	// QueryAuth is the answer to QUERY_AUTH_CODE:<Code>, sent at CodeSentAt.
	QueryAuth  MessageReply
	Code       string
	CodeSentAt time.Time
}

// StartReleaseTest plays WeChat's 全网发布 automated test against the component's message
// URL as account, and checks the passive replies:
//
//  1. an event (LOCATION) must get the text reply "LOCATIONfrom_callback";
//  2. the text TESTCOMPONENT_MSG_TYPE_TEXT must get "TESTCOMPONENT_MSG_TYPE_TEXT_callback";
//  3. the account authorizes the platform, and the text QUERY_AUTH_CODE:<code> must get an
//     empty answer.
//
// It stops at the first case that fails. The platform must then exchange the code and send
// the customer-service text "<code>_from_api" to the user: CheckReleaseTest checks that.
func (s *Simulator) StartReleaseTest(ctx context.Context, componentAppID string, account ReleaseTestAccount) (*ReleaseTest, error) {
	s.mu.Lock()
	c, ok := s.components[componentAppID]
	if ok {
		a := c.authorizerLocked(account.AppID)
		if account.UserName != "" {
			a.seed.UserName = account.UserName
		}
	}
	s.mu.Unlock()
	if !ok {
		return nil, ErrUnknownComponent
	}
	rt := &ReleaseTest{ComponentAppID: componentAppID, Account: account, User: newOpenID()}
	send := func(msgType, content, event string) (MessageReply, error) {
		return s.SendMessage(ctx, MessageRequest{ComponentAppID: componentAppID, AuthorizerAppID: account.AppID,
			FromUser: rt.User, MsgType: msgType, Content: content, Event: event})
	}
	var err error
	if rt.Event, err = send("event", "", ReleaseTestEvent); err != nil {
		return rt, fmt.Errorf("event case: %w", err)
	}
	if err := rt.checkText("event case", rt.Event, ReleaseTestEvent+ReleaseTestEventReply); err != nil {
		return rt, err
	}
	if rt.Text, err = send("text", ReleaseTestText, ""); err != nil {
		return rt, fmt.Errorf("text case: %w", err)
	}
	if err := rt.checkText("text case", rt.Text, ReleaseTestTextReply); err != nil {
		return rt, err
	}
	if rt.Code, _, err = s.IssueAuthCode(componentAppID, account.AppID); err != nil {
		return rt, err
	}
	rt.CodeSentAt = s.clock.Now()
	if rt.QueryAuth, err = send("text", ReleaseTestQueryAuthCode+rt.Code, ""); err != nil {
		return rt, fmt.Errorf("QUERY_AUTH_CODE case: %w", err)
	}
	if rt.QueryAuth.StatusCode != http.StatusOK || !rt.QueryAuth.Empty {
		return rt, fmt.Errorf("QUERY_AUTH_CODE case: want an empty answer, got HTTP %d with %d bytes", rt.QueryAuth.StatusCode, len(rt.QueryAuth.Body))
	}
	return rt, nil
}

func (rt *ReleaseTest) checkText(name string, r MessageReply, want string) error {
	switch {
	case r.StatusCode != http.StatusOK:
		return fmt.Errorf("%s: the receiver answered HTTP %d", name, r.StatusCode)
	case r.Empty:
		return fmt.Errorf("%s: the receiver answered without a reply", name)
	case r.MsgType != "text" || r.Content != want:
		return fmt.Errorf("%s: want a text reply %q, got %s %q", name, want, r.MsgType, r.Content)
	case r.ToUserName != rt.User || r.FromUserName != rt.Account.UserName:
		return fmt.Errorf("%s: the reply is addressed from %q to %q, want from %q to the user", name, r.FromUserName, r.ToUserName, rt.Account.UserName)
	}
	return nil
}

// CheckReleaseTest reports whether the customer-service message "<code>_from_api" reached the
// test user from the test account within `within` of the QUERY_AUTH_CODE message, and only
// once. It returns the message when it did.
func (s *Simulator) CheckReleaseTest(rt *ReleaseTest, within time.Duration) (CustomMessage, error) {
	want := rt.Code + ReleaseTestQueryAuthReply
	var found []CustomMessage
	for _, m := range s.CustomMessages() {
		if m.ComponentAppID == rt.ComponentAppID && m.AuthorizerAppID == rt.Account.AppID && m.ToUser == rt.User && m.Content == want {
			found = append(found, m)
		}
	}
	switch {
	case len(found) == 0:
		return CustomMessage{}, errors.New("no customer-service message with the expected content reached the test user")
	case len(found) > 1:
		return found[0], fmt.Errorf("the customer-service message reached the test user %d times", len(found))
	}
	m := found[0]
	if m.SentAt.Before(rt.CodeSentAt) || m.SentAt.Sub(rt.CodeSentAt) > within {
		return m, fmt.Errorf("the customer-service message was sent %s after QUERY_AUTH_CODE, want within %s", m.SentAt.Sub(rt.CodeSentAt), within)
	}
	return m, nil
}
