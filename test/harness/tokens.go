/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// TokenKind says how an app uses a token, and so how VerifyToken checks it.
type TokenKind int

const (
	// ComponentToken is a component_access_token: an app creates a pre_auth_code with it.
	ComponentToken TokenKind = iota + 1
	// AuthorizerToken is an authorizer_access_token: an app calls an account's API with it.
	AuthorizerToken
)

func (k TokenKind) String() string {
	switch k {
	case ComponentToken:
		return "component"
	case AuthorizerToken:
		return "authorizer"
	}
	return "unknown"
}

// TokenHash is a short hash of a secret value, safe to print and to compare.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}

var tokenHTTP = &http.Client{Timeout: 10 * time.Second}

// WeChatAnswer is the errcode/errmsg of a WeChat (simulator) answer; ErrMsg never carries
// the token.
type WeChatAnswer struct {
	HTTPStatus int
	ErrCode    int
	ErrMsg     string
}

// OK reports an HTTP 200 answer without errcode.
func (a WeChatAnswer) OK() bool { return a.HTTPStatus == http.StatusOK && a.ErrCode == 0 }

func (a WeChatAnswer) String() string {
	return fmt.Sprintf("HTTP %d errcode %d %s", a.HTTPStatus, a.ErrCode, a.ErrMsg)
}

// VerifyComponentToken uses a component_access_token the way a platform's app does: it
// creates a pre_auth_code (POST /cgi-bin/component/api_create_preauthcode).
func VerifyComponentToken(ctx context.Context, wechatURL, componentAppID, token string) (WeChatAnswer, error) {
	body, _ := json.Marshal(map[string]string{"component_appid": componentAppID})
	return wechatCall(ctx, http.MethodPost,
		wechatURL+"/cgi-bin/component/api_create_preauthcode?component_access_token="+url.QueryEscape(token), body)
}

// VerifyAuthorizerToken uses an authorizer_access_token the way an app does, calling one of
// the account's APIs (GET /cgi-bin/get_api_domain_ip).
func VerifyAuthorizerToken(ctx context.Context, wechatURL, token string) (WeChatAnswer, error) {
	return wechatCall(ctx, http.MethodGet, wechatURL+"/cgi-bin/get_api_domain_ip?access_token="+url.QueryEscape(token), nil)
}

// VerifyToken checks a token of either kind against the simulator at wechatURL.
func VerifyToken(ctx context.Context, wechatURL string, kind TokenKind, componentAppID, token string) (WeChatAnswer, error) {
	if kind == ComponentToken {
		return VerifyComponentToken(ctx, wechatURL, componentAppID, token)
	}
	return VerifyAuthorizerToken(ctx, wechatURL, token)
}

func wechatCall(ctx context.Context, method, u string, body []byte) (WeChatAnswer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return WeChatAnswer{}, fmt.Errorf("building the request failed")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := tokenHTTP.Do(req)
	if err != nil {
		// A url.Error quotes the URL, which carries the token: drop it.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return WeChatAnswer{}, fmt.Errorf("%s %s: %w", method, redactedPath(u), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return WeChatAnswer{}, err
	}
	a := WeChatAnswer{HTTPStatus: resp.StatusCode}
	var out struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if json.Unmarshal(data, &out) == nil {
		a.ErrCode, a.ErrMsg = out.ErrCode, out.ErrMsg
	}
	return a, nil
}

// redactedPath is a URL without its query, for error messages.
func redactedPath(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return "(url)"
	}
	parsed.RawQuery = ""
	return parsed.String()
}
