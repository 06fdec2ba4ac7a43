/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Fault is a scripted failure for the next Count calls of an endpoint.
type Fault struct {
	// API is the endpoint name (e.g. "api_component_token"); "" or "*"
	// matches every endpoint.
	API string
	// AppID, if set, limits the fault to calls naming this component or
	// authorizer appid.
	AppID string
	// Count is how many calls the fault affects; 0 means 1.
	Count int
	// ErrCode, if not 0, is answered instead of processing the call, with
	// ErrMsg (WeChat's text for the code if empty).
	ErrCode int
	ErrMsg  string
	// HTTPStatus, if not 0, is answered with a plain-text body instead.
	HTTPStatus int
	// Timeout holds the request without answering until the client gives
	// up (or the simulator is closed).
	Timeout bool
	// Latency delays the call by this much of the simulator's clock before
	// the rest of the fault (or normal processing) applies.
	Latency time.Duration
	// HoldAnswer processes the call normally (a refresh token rotates, a
	// code is used up, the call is counted with its errcode), then holds
	// the answer until the client gives up (or the simulator is closed): a
	// connection lost after WeChat acted.
	HoldAnswer bool
}

// AddFault scripts a fault. Faults are matched in the order they were added.
func (s *Simulator) AddFault(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	if f.API == "*" {
		f.API = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Faults returns the pending faults with their remaining counts.
func (s *Simulator) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, 0, len(s.faults))
	for _, f := range s.faults {
		out = append(out, *f)
	}
	return out
}

// ClearFaults drops every pending fault.
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// holdAnswer keeps the answer of a call processed under a HoldAnswer fault
// from the client until it gives up or the simulator is closed.
func (s *Simulator) holdAnswer(r *http.Request, api string) {
	s.log.Info("simulated lost answer: call processed, answer held", "api", api)
	select {
	case <-r.Context().Done():
	case <-s.done:
	}
}

func (s *Simulator) takeFault(api string, ids []string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.API != "" && f.API != api {
			continue
		}
		if f.AppID != "" && !slices.Contains(ids, f.AppID) {
			continue
		}
		f.Count--
		if f.Count <= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return *f, true
	}
	return Fault{}, false
}

// AuthorizeRequest is an account administrator completing the authorization
// page of a component.
type AuthorizeRequest struct {
	ComponentAppID  string
	AuthorizerAppID string
	// PreAuthCode, if set, must be a valid unused pre_auth_code of the
	// component; it is consumed and echoed in the push.
	PreAuthCode string
	// RedirectURI, if set, gets auth_code and expires_in appended in
	// RedirectURL.
	RedirectURI string
	// FuncInfo, if set, replaces the permission sets granted.
	FuncInfo []int
}

// AuthorizeResult is what the administrator's browser and the receiver get.
type AuthorizeResult struct {
	AuthCode  string
	ExpiresIn time.Duration
	ExpiresAt time.Time
	// RedirectURL is RedirectURI?auth_code=…&expires_in=… ("" without a
	// RedirectURI).
	RedirectURL string
	// InfoType is "authorized" for a new authorization, "updateauthorized"
	// when the account was already authorized.
	InfoType string
	// Push is the outcome of the push to the receiver (Attempts 0 if the
	// component has no receiver).
	Push PushRecord
}

