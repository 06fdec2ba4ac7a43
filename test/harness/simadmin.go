/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// admin drives wechat-sim's admin API (docs/simulator.md).
type admin struct {
	base string
}

var adminHTTP = &http.Client{Timeout: 2 * time.Minute}

// Do sends body (JSON, nil for none) to the admin API and decodes the answer into out (nil
// to ignore it). Any status but 2xx is an error carrying the simulator's message.
func (a admin) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	resp, err := adminHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

// Fault is a scripted failure, as POST /admin/faults takes it.
type Fault struct {
	API        string `json:"api"`
	AppID      string `json:"appid,omitempty"`
	Count      int    `json:"count"`
	ErrCode    int    `json:"errcode,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Timeout    bool   `json:"timeout,omitempty"`
	Latency    string `json:"latency,omitempty"`
	HoldAnswer bool   `json:"hold_answer,omitempty"`
}

// AddFault scripts a fault for the next f.Count calls.
func (a admin) AddFault(ctx context.Context, f Fault) error {
	return a.Do(ctx, http.MethodPost, "/admin/faults", f, nil)
}

// ClearFaults drops every pending fault.
func (a admin) ClearFaults(ctx context.Context) error {
	return a.Do(ctx, http.MethodDelete, "/admin/faults", nil, nil)
}

// CallCount is one endpoint's calls for one appid.
type CallCount struct {
	Calls  int `json:"calls"`
	Errors int `json:"errors"`
}

// Counters are calls per endpoint and appid ("-" for calls naming none).
type Counters map[string]map[string]CallCount

// Calls sums the calls of api over every appid. The simulator counts a call under each
// appid it names, so an account call (component and authorizer appid) counts twice here:
// use CallsFor with the component appids for exact totals.
func (c Counters) Calls(api string) int {
	n := 0
	for _, cc := range c[api] {
		n += cc.Calls
	}
	return n
}

// CallsFor is the calls of api naming appid.
func (c Counters) CallsFor(api, appID string) int { return c[api][appID].Calls }

// ErrorsFor is the failed calls of api naming appid.
func (c Counters) ErrorsFor(api, appID string) int { return c[api][appID].Errors }

// Counters reads the call counters.
func (a admin) Counters(ctx context.Context) (Counters, error) {
	var out struct {
		Counters Counters `json:"counters"`
	}
	err := a.Do(ctx, http.MethodGet, "/admin/counters", nil, &out)
	return out.Counters, err
}

// ResetCounters zeroes the call counters (not the quotas).
func (a admin) ResetCounters(ctx context.Context) error {
	return a.Do(ctx, http.MethodDelete, "/admin/counters", nil, nil)
}

// PushTicket has the simulator push a new ticket to the component's receiver now.
func (a admin) PushTicket(ctx context.Context, componentAppID string) error {
	return a.Do(ctx, http.MethodPost, "/admin/push-ticket", map[string]any{"component_appid": componentAppID}, nil)
}

// SetTicketPushing stops or restarts the component's periodic ticket pushes.
func (a admin) SetTicketPushing(ctx context.Context, componentAppID string, enabled bool) error {
	return a.Do(ctx, http.MethodPost, "/admin/ticket-pushing", map[string]any{"component_appid": componentAppID, "enabled": enabled}, nil)
}

// AuthorizeResult is what the administrator's browser gets back from an authorization.
type AuthorizeResult struct {
	AuthCode    string `json:"auth_code"`
	RedirectURL string `json:"redirect_url"`
	InfoType    string `json:"info_type"`
	Push        struct {
		Delivered bool   `json:"delivered"`
		LastError string `json:"last_error"`
	} `json:"push"`
}

// Authorize plays an account's administrator approving the component: WeChat issues an
// authorization code and pushes authorized (or updateauthorized) to the receiver.
func (a admin) Authorize(ctx context.Context, componentAppID, authorizerAppID string) (AuthorizeResult, error) {
	var out AuthorizeResult
	err := a.Do(ctx, http.MethodPost, "/admin/authorize",
		map[string]any{"component_appid": componentAppID, "authorizer_appid": authorizerAppID}, &out)
	return out, err
}

// SetQuota sets the daily limit of api per component (0 removes it).
func (a admin) SetQuota(ctx context.Context, api string, limit int) error {
	return a.Do(ctx, http.MethodPost, "/admin/quotas", map[string]any{"api": api, "limit": limit}, nil)
}
