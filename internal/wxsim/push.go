/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// InfoType values of the pushes the simulator sends.
const (
	InfoTypeComponentVerifyTicket = "component_verify_ticket"
	InfoTypeAuthorized            = "authorized"
	InfoTypeUpdateAuthorized      = "updateauthorized"
	InfoTypeUnauthorized          = "unauthorized"
)

const maxPushLog = 200

// PushRecord is the outcome of one push (all its attempts). It holds no
// secret: not the ticket, nor the code.
type PushRecord struct {
	ID              int       `json:"id"`
	ComponentAppID  string    `json:"component_appid"`
	InfoType        string    `json:"info_type"`
	AuthorizerAppID string    `json:"authorizer_appid,omitempty"`
	CreateTime      time.Time `json:"create_time"`
	Attempts        int       `json:"attempts"`
	Delivered       bool      `json:"delivered"`
	// LastError describes the last failed attempt ("" if delivered at once).
	LastError string `json:"last_error,omitempty"`
}

// pushField is one element of a push's plaintext XML.
type pushField struct {
	name  string
	value string
	raw   bool // a number: no CDATA
}

// buildPushXML renders the plaintext push the way WeChat writes it:
// strings in CDATA, numbers bare.
func buildPushXML(fields []pushField) []byte {
	var b bytes.Buffer
	b.WriteString("<xml>")
	for _, f := range fields {
		b.WriteString("<" + f.name + ">")
		if f.raw {
			b.WriteString(f.value)
		} else {
			// "]]>" cannot occur inside CDATA: split it across two sections.
			b.WriteString("<![CDATA[" + strings.ReplaceAll(f.value, "]]>", "]]]]><![CDATA[>") + "]]>")
		}
		b.WriteString("</" + f.name + ">")
	}
	b.WriteString("</xml>")
	return b.Bytes()
}

func ticketPushXML(appID string, created time.Time, ticket string) []byte {
	return buildPushXML([]pushField{
		{"AppId", appID, false},
		{"CreateTime", strconv.FormatInt(created.Unix(), 10), true},
		{"InfoType", InfoTypeComponentVerifyTicket, false},
		{"ComponentVerifyTicket", ticket, false},
	})
}

func authorizedPushXML(appID string, created time.Time, infoType, authorizerAppID, code string, codeExpires time.Time, preAuthCode string) []byte {
	fields := []pushField{
		{"AppId", appID, false},
		{"CreateTime", strconv.FormatInt(created.Unix(), 10), true},
		{"InfoType", infoType, false},
		{"AuthorizerAppid", authorizerAppID, false},
		{"AuthorizationCode", code, false},
		{"AuthorizationCodeExpiredTime", strconv.FormatInt(codeExpires.Unix(), 10), true},
	}
	if preAuthCode != "" {
		fields = append(fields, pushField{"PreAuthCode", preAuthCode, false})
	}
	return buildPushXML(fields)
}

func unauthorizedPushXML(appID string, created time.Time, authorizerAppID string) []byte {
	return buildPushXML([]pushField{
		{"AppId", appID, false},
		{"CreateTime", strconv.FormatInt(created.Unix(), 10), true},
		{"InfoType", InfoTypeUnauthorized, false},
		{"AuthorizerAppid", authorizerAppID, false},
	})
}

// plainSignature is the query's "signature": SHA1 of the sorted token,
// timestamp and nonce.
func plainSignature(token, timestamp, nonce string) string {
	parts := []string{token, timestamp, nonce}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

func newNonce() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(9_000_000_000))
	return strconv.FormatInt(n.Int64()+1_000_000_000, 10)
}

// push describes one push to deliver.
type push struct {
	componentAppID  string
	authorizerAppID string
	infoType        string
	created         time.Time
	msg             []byte
}

// deliver POSTs a push to the component's receiver, retrying like WeChat
// when the receiver does not answer 200 "success". Retry waits run on the
// simulator's clock.
func (s *Simulator) deliver(ctx context.Context, p push) PushRecord {
	rec := PushRecord{ComponentAppID: p.componentAppID, InfoType: p.infoType, AuthorizerAppID: p.authorizerAppID, CreateTime: p.created}
	delay := s.opts.PushRetryDelay
	for attempt := 1; attempt <= 1+s.opts.PushRetries; attempt++ {
		if attempt > 1 {
			t := s.clock.NewTimer(delay)
			select {
			case <-t.C():
			case <-ctx.Done():
				t.Stop()
				rec.LastError = "canceled: " + ctx.Err().Error()
				return s.logPush(rec)
			case <-s.done:
				t.Stop()
				rec.LastError = "simulator closed"
				return s.logPush(rec)
			}
			delay *= 2
		}
		rec.Attempts = attempt
		err := s.postPush(ctx, p)
		if err == nil {
			rec.Delivered = true
			rec.LastError = ""
			s.log.Info("push delivered", "component", p.componentAppID, "infoType", p.infoType, "attempt", attempt)
			return s.logPush(rec)
		}
		rec.LastError = err.Error()
		s.log.Info("push failed", "component", p.componentAppID, "infoType", p.infoType, "attempt", attempt, "error", err.Error())
	}
	return s.logPush(rec)
}