// Authorize plays "the user authorizes": it issues an authorization code,
// pushes authorized (or updateauthorized) to the receiver and returns the
// redirect URL. An account the simulator does not know is created with a
// default profile. A first authorization (or one after a revocation) issues
// a new refresh token.
func (s *Simulator) Authorize(ctx context.Context, req AuthorizeRequest) (AuthorizeResult, error) {
	if req.AuthorizerAppID == "" {
		return AuthorizeResult{}, errors.New("authorizer appid is empty")
	}
	s.mu.Lock()
	c, ok := s.components[req.ComponentAppID]
	if !ok {
		s.mu.Unlock()
		return AuthorizeResult{}, ErrUnknownComponent
	}
	now := s.clock.Now()
	if req.PreAuthCode != "" {
		pac, ok := s.preAuthCodes[req.PreAuthCode]
		if !ok || pac.used || pac.componentAppID != c.seed.AppID || !now.Before(pac.expires) {
			s.mu.Unlock()
			return AuthorizeResult{}, ErrInvalidPreAuth
		}
		pac.used = true
	}
	a := c.authorizerLocked(req.AuthorizerAppID)
	infoType := InfoTypeUpdateAuthorized
	if !a.authorized {
		infoType = InfoTypeAuthorized
		a.authorized = true
		a.authTime = now
		a.refreshToken = newRefreshToken()
	}
	if len(req.FuncInfo) > 0 {
		a.funcInfo = append([]int(nil), req.FuncInfo...)
	}
	code := newAuthCode()
	expires := now.Add(s.opts.AuthCodeLifetime)
	s.authCodes[code] = &codeRecord{componentAppID: c.seed.AppID, authorizerAppID: req.AuthorizerAppID, expires: expires}
	hasReceiver := c.seed.ReceiverURL != ""
	s.mu.Unlock()

	res := AuthorizeResult{AuthCode: code, ExpiresIn: s.opts.AuthCodeLifetime, ExpiresAt: expires, InfoType: infoType}
	if req.RedirectURI != "" {
		u, err := url.Parse(req.RedirectURI)
		if err != nil {
			return AuthorizeResult{}, fmt.Errorf("redirect_uri: %w", err)
		}
		q := u.Query()
		q.Set("auth_code", code)
		q.Set("expires_in", strconv.FormatInt(int64(s.opts.AuthCodeLifetime.Seconds()), 10))
		u.RawQuery = q.Encode()
		res.RedirectURL = u.String()
	}
	res.Push = PushRecord{ComponentAppID: req.ComponentAppID, InfoType: infoType, AuthorizerAppID: req.AuthorizerAppID, CreateTime: now}
	if hasReceiver {
		res.Push = s.deliver(ctx, push{
			componentAppID: req.ComponentAppID, authorizerAppID: req.AuthorizerAppID, infoType: infoType, created: now,
			msg: authorizedPushXML(req.ComponentAppID, now, infoType, req.AuthorizerAppID, code, expires, req.PreAuthCode),
		})
	}
	return res, nil
}

// Revoke plays "the user revokes the authorization": the account's access
// tokens, refresh token and unused authorization codes stop working
// (api_authorizer_token then answers 61003) and unauthorized is pushed.
func (s *Simulator) Revoke(ctx context.Context, componentAppID, authorizerAppID string) (PushRecord, error) {
	s.mu.Lock()
	c, ok := s.components[componentAppID]
	if !ok {
		s.mu.Unlock()
		return PushRecord{}, ErrUnknownComponent
	}
	a, ok := c.authorizers[authorizerAppID]
	if !ok {
		s.mu.Unlock()
		return PushRecord{}, ErrUnknownAuthorizer
	}
	if !a.authorized {
		s.mu.Unlock()
		return PushRecord{}, ErrNotAuthorized
	}
	a.authorized = false
	a.refreshToken = ""
	a.token = ""
	for _, t := range s.tokens {
		if t.kind == authorizerToken && t.componentAppID == componentAppID && t.authorizerID == authorizerAppID {
			t.revoked = true
		}
	}
	for _, code := range s.authCodes {
		if code.componentAppID == componentAppID && code.authorizerAppID == authorizerAppID {
			code.used = true
		}
	}
	now := s.clock.Now()
	hasReceiver := c.seed.ReceiverURL != ""
	s.mu.Unlock()

	rec := PushRecord{ComponentAppID: componentAppID, InfoType: InfoTypeUnauthorized, AuthorizerAppID: authorizerAppID, CreateTime: now}
	if hasReceiver {
		rec = s.deliver(ctx, push{
			componentAppID: componentAppID, authorizerAppID: authorizerAppID, infoType: InfoTypeUnauthorized, created: now,
			msg: unauthorizedPushXML(componentAppID, now, authorizerAppID),
		})
	}
	return rec, nil
}

// --- admin HTTP API -------------------------------------------------------

