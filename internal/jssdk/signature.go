/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package jssdk computes the JS-SDK configuration signature (wx.config) from a jsapi_ticket,
// as an app reading the ticket from the token Secret the operator writes does. It is the
// reference for docs/consuming-tokens.md; it has no dependencies, so an app can copy it.
package jssdk

import (
	"crypto/sha1" //nolint:gosec // WeChat's JS-SDK signature is SHA-1 by definition
	"encoding/hex"
	"strconv"
)

// Signature is WeChat's JS-SDK signature: the hex SHA-1 of
// "jsapi_ticket=…&noncestr=…&timestamp=…&url=…" (the four fields in this order, values as
// they are, not URL-encoded). url is the page's full URL without the part after '#'.
func Signature(jsapiTicket, nonceStr string, timestamp int64, url string) string {
	s := "jsapi_ticket=" + jsapiTicket + "&noncestr=" + nonceStr + "&timestamp=" + strconv.FormatInt(timestamp, 10) + "&url=" + url
	sum := sha1.Sum([]byte(s)) //nolint:gosec // see the import
	return hex.EncodeToString(sum[:])
}
