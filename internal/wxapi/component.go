/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/authlink"
)

// Endpoint names, as they appear in WeChat's paths
// (/cgi-bin/component/<name>) and in the api metric label.
const (
	APIComponentToken    = "api_component_token"
	APIStartPushTicket   = "api_start_push_ticket"
	APICreatePreAuthCode = "api_create_preauthcode"
	APIQueryAuth         = "api_query_auth"
	APIAuthorizerToken   = "api_authorizer_token"
	APIGetAuthorizerInfo = "api_get_authorizer_info"
	APIGetAuthorizerList = "api_get_authorizer_list"
	APIClearQuota        = "clear_quota"
)

// MaxAuthorizerListCount is the largest page api_get_authorizer_list serves.
const MaxAuthorizerListCount = 500

var (
	epComponentToken    = endpoint{name: APIComponentToken, retry: retrySafe}
	epStartPushTicket   = endpoint{name: APIStartPushTicket, retry: retrySafe}
	epCreatePreAuthCode = endpoint{name: APICreatePreAuthCode, retry: retrySafe}
	// A code exchange is single use: a retry after the request may have
	// reached WeChat could burn the code or return a confusing 61009.
	epQueryAuth          = endpoint{name: APIQueryAuth, retry: retryIfNotSent}
	epAuthorizerToken    = endpoint{name: APIAuthorizerToken, retry: retrySafe}
	epGetAuthorizerInfo  = endpoint{name: APIGetAuthorizerInfo, retry: retrySafe}
	epGetAuthorizerList  = endpoint{name: APIGetAuthorizerList, retry: retrySafe}
	epClearQuota         = endpoint{name: APIClearQuota, retry: retryIfNotSent} // resets are limited per month
	errMissingField      = errors.New("answer lacks a required field")
	errInvalidExpiresIn  = errors.New("answer has no positive expires_in")
	errInvalidListCount  = fmt.Errorf("count must be between 1 and %d", MaxAuthorizerListCount)
	errInvalidListOffset = errors.New("offset must not be negative")
)

// ComponentToken is a component_access_token.
type ComponentToken struct {
	AccessToken string
	ExpiresIn   time.Duration
}

// PreAuthCode is a single-use pre_auth_code for an authorization link.
type PreAuthCode struct {
	Code      string
	ExpiresIn time.Duration
}

// AuthorizationInfo is what api_query_auth returns for an authorization code.
type AuthorizationInfo struct {
	AuthorizerAppID string
	AccessToken     string
	ExpiresIn       time.Duration
	// RefreshToken must be persisted: it is the only way to mint new access
	// tokens without a new authorization.
	RefreshToken string
	// FuncInfo lists the ids of the permission sets the account granted.
	FuncInfo []int
}

// AuthorizerToken is what api_authorizer_token returns.
type AuthorizerToken struct {
	AccessToken string
	ExpiresIn   time.Duration
	// RefreshToken is the refresh token to use next time; it may differ
	// from the one sent. Persist it before using AccessToken.
	RefreshToken string
}

// BusinessInfo tells which features the account has opened (1) or not (0).
type BusinessInfo struct {
	OpenStore int `json:"open_store"`
	OpenScan  int `json:"open_scan"`
	OpenPay   int `json:"open_pay"`
	OpenCard  int `json:"open_card"`
	OpenShake int `json:"open_shake"`
}

// AuthorizerInfo is what api_get_authorizer_info returns.
type AuthorizerInfo struct {
	AuthorizerAppID string
	NickName        string
	HeadImg         string
	// ServiceType is service_type_info.id: for official accounts 0
	// subscription, 1 upgraded legacy subscription, 2 service account; 0
	// for mini programs.
	ServiceType int
	// VerifyType is verify_type_info.id: -1 unverified, 0 WeChat verified,
	// 1..5 other verifications.
	VerifyType    int
	UserName      string // original id, gh_…
	PrincipalName string
	Alias         string
	Signature     string
	BusinessInfo  BusinessInfo
	QRCodeURL     string
	// MiniProgram reports that the answer carried MiniProgramInfo.
	MiniProgram bool
	// FuncInfo lists the ids of the permission sets granted.
	FuncInfo []int
	// RefreshToken is authorization_info.authorizer_refresh_token when
	// WeChat includes it (newer API versions do).
	RefreshToken string
}