func (s *Simulator) adminRoutes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("GET /admin/state", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"now": s.clock.Now().UTC(), "components": s.State()})
	})
	s.mux.HandleFunc("POST /admin/components", s.adminPutComponent)
	s.mux.HandleFunc("POST /admin/authorizers", s.adminPutAuthorizer)
	s.mux.HandleFunc("POST /admin/authorize", s.adminAuthorize)
	s.mux.HandleFunc("POST /admin/open-link", s.adminOpenLink)
	s.mux.HandleFunc("POST /admin/revoke", s.adminRevoke)
	s.mux.HandleFunc("POST /admin/push-ticket", s.adminPushTicket)
	s.mux.HandleFunc("POST /admin/ticket-pushing", s.adminTicketPushing)
	s.mux.HandleFunc("POST /admin/list-refresh-tokens", s.adminListRefreshTokens)
	s.mux.HandleFunc("GET /admin/pushes", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"pushes": s.Pushes()})
	})
	s.mux.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, _ *http.Request) {
		out := []faultJSON{}
		for _, f := range s.Faults() {
			out = append(out, toFaultJSON(f))
		}
		writeJSON(w, http.StatusOK, map[string]any{"faults": out})
	})
	s.mux.HandleFunc("POST /admin/faults", s.adminAddFault)
	s.mux.HandleFunc("DELETE /admin/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("GET /admin/counters", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"counters": s.Counters()})
	})
	s.mux.HandleFunc("DELETE /admin/counters", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetCounters()
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("GET /admin/quotas", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"quotas": s.Quotas()})
	})
	s.mux.HandleFunc("POST /admin/quotas", s.adminSetQuota)
}

func adminError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// decodeAdmin reads a JSON admin body strictly.
func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		adminError(w, http.StatusBadRequest, fmt.Errorf("invalid JSON body: %w", err))
		return false
	}
	return true
}

