/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
)

// errMsgs are WeChat's errmsg texts for the errcodes the simulator answers.
var errMsgs = map[int]string{
	-1:    "system error",
	40001: "invalid credential, access_token is invalid or not latest",
	40003: "invalid openid",
	40008: "invalid message type",
	40013: "invalid appid",
	40014: "invalid access_token",
	40097: "invalid args",
	40125: "invalid appsecret",
	41001: "access_token missing",
	41002: "appid missing",
	41004: "appsecret missing",
	42001: "access_token expired",
	43001: "require GET method",
	43002: "require POST method",
	44004: "empty content",
	45009: "reach max api daily quota limit",
	47001: "data format error",
	48001: "api unauthorized",
	48006: "forbid to clear quota because of reaching the limit",
	61003: "component is not authorized by this account",
	61004: "access clientip is not registered",
	61005: "component ticket is expired",
	61006: "component ticket is invalid",
	61007: "api is unauthorized to component",
	61009: "code is invalid",
	61010: "code is expired",
	61011: "invalid component",
	61023: "refresh_token is invalid",
}

// ErrMsg returns the simulator's errmsg for an errcode.
func ErrMsg(code int) string {
	if m, ok := errMsgs[code]; ok {
		return m
	}
	return "simulated error"
}

const maxRequestBody = 1 << 20

// apiRequest is the union of the JSON bodies of the component endpoints.
type apiRequest struct {
	ComponentAppID     string `json:"component_appid"`
	ComponentAppSecret string `json:"component_appsecret"`
	ComponentSecret    string `json:"component_secret"`
	VerifyTicket       string `json:"component_verify_ticket"`
	AuthorizationCode  string `json:"authorization_code"`
	AuthorizerAppID    string `json:"authorizer_appid"`
	RefreshToken       string `json:"authorizer_refresh_token"`
	Offset             *int   `json:"offset"`
	Count              *int   `json:"count"`
	OptionName         string `json:"option_name"`
	OptionValue        string `json:"option_value"`
}

type apiCall struct {
	req   apiRequest
	token string
	ip    string
}

type apiHandler func(s *Simulator, call *apiCall) (resp any, errcode int)

