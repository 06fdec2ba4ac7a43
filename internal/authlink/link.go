/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package authlink

import (
	"net/url"
	"strconv"
)

// AuthType selects which accounts an authorization link offers.
type AuthType int

// Authorization link account kinds.
const (
	AuthTypeOfficialAccount AuthType = 1
	AuthTypeMiniProgram     AuthType = 2
	AuthTypeBoth            AuthType = 3
)

// Link describes the page an account administrator opens to
// authorize the component.
type Link struct {
	ComponentAppID string
	PreAuthCode    string
	RedirectURI    string
	AuthType       AuthType // 0 omits auth_type
	BizAppID       string   // optional: restrict to one account
}

// PCURL returns the desktop (QR code) authorization page URL.
func (l Link) PCURL() string {
	return "https://mp.weixin.qq.com/cgi-bin/componentloginpage?" + l.query(false)
}

// MobileURL returns the in-WeChat authorization page URL.
func (l Link) MobileURL() string {
	return "https://mp.weixin.qq.com/safe/bindcomponent?" + l.query(true) + "#wechat_redirect"
}

func (l Link) query(mobile bool) string {
	// Parameters in WeChat's documented order (url.Values would sort them).
	var b []byte
	add := func(k, v string) {
		if len(b) > 0 {
			b = append(b, '&')
		}
		b = append(b, k...)
		b = append(b, '=')
		b = append(b, url.QueryEscape(v)...)
	}
	if mobile {
		add("action", "bindcomponent")
		add("no_scan", "1")
	}
	add("component_appid", l.ComponentAppID)
	add("pre_auth_code", l.PreAuthCode)
	add("redirect_uri", l.RedirectURI)
	if l.AuthType != 0 {
		add("auth_type", strconv.Itoa(int(l.AuthType)))
	}
	if l.BizAppID != "" {
		add("biz_appid", l.BizAppID)
	}
	return string(b)
}
