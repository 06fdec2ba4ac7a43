/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// WeChat's authorization pages, as an administrator's browser opens them from a platform's
// authorization link: https://mp.weixin.qq.com/cgi-bin/componentloginpage?… (PC, which WeChat
// serves only to a browser whose Referer is on the platform's 授权发起页域名) and
// https://mp.weixin.qq.com/safe/bindcomponent?action=bindcomponent&… (inside WeChat). Opening
// one and approving is Authorize with the link's pre_auth_code and redirect_uri.

// Errors of OpenAuthorizationLink.
var (
	// ErrNotAuthorizationLink: not one of WeChat's two authorization pages, or a parameter
	// is missing or malformed.
	ErrNotAuthorizationLink = errors.New("not a WeChat authorization link")
	// ErrRefererDomain is WeChat's refusal of a PC link opened from elsewhere than the
	// 授权发起页域名 (here: the redirect_uri's host, which must be that domain too).
	ErrRefererDomain = errors.New("请确认授权入口页所在域名，与授权后回调页所在域名相同 (the page that opened the link is not on the redirect_uri's domain)")
	// ErrWrongAccount: the link's biz_appid names another account.
	ErrWrongAccount = errors.New("the link is for another account (biz_appid)")
	// ErrWrongAccountType: the link's auth_type does not offer the account's kind.
	ErrWrongAccountType = errors.New("the link does not offer this kind of account (auth_type)")
)

// OpenLinkRequest is an administrator opening an authorization link and approving it.
type OpenLinkRequest struct {
	// Link is the PC or mobile authorization link, as the platform's page had it.
	Link string
	// Referer is the page the link was clicked on ("" for a link opened directly, as inside
	// WeChat). The PC page requires it on the redirect_uri's host.
	Referer string
	// AuthorizerAppID is the account the administrator authorizes.
	AuthorizerAppID string
	// MiniProgram says the account is a mini program (auth_type 2 or 3 offers it).
	MiniProgram bool
}

// OpenAuthorizationLink plays the administrator's visit of an authorization link: it checks
// the link as WeChat's page would, consumes its pre_auth_code (once: a second visit fails
// with ErrInvalidPreAuth) and returns what Authorize returns, RedirectURL included.
func (s *Simulator) OpenAuthorizationLink(ctx context.Context, req OpenLinkRequest) (AuthorizeResult, error) {
	u, err := url.Parse(req.Link)
	if err != nil || u.Scheme != "https" || u.Host != "mp.weixin.qq.com" {
		return AuthorizeResult{}, ErrNotAuthorizationLink
	}
	q := u.Query()
	pc := u.Path == "/cgi-bin/componentloginpage"
	mobile := u.Path == "/safe/bindcomponent" && q.Get("action") == "bindcomponent"
	if !pc && !mobile {
		return AuthorizeResult{}, ErrNotAuthorizationLink
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if q.Get("component_appid") == "" || q.Get("pre_auth_code") == "" || err != nil || redirect.Host == "" {
		return AuthorizeResult{}, fmt.Errorf("%w: component_appid, pre_auth_code and an absolute redirect_uri are required", ErrNotAuthorizationLink)
	}
	if pc {
		ref, err := url.Parse(req.Referer)
		if req.Referer == "" || err != nil || ref.Hostname() != redirect.Hostname() {
			return AuthorizeResult{}, ErrRefererDomain
		}
	}
	switch at := q.Get("auth_type"); {
	case !slices.Contains([]string{"", "1", "2", "3"}, at):
		return AuthorizeResult{}, fmt.Errorf("%w: auth_type %q", ErrNotAuthorizationLink, at)
	case at == "1" && req.MiniProgram, at == "2" && !req.MiniProgram:
		return AuthorizeResult{}, ErrWrongAccountType
	}
	if biz := q.Get("biz_appid"); biz != "" && biz != req.AuthorizerAppID {
		return AuthorizeResult{}, ErrWrongAccount
	}
	return s.Authorize(ctx, AuthorizeRequest{
		ComponentAppID: q.Get("component_appid"), AuthorizerAppID: req.AuthorizerAppID,
		PreAuthCode: q.Get("pre_auth_code"), RedirectURI: redirect.String(),
	})
}

// adminOpenLink is POST /admin/open-link {"link", "referer", "authorizer_appid", "mini_program"}.
func (s *Simulator) adminOpenLink(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Link            string `json:"link"`
		Referer         string `json:"referer"`
		AuthorizerAppID string `json:"authorizer_appid"`
		MiniProgram     bool   `json:"mini_program"`
	}
	if !decodeAdmin(w, r, &body) {
		return
	}
	res, err := s.OpenAuthorizationLink(r.Context(), OpenLinkRequest(body))
	switch {
	case errors.Is(err, ErrRefererDomain), errors.Is(err, ErrWrongAccount), errors.Is(err, ErrWrongAccountType):
		adminError(w, http.StatusForbidden, err)
		return
	case err != nil:
		adminError(w, statusFor(err), err)
		return
	}
	writeAuthorizeResult(w, res)
}
