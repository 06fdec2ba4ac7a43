/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
)

// Account options: api_get_authorizer_option and api_set_authorizer_option, and the admin
// calls that change an option or the granted permission sets behind the platform's back (the
// account's administrator in the console, another platform taking an exclusive set).

// Endpoint names of the account option APIs.
const (
	APIGetAuthorizerOption = "api_get_authorizer_option"
	APISetAuthorizerOption = "api_set_authorizer_option"
)

var errInvalidOption = errors.New("unknown option name, or a value out of its range")

// Option names and the largest value each takes.
var optionMax = map[string]int{
	"location_report":  2, // 0 none, 1 on entering a session, 2 every 5 s
	"voice_recognize":  1,
	"customer_service": 1,
}

// optionLocked is the account's value of a known option; a new account has every option 0.
func (a *authorizer) optionLocked(name string) int { return a.options[name] }

// optionCallLocked checks the common part of both option calls: the component token, the
// quota of api, the account's authorization and the option name (40097 for an unknown one).
func (s *Simulator) optionCallLocked(call *apiCall, api string) (*authorizer, int) {
	_, a, code := s.authorizedAccountLocked(call, api)
	if code != 0 {
		return nil, code
	}
	if _, ok := optionMax[call.req.OptionName]; !ok {
		return nil, 40097
	}
	return a, 0
}

func (s *Simulator) apiGetAuthorizerOption(call *apiCall) (any, int) {
	a, code := s.optionCallLocked(call, APIGetAuthorizerOption)
	if code != 0 {
		return nil, code
	}
	// WeChat answers the value as a string.
	return map[string]any{
		"authorizer_appid": a.seed.AppID,
		"option_name":      call.req.OptionName,
		"option_value":     strconv.Itoa(a.optionLocked(call.req.OptionName)),
	}, 0
}

func (s *Simulator) apiSetAuthorizerOption(call *apiCall) (any, int) {
	a, code := s.optionCallLocked(call, APISetAuthorizerOption)
	if code != 0 {
		return nil, code
	}
	v, err := strconv.Atoi(call.req.OptionValue)
	if err != nil || v < 0 || v > optionMax[call.req.OptionName] || strconv.Itoa(v) != call.req.OptionValue {
		return nil, 40097
	}
	a.setOptionLocked(call.req.OptionName, v)
	return map[string]any{"errcode": 0, "errmsg": "ok"}, 0
}

func (a *authorizer) setOptionLocked(name string, v int) {
	if a.options == nil {
		a.options = map[string]int{}
	}
	a.options[name] = v
}

// accountLocked finds an account of a component for the admin calls.
func (s *Simulator) accountLocked(componentAppID, authorizerAppID string) (*authorizer, error) {
	c, ok := s.components[componentAppID]
	if !ok {
		return nil, ErrUnknownComponent
	}
	a, ok := c.authorizers[authorizerAppID]
	if !ok {
		return nil, ErrUnknownAuthorizer
	}
	return a, nil
}

// SetAuthorizerOption changes an account option as its administrator would in the
// console: no call is counted, nothing is pushed.
func (s *Simulator) SetAuthorizerOption(componentAppID, authorizerAppID, name string, value int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.accountLocked(componentAppID, authorizerAppID)
	if err != nil {
		return err
	}
	if maxV, ok := optionMax[name]; !ok || value < 0 || value > maxV {
		return errInvalidOption
	}
	a.setOptionLocked(name, value)
	return nil
}

// AuthorizerOptions returns every option of an account, by name.
func (s *Simulator) AuthorizerOptions(componentAppID, authorizerAppID string) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.accountLocked(componentAppID, authorizerAppID)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for name := range optionMax {
		out[name] = a.optionLocked(name)
	}
	return out, nil
}

// SetFuncInfo replaces the permission sets an account granted, silently: what another
// platform taking an exclusive set (message management, for one) looks like to this one.
// api_get_authorizer_info and api_query_auth answer the new sets from then on.
func (s *Simulator) SetFuncInfo(componentAppID, authorizerAppID string, ids []int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.accountLocked(componentAppID, authorizerAppID)
	if err != nil {
		return err
	}
	a.funcInfo = slices.Clone(ids)
	return nil
}

type optionAdminBody struct {
	ComponentAppID  string `json:"component_appid"`
	AuthorizerAppID string `json:"authorizer_appid"`
	OptionName      string `json:"option_name"`
	OptionValue     int    `json:"option_value"`
}

type funcInfoAdminBody struct {
	ComponentAppID  string `json:"component_appid"`
	AuthorizerAppID string `json:"authorizer_appid"`
	FuncInfo        []int  `json:"func_info"`
}

// optionRoutes serves the two option APIs and their admin calls.
func (s *Simulator) optionRoutes() {
	s.mux.HandleFunc("/cgi-bin/component/"+APIGetAuthorizerOption, s.serveComponentAPI(APIGetAuthorizerOption, (*Simulator).apiGetAuthorizerOption))
	s.mux.HandleFunc("/cgi-bin/component/"+APISetAuthorizerOption, s.serveComponentAPI(APISetAuthorizerOption, (*Simulator).apiSetAuthorizerOption))
	s.mux.HandleFunc("GET /admin/authorizer-options", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opts, err := s.AuthorizerOptions(q.Get("component_appid"), q.Get("authorizer_appid"))
		if err != nil {
			adminError(w, statusFor(err), err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"options": opts})
	})
	s.mux.HandleFunc("POST /admin/authorizer-options", func(w http.ResponseWriter, r *http.Request) {
		var body optionAdminBody
		if !decodeAdmin(w, r, &body) {
			return
		}
		if err := s.SetAuthorizerOption(body.ComponentAppID, body.AuthorizerAppID, body.OptionName, body.OptionValue); err != nil {
			adminError(w, statusFor(err), err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"option_name": body.OptionName, "option_value": body.OptionValue})
	})
	s.mux.HandleFunc("POST /admin/func-info", func(w http.ResponseWriter, r *http.Request) {
		var body funcInfoAdminBody
		if !decodeAdmin(w, r, &body) {
			return
		}
		if err := s.SetFuncInfo(body.ComponentAppID, body.AuthorizerAppID, body.FuncInfo); err != nil {
			adminError(w, statusFor(err), err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"func_info": body.FuncInfo})
	})
}