func statusFor(err error) int {
	switch {
	case errors.Is(err, ErrUnknownComponent), errors.Is(err, ErrUnknownAuthorizer):
		return http.StatusNotFound
	case errors.Is(err, ErrNotAuthorized), errors.Is(err, ErrInvalidPreAuth):
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

func (s *Simulator) adminPutComponent(w http.ResponseWriter, r *http.Request) {
	var seed ComponentSeed
	if !decodeAdmin(w, r, &seed) {
		return
	}
	if err := s.PutComponent(seed); err != nil {
		adminError(w, statusFor(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"appid": seed.AppID})
}

func (s *Simulator) adminPutAuthorizer(w http.ResponseWriter, r *http.Request) {
	var seed AuthorizerSeed
	if !decodeAdmin(w, r, &seed) {
		return
	}
	if err := s.PutAuthorizer(seed); err != nil {
		adminError(w, statusFor(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"appid": seed.AppID})
}

func (s *Simulator) adminAuthorize(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ComponentAppID  string `json:"component_appid"`
		AuthorizerAppID string `json:"authorizer_appid"`
		PreAuthCode     string `json:"pre_auth_code"`
		RedirectURI     string `json:"redirect_uri"`
		FuncInfo        []int  `json:"func_info"`
	}
	if !decodeAdmin(w, r, &body) {
		return
	}
	res, err := s.Authorize(r.Context(), AuthorizeRequest(body))
	if err != nil {
		adminError(w, statusFor(err), err)
		return
	}
	writeAuthorizeResult(w, res)
}

func (s *Simulator) adminRevoke(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ComponentAppID  string `json:"component_appid"`
		AuthorizerAppID string `json:"authorizer_appid"`
	}
	if !decodeAdmin(w, r, &body) {
		return
	}
	rec, err := s.Revoke(r.Context(), body.ComponentAppID, body.AuthorizerAppID)
	if err != nil {
		adminError(w, statusFor(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"push": rec})
}

func (s *Simulator) adminPushTicket(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ComponentAppID string `json:"component_appid"`
	}
	if !decodeAdmin(w, r, &body) {
		return
	}
	_, err := s.PushTicket(r.Context(), body.ComponentAppID)
	switch {
	case errors.Is(err, ErrUnknownComponent), errors.Is(err, ErrNoReceiver):
		adminError(w, statusFor(err), err)
	case err != nil:
		writeJSON(w, http.StatusBadGateway, map[string]any{"delivered": false, "error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"delivered": true})
	}
}

func (s *Simulator) adminTicketPushing(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ComponentAppID string `json:"component_appid"`
		Enabled        bool   `json:"enabled"`
	}
	if !decodeAdmin(w, r, &body) {
		return
	}
	if err := s.SetTicketPushing(body.ComponentAppID, body.Enabled); err != nil {
		adminError(w, statusFor(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"component_appid": body.ComponentAppID, "enabled": body.Enabled})
}

// faultJSON is Fault on the admin API (latency as a Go duration string).
type faultJSON struct {
	API        string `json:"api"`
	AppID      string `json:"appid,omitempty"`
	Count      int    `json:"count"`
	ErrCode    int    `json:"errcode,omitempty"`
	ErrMsg     string `json:"errmsg,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Timeout    bool   `json:"timeout,omitempty"`
	Latency    string `json:"latency,omitempty"`
	HoldAnswer bool   `json:"hold_answer,omitempty"`
}

func toFaultJSON(f Fault) faultJSON {
	fj := faultJSON{API: f.API, AppID: f.AppID, Count: f.Count, ErrCode: f.ErrCode, ErrMsg: f.ErrMsg, HTTPStatus: f.HTTPStatus, Timeout: f.Timeout, HoldAnswer: f.HoldAnswer}
	if f.Latency > 0 {
		fj.Latency = f.Latency.String()
	}
	return fj
}

func (s *Simulator) adminAddFault(w http.ResponseWriter, r *http.Request) {
	var fj faultJSON
	if !decodeAdmin(w, r, &fj) {
		return
	}
	f := Fault{API: fj.API, AppID: fj.AppID, Count: fj.Count, ErrCode: fj.ErrCode, ErrMsg: fj.ErrMsg, HTTPStatus: fj.HTTPStatus, Timeout: fj.Timeout, HoldAnswer: fj.HoldAnswer}
	if fj.Latency != "" {
		d, err := time.ParseDuration(fj.Latency)
		if err != nil || d < 0 {
			adminError(w, http.StatusBadRequest, fmt.Errorf("latency must be a Go duration such as 1500ms"))
			return
		}
		f.Latency = d
	}
	if f.ErrCode == 0 && f.HTTPStatus == 0 && !f.Timeout && f.Latency == 0 && !f.HoldAnswer {
		adminError(w, http.StatusBadRequest, errors.New("a fault needs errcode, http_status, timeout, hold_answer or latency"))
		return
	}
	if f.HoldAnswer && (f.ErrCode != 0 || f.HTTPStatus != 0 || f.Timeout) {
		adminError(w, http.StatusBadRequest, errors.New("hold_answer processes the call: it goes with latency only, not errcode, http_status or timeout"))
		return
	}
	if f.HTTPStatus != 0 && (f.HTTPStatus < 100 || f.HTTPStatus > 599) {
		adminError(w, http.StatusBadRequest, errors.New("http_status must be 100..599"))
		return
	}
	s.AddFault(f)
	writeJSON(w, http.StatusOK, map[string]any{"fault": toFaultJSON(s.lastFault())})
}

func (s *Simulator) lastFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}
	}
	return *s.faults[len(s.faults)-1]
}

func (s *Simulator) adminSetQuota(w http.ResponseWriter, r *http.Request) {
	var body struct {
		API   string `json:"api"`
		Limit int    `json:"limit"`
	}
	if !decodeAdmin(w, r, &body) {
		return
	}
	if body.API == "" {
		adminError(w, http.StatusBadRequest, errors.New("api is required"))
		return
	}
	s.SetQuota(body.API, body.Limit)
	writeJSON(w, http.StatusOK, map[string]any{"quotas": s.Quotas()})
}

// writeAuthorizeResult answers an admin call that played an authorization.
func writeAuthorizeResult(w http.ResponseWriter, res AuthorizeResult) {
	writeJSON(w, http.StatusOK, map[string]any{
		"auth_code":    res.AuthCode,
		"expires_in":   int64(res.ExpiresIn.Seconds()),
		"redirect_url": res.RedirectURL,
		"info_type":    res.InfoType,
		"push":         res.Push,
	})
}