func (s *Simulator) routes() {
	handlers := map[string]apiHandler{
		APIComponentToken:    (*Simulator).apiComponentToken,
		APIStartPushTicket:   (*Simulator).apiStartPushTicket,
		APICreatePreAuthCode: (*Simulator).apiCreatePreAuthCode,
		APIQueryAuth:         (*Simulator).apiQueryAuth,
		APIAuthorizerToken:   (*Simulator).apiAuthorizerToken,
		APIGetAuthorizerInfo: (*Simulator).apiGetAuthorizerInfo,
		APIGetAuthorizerList: (*Simulator).apiGetAuthorizerList,
		APIClearQuota:        (*Simulator).apiClearQuota,
	}
	for api, h := range handlers {
		s.mux.HandleFunc("/cgi-bin/component/"+api, s.serveComponentAPI(api, h))
	}
	s.mux.HandleFunc("/cgi-bin/get_api_domain_ip", s.serveGetAPIDomainIP)
	s.mux.HandleFunc("/cgi-bin/message/custom/send", s.serveSendCustomMessage)
	s.mux.HandleFunc("/cgi-bin/ticket/getticket", s.serveGetTicket)
	s.adminRoutes()
	s.optionRoutes()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErrcode(w http.ResponseWriter, code int, msg string) {
	if msg == "" {
		msg = ErrMsg(code)
	}
	writeJSON(w, http.StatusOK, map[string]any{"errcode": code, "errmsg": msg + " rid: " + newRID()})
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// faultOutcome is what a scripted fault leaves the endpoint to do.
type faultOutcome int

const (
	// noFault: process the call normally and answer.
	noFault faultOutcome = iota
	// faultAnswered: the fault answered (or abandoned) the request.
	faultAnswered
	// faultHoldAnswer: process the call normally, then hold the answer (holdAnswer).
	faultHoldAnswer
)

// applyFault plays a scripted fault and says what is left to do.
func (s *Simulator) applyFault(w http.ResponseWriter, r *http.Request, api string, ids []string) faultOutcome {
	f, ok := s.takeFault(api, ids)
	if !ok {
		return noFault
	}
	if f.Latency > 0 {
		t := s.clock.NewTimer(f.Latency)
		select {
		case <-t.C():
		case <-r.Context().Done():
			t.Stop()
			s.count(api, ids, true)
			return faultAnswered
		case <-s.done:
			t.Stop()
			s.count(api, ids, true)
			return faultAnswered
		}
	}
	switch {
	case f.Timeout:
		s.count(api, ids, true)
		s.log.Info("simulated timeout", "api", api)
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return faultAnswered
	case f.HTTPStatus != 0:
		s.count(api, ids, true)
		http.Error(w, "simulated failure", f.HTTPStatus)
		return faultAnswered
	case f.ErrCode != 0:
		s.count(api, ids, true)
		s.log.Info("simulated errcode", "api", api, "errcode", f.ErrCode)
		writeErrcode(w, f.ErrCode, f.ErrMsg)
		return faultAnswered
	case f.HoldAnswer:
		return faultHoldAnswer
	}
	return noFault
}

func (s *Simulator) count(api string, ids []string, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countLocked(api, ids, failed)
}

func (s *Simulator) serveComponentAPI(api string, h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			s.count(api, nil, true)
			writeErrcode(w, 43002, "")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
		var call apiCall
		if err != nil || len(body) > maxRequestBody || json.Unmarshal(body, &call.req) != nil {
			s.count(api, nil, true)
			writeErrcode(w, 47001, "")
			return
		}
		ids := []string{call.req.ComponentAppID, call.req.AuthorizerAppID}
		outcome := s.applyFault(w, r, api, ids)
		if outcome == faultAnswered {
			return
		}
		call.token = r.URL.Query().Get("component_access_token")
		call.ip = remoteIP(r)

		s.mu.Lock()
		resp, code := h(s, &call)
		s.countLocked(api, ids, code != 0)
		s.mu.Unlock()

		s.log.Info("api call", "api", api, "component", call.req.ComponentAppID, "authorizer", call.req.AuthorizerAppID, "errcode", code)
		if outcome == faultHoldAnswer {
			s.holdAnswer(r, api)
			return
		}
		if code != 0 {
			writeErrcode(w, code, "")
			return
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

// authLocked checks the component_access_token of a call and the
// component_appid, whitelist and quota that go with it.
func (s *Simulator) authLocked(call *apiCall, api string) (*component, int) {
	c, code := s.callerLocked(call)
	if code != 0 {
		return nil, code
	}
	if !s.consumeQuotaLocked(c, api) {
		return nil, 45009
	}
	return c, 0
}

// callerLocked checks the component_access_token of a call and the
// component_appid and whitelist that go with it, without counting the call
// against a quota (clear_quota has none of its own).
func (s *Simulator) callerLocked(call *apiCall) (*component, int) {
	rec, code := s.checkTokenLocked(call.token, componentToken)
	if code != 0 {
		return nil, code
	}
	if call.req.ComponentAppID == "" {
		return nil, 41002
	}
	c, ok := s.components[rec.componentAppID]
	if !ok || call.req.ComponentAppID != rec.componentAppID {
		return nil, 61011
	}
	if !ipAllowed(c, call.ip) {
		return nil, 61004
	}
	return c, 0
}

func ipAllowed(c *component, ip string) bool {
	return len(c.seed.IPWhitelist) == 0 || slices.Contains(c.seed.IPWhitelist, ip)
}

// componentBySecretLocked checks component_appid, the caller IP and the
// appsecret of the calls that authenticate with the secret.
func (s *Simulator) componentBySecretLocked(call *apiCall, secret string) (*component, int) {
	if call.req.ComponentAppID == "" {
		return nil, 41002
	}
	c, ok := s.components[call.req.ComponentAppID]
	if !ok {
		return nil, 40013
	}
	if !ipAllowed(c, call.ip) {
		return nil, 61004
	}
	if secret == "" {
		return nil, 41004
	}
	if secret != c.seed.AppSecret {
		return nil, 40125
	}
	return c, 0
}

func (s *Simulator) apiComponentToken(call *apiCall) (any, int) {
	c, code := s.componentBySecretLocked(call, call.req.ComponentAppSecret)
	if code != 0 {
		return nil, code
	}
	if !s.consumeQuotaLocked(c, APIComponentToken) {
		return nil, 45009
	}
	issued, ok := c.tickets[call.req.VerifyTicket]
	if !ok {
		return nil, 61006
	}
	if s.clock.Since(issued) >= s.opts.TicketLifetime {
		return nil, 61005
	}
	c.token = s.issueTokenLocked(componentToken, c.seed.AppID, "", c.token)
	return map[string]any{
		"component_access_token": c.token,
		"expires_in":             int64(s.opts.TokenLifetime.Seconds()),
	}, 0
}

func (s *Simulator) apiStartPushTicket(call *apiCall) (any, int) {
	c, code := s.componentBySecretLocked(call, call.req.ComponentSecret)
	if code != 0 {
		return nil, code
	}
	if !s.consumeQuotaLocked(c, APIStartPushTicket) {
		return nil, 45009
	}
	c.pushing = true
	select {
	case s.pushNow <- c.seed.AppID:
	default:
	}
	return map[string]any{"errcode": 0, "errmsg": "ok"}, 0
}

func (s *Simulator) apiCreatePreAuthCode(call *apiCall) (any, int) {
	c, code := s.authLocked(call, APICreatePreAuthCode)
	if code != 0 {
		return nil, code
	}
	pac := newPreAuthCode()
	s.preAuthCodes[pac] = &codeRecord{componentAppID: c.seed.AppID, expires: s.clock.Now().Add(s.opts.PreAuthCodeLifetime)}
	return map[string]any{
		"pre_auth_code": pac,
		"expires_in":    int64(s.opts.PreAuthCodeLifetime.Seconds()),
	}, 0
}

func funcInfoJSON(ids []int) []any {
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, map[string]any{"funcscope_category": map[string]any{"id": id}})
	}
	return out
}

func (s *Simulator) apiQueryAuth(call *apiCall) (any, int) {
	c, code := s.authLocked(call, APIQueryAuth)
	if code != 0 {
		return nil, code
	}
	rec, ok := s.authCodes[call.req.AuthorizationCode]
	if !ok || rec.used || rec.componentAppID != c.seed.AppID {
		return nil, 61009
	}
	if !s.clock.Now().Before(rec.expires) {
		return nil, 61010
	}
	a, ok := c.authorizers[rec.authorizerAppID]
	if !ok || !a.authorized {
		return nil, 61009
	}
	rec.used = true
	a.token = s.issueTokenLocked(authorizerToken, c.seed.AppID, a.seed.AppID, a.token)
	return map[string]any{
		"authorization_info": map[string]any{
			"authorizer_appid":         a.seed.AppID,
			"authorizer_access_token":  a.token,
			"expires_in":               int64(s.opts.TokenLifetime.Seconds()),
			"authorizer_refresh_token": a.refreshToken,
			"func_info":                funcInfoJSON(a.funcInfo),
		},
	}, 0
}

// authorizedAccountLocked checks the component token of call and finds the account it names,
// which must have authorized the component (61003 otherwise).
func (s *Simulator) authorizedAccountLocked(call *apiCall, api string) (*component, *authorizer, int) {
	c, code := s.authLocked(call, api)
	if code != 0 {
		return nil, nil, code
	}
	if call.req.AuthorizerAppID == "" {
		return nil, nil, 40097
	}
	a, ok := c.authorizers[call.req.AuthorizerAppID]
	if !ok || !a.authorized {
		return nil, nil, 61003
	}
	return c, a, 0
}

func (s *Simulator) apiAuthorizerToken(call *apiCall) (any, int) {
	c, a, code := s.authorizedAccountLocked(call, APIAuthorizerToken)
	if code != 0 {
		return nil, code
	}
	if call.req.RefreshToken == "" || call.req.RefreshToken != a.refreshToken {
		return nil, 61023
	}
	a.token = s.issueTokenLocked(authorizerToken, c.seed.AppID, a.seed.AppID, a.token)
	if s.opts.RotateRefreshTokens {
		a.refreshToken = newRefreshToken()
	}
	return map[string]any{
		"authorizer_access_token":  a.token,
		"expires_in":               int64(s.opts.TokenLifetime.Seconds()),
		"authorizer_refresh_token": a.refreshToken,
	}, 0
}

func (s *Simulator) apiGetAuthorizerInfo(call *apiCall) (any, int) {
	_, a, code := s.authorizedAccountLocked(call, APIGetAuthorizerInfo)
	if code != 0 {
		return nil, code
	}
	p := a.seed
	info := map[string]any{
		"nick_name":         p.NickName,
		"head_img":          p.HeadImg,
		"service_type_info": map[string]any{"id": p.ServiceType},
		"verify_type_info":  map[string]any{"id": p.VerifyType},
		"user_name":         p.UserName,
		"principal_name":    p.PrincipalName,
		"alias":             p.Alias,
		"signature":         p.Signature,
		"business_info": map[string]any{
			"open_store": p.Business.OpenStore, "open_scan": p.Business.OpenScan, "open_pay": p.Business.OpenPay,
			"open_card": p.Business.OpenCard, "open_shake": p.Business.OpenShake,
		},
		"qrcode_url": p.QRCodeURL,
	}
	if p.MiniProgram {
		info["MiniProgramInfo"] = map[string]any{
			"network":      map[string]any{"RequestDomain": []string{}, "WsRequestDomain": []string{}, "UploadDomain": []string{}, "DownloadDomain": []string{}},
			"categories":   []any{},
			"visit_status": 0,
		}
	}
	return map[string]any{
		"authorizer_info": info,
		"authorization_info": map[string]any{
			"authorizer_appid":         p.AppID,
			"authorizer_refresh_token": a.refreshToken,
			"func_info":                funcInfoJSON(a.funcInfo),
		},
	}, 0
}

func (s *Simulator) apiGetAuthorizerList(call *apiCall) (any, int) {
	c, code := s.authLocked(call, APIGetAuthorizerList)
	if code != 0 {
		return nil, code
	}
	offset, count := 0, 0
	if call.req.Offset != nil {
		offset = *call.req.Offset
	}
	if call.req.Count != nil {
		count = *call.req.Count
	}
	if offset < 0 || count < 1 || count > 500 {
		return nil, 40097
	}
	var all []*authorizer
	for _, a := range c.authorizers {
		if a.authorized {
			all = append(all, a)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].authTime.Equal(all[j].authTime) {
			return all[i].authTime.Before(all[j].authTime)
		}
		return all[i].seed.AppID < all[j].seed.AppID
	})
	list := []any{}
	for i := offset; i < len(all) && i < offset+count; i++ {
		item := map[string]any{
			"authorizer_appid": all[i].seed.AppID,
			"refresh_token":    all[i].refreshToken,
			"auth_time":        all[i].authTime.Unix(),
		}
		if c.listOmitsRefreshTokens {
			item["refresh_token"] = ""
		}
		list = append(list, item)
	}
	return map[string]any{"total_count": len(all), "list": list}, 0
}

func (s *Simulator) apiClearQuota(call *apiCall) (any, int) {
	c, code := s.callerLocked(call)
	if code != 0 {
		return nil, code
	}
	month := s.clock.Now().In(beijing).Format("2006-01")
	if c.clearMonth != month {
		c.clearMonth, c.clears = month, 0
	}
	if s.opts.ClearQuotaPerMonth > 0 && c.clears >= s.opts.ClearQuotaPerMonth {
		return nil, 48006
	}
	c.clears++
	c.usage = map[string]int{}
	return map[string]any{"errcode": 0, "errmsg": "ok"}, 0
}

// authorizerTokenCall begins a call made with an authorizer access token: the token's
// record (nil when unknown), the account's ids for the counters, the token check's errcode,
// and the outcome of the API's scripted fault.
func (s *Simulator) authorizerTokenCall(w http.ResponseWriter, r *http.Request, api, tok string) (*tokenRecord, []string, int, faultOutcome) {
	s.mu.Lock()
	rec, code := s.checkTokenLocked(tok, authorizerToken)
	var ids []string
	if rec != nil {
		ids = []string{rec.authorizerID}
	}
	s.mu.Unlock()
	return rec, ids, code, s.applyFault(w, r, api, ids)
}

// serveGetAPIDomainIP answers /cgi-bin/get_api_domain_ip?access_token= for
// authorizer access tokens, so a test (or the demo) can check a token the
// way an app would use it.
func (s *Simulator) serveGetAPIDomainIP(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("access_token")
	_, ids, code, outcome := s.authorizerTokenCall(w, r, APIGetAPIDomainIP, tok)
	if outcome == faultAnswered {
		return
	}
	s.count(APIGetAPIDomainIP, ids, code != 0)
	if outcome == faultHoldAnswer {
		s.holdAnswer(r, APIGetAPIDomainIP)
		return
	}
	if code != 0 {
		writeErrcode(w, code, "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ip_list": []string{"127.0.0.1"}})
}