// AuthorizerListItem is one entry of api_get_authorizer_list.
type AuthorizerListItem struct {
	AuthorizerAppID string
	RefreshToken    string
	AuthTime        time.Time
}

// AuthorizerList is one page of api_get_authorizer_list.
type AuthorizerList struct {
	TotalCount int
	List       []AuthorizerListItem
}

type funcInfo []struct {
	FuncscopeCategory struct {
		ID int `json:"id"`
	} `json:"funcscope_category"`
}

func (f funcInfo) ids() []int {
	if len(f) == 0 {
		return nil
	}
	ids := make([]int, 0, len(f))
	for _, e := range f {
		ids = append(ids, e.FuncscopeCategory.ID)
	}
	return ids
}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

func invalid(api string, err error) error {
	return &NetworkError{API: api, Kind: "invalid_response", msg: "invalid response: " + err.Error(), err: err}
}

// ComponentToken calls api_component_token: it exchanges the appsecret and the
// newest component_verify_ticket for a component_access_token. WeChat keeps
// the previous token valid for a few minutes only, so call it once per
// refresh cycle.
func (c *Client) ComponentToken(ctx context.Context, appID, appSecret, ticket string) (ComponentToken, error) {
	req := struct {
		ComponentAppID     string `json:"component_appid"`
		ComponentAppSecret string `json:"component_appsecret"`
		VerifyTicket       string `json:"component_verify_ticket"`
	}{appID, appSecret, ticket}
	var resp struct {
		apiStatus
		AccessToken string `json:"component_access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	secrets := redactor{appSecret, ticket}
	if err := c.call(ctx, epComponentToken, "", req, &resp, secrets); err != nil {
		return ComponentToken{}, err
	}
	if resp.AccessToken == "" {
		return ComponentToken{}, invalid(APIComponentToken, errMissingField)
	}
	if resp.ExpiresIn <= 0 {
		return ComponentToken{}, invalid(APIComponentToken, errInvalidExpiresIn)
	}
	return ComponentToken{AccessToken: resp.AccessToken, ExpiresIn: seconds(resp.ExpiresIn)}, nil
}

// StartPushTicket calls api_start_push_ticket, asking WeChat to (re)start
// pushing component_verify_ticket to the platform's receiver URL.
func (c *Client) StartPushTicket(ctx context.Context, appID, appSecret string) error {
	req := struct {
		ComponentAppID  string `json:"component_appid"`
		ComponentSecret string `json:"component_secret"`
	}{appID, appSecret}
	var resp apiStatus
	return c.call(ctx, epStartPushTicket, "", req, &resp, redactor{appSecret})
}

// CreatePreAuthCode calls api_create_preauthcode.
func (c *Client) CreatePreAuthCode(ctx context.Context, componentToken, appID string) (PreAuthCode, error) {
	req := struct {
		ComponentAppID string `json:"component_appid"`
	}{appID}
	var resp struct {
		apiStatus
		PreAuthCode string `json:"pre_auth_code"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := c.call(ctx, epCreatePreAuthCode, componentToken, req, &resp, redactor{componentToken}); err != nil {
		return PreAuthCode{}, err
	}
	if resp.PreAuthCode == "" {
		return PreAuthCode{}, invalid(APICreatePreAuthCode, errMissingField)
	}
	if resp.ExpiresIn <= 0 {
		return PreAuthCode{}, invalid(APICreatePreAuthCode, errInvalidExpiresIn)
	}
	return PreAuthCode{Code: resp.PreAuthCode, ExpiresIn: seconds(resp.ExpiresIn)}, nil
}

// QueryAuth calls api_query_auth, exchanging a single-use authorization code
// for the authorizer's tokens and granted permission sets. It is retried only
// when the request provably never reached WeChat.
func (c *Client) QueryAuth(ctx context.Context, componentToken, appID, authCode string) (AuthorizationInfo, error) {
	req := struct {
		ComponentAppID    string `json:"component_appid"`
		AuthorizationCode string `json:"authorization_code"`
	}{appID, authCode}
	var resp struct {
		apiStatus
		AuthorizationInfo struct {
			AuthorizerAppID string   `json:"authorizer_appid"`
			AccessToken     string   `json:"authorizer_access_token"`
			ExpiresIn       int64    `json:"expires_in"`
			RefreshToken    string   `json:"authorizer_refresh_token"`
			FuncInfo        funcInfo `json:"func_info"`
		} `json:"authorization_info"`
	}
	if err := c.call(ctx, epQueryAuth, componentToken, req, &resp, redactor{componentToken, authCode}); err != nil {
		return AuthorizationInfo{}, err
	}
	ai := resp.AuthorizationInfo
	if ai.AuthorizerAppID == "" {
		return AuthorizationInfo{}, invalid(APIQueryAuth, errMissingField)
	}
	return AuthorizationInfo{
		AuthorizerAppID: ai.AuthorizerAppID,
		AccessToken:     ai.AccessToken,
		ExpiresIn:       seconds(ai.ExpiresIn),
		RefreshToken:    ai.RefreshToken,
		FuncInfo:        ai.FuncInfo.ids(),
	}, nil
}

// AuthorizerToken calls api_authorizer_token, minting a new
// authorizer_access_token from the refresh token. Persist the returned
// RefreshToken before anything else: WeChat may rotate it.
func (c *Client) AuthorizerToken(ctx context.Context, componentToken, appID, authorizerAppID, refreshToken string) (AuthorizerToken, error) {
	req := struct {
		ComponentAppID  string `json:"component_appid"`
		AuthorizerAppID string `json:"authorizer_appid"`
		RefreshToken    string `json:"authorizer_refresh_token"`
	}{appID, authorizerAppID, refreshToken}
	var resp struct {
		apiStatus
		AccessToken  string `json:"authorizer_access_token"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"authorizer_refresh_token"`
	}
	if err := c.call(ctx, epAuthorizerToken, componentToken, req, &resp, redactor{componentToken, refreshToken}); err != nil {
		return AuthorizerToken{}, err
	}
	if resp.AccessToken == "" {
		return AuthorizerToken{}, invalid(APIAuthorizerToken, errMissingField)
	}
	if resp.ExpiresIn <= 0 {
		return AuthorizerToken{}, invalid(APIAuthorizerToken, errInvalidExpiresIn)
	}
	rt := resp.RefreshToken
	if rt == "" {
		// Older answers omit it when it did not change.
		rt = refreshToken
	}
	return AuthorizerToken{AccessToken: resp.AccessToken, ExpiresIn: seconds(resp.ExpiresIn), RefreshToken: rt}, nil
}

// GetAuthorizerInfo calls api_get_authorizer_info.
func (c *Client) GetAuthorizerInfo(ctx context.Context, componentToken, appID, authorizerAppID string) (AuthorizerInfo, error) {
	req := struct {
		ComponentAppID  string `json:"component_appid"`
		AuthorizerAppID string `json:"authorizer_appid"`
	}{appID, authorizerAppID}
	type idHolder struct {
		ID int `json:"id"`
	}
	var resp struct {
		apiStatus
		AuthorizerInfo struct {
			NickName        string       `json:"nick_name"`
			HeadImg         string       `json:"head_img"`
			ServiceTypeInfo idHolder     `json:"service_type_info"`
			VerifyTypeInfo  idHolder     `json:"verify_type_info"`
			UserName        string       `json:"user_name"`
			PrincipalName   string       `json:"principal_name"`
			Alias           string       `json:"alias"`
			Signature       string       `json:"signature"`
			BusinessInfo    BusinessInfo `json:"business_info"`
			QRCodeURL       string       `json:"qrcode_url"`
			MiniProgramInfo *struct{}    `json:"MiniProgramInfo"`
		} `json:"authorizer_info"`
		AuthorizationInfo struct {
			AuthorizerAppID string   `json:"authorizer_appid"`
			AppID           string   `json:"appid"` // older answers
			FuncInfo        funcInfo `json:"func_info"`
			RefreshToken    string   `json:"authorizer_refresh_token"`
		} `json:"authorization_info"`
	}
	if err := c.call(ctx, epGetAuthorizerInfo, componentToken, req, &resp, redactor{componentToken}); err != nil {
		return AuthorizerInfo{}, err
	}
	ai, az := resp.AuthorizerInfo, resp.AuthorizationInfo
	id := az.AuthorizerAppID
	if id == "" {
		id = az.AppID
	}
	if id == "" {
		id = authorizerAppID
	}
	return AuthorizerInfo{
		AuthorizerAppID: id,
		NickName:        ai.NickName,
		HeadImg:         ai.HeadImg,
		ServiceType:     ai.ServiceTypeInfo.ID,
		VerifyType:      ai.VerifyTypeInfo.ID,
		UserName:        ai.UserName,
		PrincipalName:   ai.PrincipalName,
		Alias:           ai.Alias,
		Signature:       ai.Signature,
		BusinessInfo:    ai.BusinessInfo,
		QRCodeURL:       ai.QRCodeURL,
		MiniProgram:     ai.MiniProgramInfo != nil,
		FuncInfo:        az.FuncInfo.ids(),
		RefreshToken:    az.RefreshToken,
	}, nil
}

// GetAuthorizerList calls api_get_authorizer_list for one page; count must be
// 1..MaxAuthorizerListCount.
func (c *Client) GetAuthorizerList(ctx context.Context, componentToken, appID string, offset, count int) (AuthorizerList, error) {
	if count < 1 || count > MaxAuthorizerListCount {
		return AuthorizerList{}, fmt.Errorf("wechat %s: %w", APIGetAuthorizerList, errInvalidListCount)
	}
	if offset < 0 {
		return AuthorizerList{}, fmt.Errorf("wechat %s: %w", APIGetAuthorizerList, errInvalidListOffset)
	}
	req := struct {
		ComponentAppID string `json:"component_appid"`
		Offset         int    `json:"offset"`
		Count          int    `json:"count"`
	}{appID, offset, count}
	var resp struct {
		apiStatus
		TotalCount int `json:"total_count"`
		List       []struct {
			AuthorizerAppID string `json:"authorizer_appid"`
			RefreshToken    string `json:"refresh_token"`
			AuthTime        int64  `json:"auth_time"`
		} `json:"list"`
	}
	if err := c.call(ctx, epGetAuthorizerList, componentToken, req, &resp, redactor{componentToken}); err != nil {
		return AuthorizerList{}, err
	}
	out := AuthorizerList{TotalCount: resp.TotalCount, List: make([]AuthorizerListItem, 0, len(resp.List))}
	for _, e := range resp.List {
		item := AuthorizerListItem{AuthorizerAppID: e.AuthorizerAppID, RefreshToken: e.RefreshToken}
		if e.AuthTime > 0 {
			item.AuthTime = time.Unix(e.AuthTime, 0).UTC()
		}
		out.List = append(out.List, item)
	}
	return out, nil
}

// FindAuthorizer pages through api_get_authorizer_list until it finds
// authorizerAppID. found is false if the account is not in the list (it never
// authorized, or revoked). It is how a lost refresh token is recovered.
func (c *Client) FindAuthorizer(ctx context.Context, componentToken, appID, authorizerAppID string) (item AuthorizerListItem, found bool, err error) {
	for offset := 0; ; {
		page, err := c.GetAuthorizerList(ctx, componentToken, appID, offset, MaxAuthorizerListCount)
		if err != nil {
			return AuthorizerListItem{}, false, err
		}
		for _, e := range page.List {
			if e.AuthorizerAppID == authorizerAppID {
				return e, true, nil
			}
		}
		offset += len(page.List)
		if len(page.List) == 0 || offset >= page.TotalCount {
			return AuthorizerListItem{}, false, nil
		}
	}
}

// ClearQuota calls clear_quota for the component, resetting the daily call
// quotas of its APIs. WeChat allows only a few resets a month, so it is never
// retried once the request may have been sent.
func (c *Client) ClearQuota(ctx context.Context, componentToken, appID string) error {
	req := struct {
		ComponentAppID string `json:"component_appid"`
	}{appID}
	var resp apiStatus
	return c.call(ctx, epClearQuota, componentToken, req, &resp, redactor{componentToken})
}

// The authorization link lives in internal/authlink, shared with the receiver's start
// page (which must not import this client); these names keep this package's callers.
type (
	// AuthType selects which accounts an authorization link offers.
	AuthType = authlink.AuthType
	// AuthorizationLink describes the page an account administrator opens to authorize the component.
	AuthorizationLink = authlink.Link
)

// Authorization link account kinds.
const (
	AuthTypeOfficialAccount = authlink.AuthTypeOfficialAccount
	AuthTypeMiniProgram     = authlink.AuthTypeMiniProgram
	AuthTypeBoth            = authlink.AuthTypeBoth
)