func (s *Simulator) logPush(rec PushRecord) PushRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushSeq++
	rec.ID = s.pushSeq
	s.pushes = append(s.pushes, rec)
	if len(s.pushes) > maxPushLog {
		s.pushes = append([]PushRecord(nil), s.pushes[len(s.pushes)-maxPushLog:]...)
	}
	return rec
}

// Pushes returns the most recent push records, oldest first.
func (s *Simulator) Pushes() []PushRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PushRecord(nil), s.pushes...)
}

func (s *Simulator) postPush(ctx context.Context, p push) error {
	s.mu.Lock()
	c, ok := s.components[p.componentAppID]
	if !ok {
		s.mu.Unlock()
		return ErrUnknownComponent
	}
	cr, token, receiver := c.crypter, c.seed.Token, c.seed.ReceiverURL
	s.mu.Unlock()
	if receiver == "" {
		return ErrNoReceiver
	}
	u, err := url.Parse(receiver)
	if err != nil {
		return errors.New("receiver URL is invalid")
	}
	timestamp := strconv.FormatInt(s.clock.Now().Unix(), 10)
	nonce := newNonce()
	body, msgSig, err := cr.SealPush(p.msg, timestamp, nonce)
	if err != nil {
		return fmt.Errorf("sealing push: %w", err)
	}
	q := u.Query()
	q.Set("signature", plainSignature(token, timestamp, nonce))
	q.Set("timestamp", timestamp)
	q.Set("nonce", nonce)
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", msgSig)
	u.RawQuery = q.Encode()

	ctx, cancel := context.WithTimeout(ctx, s.opts.PushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return errors.New("building push request failed")
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "Mozilla/4.0 (wechat-sim)")
	resp, err := s.opts.PushClient.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("posting push: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("receiver answered HTTP %d", resp.StatusCode)
	}
	if strings.TrimSpace(string(answer)) != "success" {
		return errors.New(`receiver did not answer "success"`)
	}
	return nil
}

// PushTicket makes WeChat generate a new component_verify_ticket and push it
// to the component's receiver now. It returns the ticket, and an error if the
// push was not delivered after the retries (the ticket is valid anyway, as on
// WeChat).
func (s *Simulator) PushTicket(ctx context.Context, componentAppID string) (string, error) {
	s.mu.Lock()
	c, ok := s.components[componentAppID]
	if !ok {
		s.mu.Unlock()
		return "", ErrUnknownComponent
	}
	if c.seed.ReceiverURL == "" {
		s.mu.Unlock()
		return "", ErrNoReceiver
	}
	ticket := s.issueTicketLocked(c)
	now := s.clock.Now()
	s.mu.Unlock()

	rec := s.deliver(ctx, push{componentAppID: componentAppID, infoType: InfoTypeComponentVerifyTicket, created: now, msg: ticketPushXML(componentAppID, now, ticket)})
	if !rec.Delivered {
		return ticket, fmt.Errorf("ticket push to %s not delivered after %d attempts: %s", componentAppID, rec.Attempts, rec.LastError)
	}
	return ticket, nil
}

// SetTicketPushing starts or stops the periodic ticket pushes of a component
// (WeChat stops them, for example, when a platform is suspended;
// api_start_push_ticket starts them again).
func (s *Simulator) SetTicketPushing(componentAppID string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.components[componentAppID]
	if !ok {
		return ErrUnknownComponent
	}
	c.pushing = on
	return nil
}

// Run pushes a ticket to every component that has a receiver every
// TicketInterval of the simulator's clock (and at once if PushOnStart), and
// right away after api_start_push_ticket. It returns when ctx is done or the
// simulator is closed, after the pushes in flight finish.
func (s *Simulator) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	pushOne := func(appID string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.PushTicket(ctx, appID); err != nil && ctx.Err() == nil {
				s.log.Warn("ticket push failed", "component", appID, "error", err.Error())
			}
		}()
	}
	pushAll := func() {
		for _, appID := range s.pushTargets() {
			pushOne(appID)
		}
	}
	timer := s.clock.NewTimer(s.opts.TicketInterval)
	defer timer.Stop()
	if s.opts.PushOnStart {
		pushAll()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case <-timer.C():
			pushAll()
			timer.Reset(s.opts.TicketInterval)
		case appID := <-s.pushNow:
			pushOne(appID)
		}
	}
}

func (s *Simulator) pushTargets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, c := range s.components {
		if c.pushing && c.seed.ReceiverURL != "" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
