/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Endpoint names of the account option APIs (POST /cgi-bin/component/<name>?component_access_token=).
const (
	APIGetAuthorizerOption = "api_get_authorizer_option"
	APISetAuthorizerOption = "api_set_authorizer_option"
)

// Account option names (option_name) and the values WeChat documents for them.
const (
	// OptionLocationReport: 0 no location reports, 1 on entering a session, 2 every 5 s.
	OptionLocationReport = "location_report"
	// OptionVoiceRecognize: 0 off, 1 speech recognition of voice messages on.
	OptionVoiceRecognize = "voice_recognize"
	// OptionCustomerService: 0 off, 1 multi-agent customer service on.
	OptionCustomerService = "customer_service"
)

// CodeAPISetUnauthorized (61007): the account has not granted the platform the permission
// set this API belongs to.
const CodeAPISetUnauthorized = 61007

// IsAPISetUnauthorized reports 61007.
func IsAPISetUnauthorized(err error) bool { return hasCode(err, CodeAPISetUnauthorized) }

// IsInvalidArgs reports 40097 (invalid arguments), WeChat's answer to an unknown option
// name or a value out of range.
func IsInvalidArgs(err error) bool { return hasCode(err, CodeInvalidArgs) }

var (
	epGetAuthorizerOption = endpoint{name: APIGetAuthorizerOption, retry: retrySafe}
	// Setting an option to a value is idempotent: a repeat after a lost answer sets the same.
	epSetAuthorizerOption = endpoint{name: APISetAuthorizerOption, retry: retrySafe}

	errOptionMismatch = errors.New("answer names another account or option")
)

// GetAuthorizerOption calls api_get_authorizer_option: the account's current value of the
// option name.
func (c *Client) GetAuthorizerOption(ctx context.Context, componentToken, appID, authorizerAppID, name string) (int, error) {
	req := struct {
		ComponentAppID  string `json:"component_appid"`
		AuthorizerAppID string `json:"authorizer_appid"`
		OptionName      string `json:"option_name"`
	}{appID, authorizerAppID, name}
	var resp struct {
		apiStatus
		AuthorizerAppID string          `json:"authorizer_appid"`
		OptionName      string          `json:"option_name"`
		OptionValue     json.RawMessage `json:"option_value"`
	}
	if err := c.call(ctx, epGetAuthorizerOption, componentToken, req, &resp, redactor{componentToken}); err != nil {
		return 0, err
	}
	if (resp.AuthorizerAppID != "" && resp.AuthorizerAppID != authorizerAppID) || (resp.OptionName != "" && resp.OptionName != name) {
		return 0, invalid(APIGetAuthorizerOption, errOptionMismatch)
	}
	v, err := ParseOptionValue(resp.OptionValue)
	if err != nil {
		return 0, invalid(APIGetAuthorizerOption, err)
	}
	return v, nil
}

// SetAuthorizerOption calls api_set_authorizer_option: sets the account's option name to value.
func (c *Client) SetAuthorizerOption(ctx context.Context, componentToken, appID, authorizerAppID, name string, value int) error {
	req := struct {
		ComponentAppID  string `json:"component_appid"`
		AuthorizerAppID string `json:"authorizer_appid"`
		OptionName      string `json:"option_name"`
		OptionValue     string `json:"option_value"`
	}{appID, authorizerAppID, name, strconv.Itoa(value)}
	var resp apiStatus
	return c.call(ctx, epSetAuthorizerOption, componentToken, req, &resp, redactor{componentToken})
}

// maxOptionValue bounds what an option value may be; WeChat's are 0..2.
const maxOptionValue = 1 << 16

// ParseOptionValue reads option_value, which WeChat sends as a string ("1"); a JSON number
// is taken too. Anything else, or a value outside 0..65536, is an error.
func ParseOptionValue(raw json.RawMessage) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, errMissingField
	}
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, err
		}
	}
	v, err := strconv.Atoi(text)
	if err != nil || v < 0 || v > maxOptionValue {
		return 0, fmt.Errorf("option_value %.20q is not a small non-negative integer", text)
	}
	return v, nil
}
