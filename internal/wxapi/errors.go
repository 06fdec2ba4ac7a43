/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// WeChat error codes the operator understands. Every WeChat JSON response
// may carry errcode/errmsg; 0 means success.
const (
	CodeBusy                = -1    // system busy, try again later
	CodeInvalidCredential   = 40001 // access token invalid or not the latest
	CodeInvalidAppID        = 40013 // invalid appid
	CodeInvalidAccessToken  = 40014 // malformed access token
	CodeInvalidArgs         = 40097 // invalid arguments
	CodeInvalidAppSecret    = 40125 // invalid appsecret
	CodeAccessTokenMissing  = 41001 // access token missing
	CodeAppIDMissing        = 41002 // appid missing
	CodeAppSecretMissing    = 41004 // appsecret missing
	CodeAccessTokenExpired  = 42001 // access token expired
	CodeQuotaReached        = 45009 // daily API quota reached
	CodeDataFormatError     = 47001 // request body is not what the API expects
	CodeUnauthorizedAPI     = 48001 // the API is not authorized for this account
	CodeClearQuotaLimit     = 48006 // quota resets used up for this month
	CodeNotAuthorized       = 61003 // the account has not authorized the component
	CodeIPNotWhitelisted    = 61004 // caller IP is not in the component's whitelist
	CodeTicketExpired       = 61005 // component_verify_ticket expired
	CodeTicketInvalid       = 61006 // component_verify_ticket invalid
	CodeAuthCodeInvalid     = 61009 // authorization code invalid or already used
	CodeAuthCodeExpired     = 61010 // authorization code expired
	CodeInvalidComponent    = 61011 // invalid third-party platform
	CodeRefreshTokenInvalid = 61023 // authorizer_refresh_token invalid
)

// APIError is a WeChat errcode/errmsg answer. It never carries a token: the
// message is scrubbed of every secret sent with the request.
type APIError struct {
	// API is the endpoint name, e.g. "api_component_token".
	API string
	// Code is WeChat's errcode.
	Code int
	// Msg is WeChat's errmsg.
	Msg string
}

func (e *APIError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("wechat %s: errcode %d", e.API, e.Code)
	}
	return fmt.Sprintf("wechat %s: errcode %d: %s", e.API, e.Code, e.Msg)
}

// NetworkError is a failure to get any WeChat answer: the connection failed,
// timed out, the HTTP status was not 200 or the body was not JSON. Its text
// never contains the request URL (whose query carries the access token).
type NetworkError struct {
	// API is the endpoint name.
	API string
	// Kind is a short, metric-safe description: "dial", "timeout",
	// "canceled", "network", "http_<status>", "invalid_response".
	Kind string
	// NotSent reports that the request provably never reached the server
	// (the connection could not be opened), so any call is safe to repeat.
	NotSent bool

	msg string
	err error
}

func (e *NetworkError) Error() string {
	return fmt.Sprintf("wechat %s: %s", e.API, e.msg)
}

// Unwrap returns the underlying transport error (never a *url.Error).
func (e *NetworkError) Unwrap() error { return e.err }

// Code returns the WeChat errcode carried by err, if err is (or wraps) an
// *APIError.
func Code(err error) (int, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code, true
	}
	return 0, false
}

func hasCode(err error, codes ...int) bool {
	c, ok := Code(err)
	if !ok {
		return false
	}
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// IsBusy reports errcode -1 (system busy; retry later).
func IsBusy(err error) bool { return hasCode(err, CodeBusy) }

// IsInvalidToken reports an invalid, superseded or expired access token
// (40001, 42001, 40014) or a missing one (41001): fetch a new token.
func IsInvalidToken(err error) bool {
	return hasCode(err, CodeInvalidCredential, CodeAccessTokenExpired, CodeInvalidAccessToken, CodeAccessTokenMissing)
}

// IsQuota reports that the daily quota of the API is used up (45009).
func IsQuota(err error) bool { return hasCode(err, CodeQuotaReached) }

// IsTicketInvalid reports an expired or invalid component_verify_ticket
// (61005, 61006): wait for a new push or call api_start_push_ticket.
func IsTicketInvalid(err error) bool { return hasCode(err, CodeTicketExpired, CodeTicketInvalid) }

// IsRefreshTokenInvalid reports that the authorizer refresh token is no longer
// valid (61023): recover it from api_get_authorizer_list or re-authorize.
func IsRefreshTokenInvalid(err error) bool { return hasCode(err, CodeRefreshTokenInvalid) }

// IsNotAuthorized reports that the account has not (or no longer) authorized
// the component (61003).
func IsNotAuthorized(err error) bool { return hasCode(err, CodeNotAuthorized) }

// IsAuthCodeInvalid reports an unknown, used or expired authorization code
// (61009, 61010).
func IsAuthCodeInvalid(err error) bool { return hasCode(err, CodeAuthCodeInvalid, CodeAuthCodeExpired) }

// IsIPNotWhitelisted reports that the caller's IP is not whitelisted (61004).
func IsIPNotWhitelisted(err error) bool { return hasCode(err, CodeIPNotWhitelisted) }

// IsUnauthorizedAPI reports that the API is not authorized (48001).
func IsUnauthorizedAPI(err error) bool { return hasCode(err, CodeUnauthorizedAPI) }

// IsInvalidAppSecret reports a wrong or missing appsecret (40125, 41004).
func IsInvalidAppSecret(err error) bool {
	return hasCode(err, CodeInvalidAppSecret, CodeAppSecretMissing)
}

// IsInvalidAppID reports an invalid appid or third-party platform (40013,
// 61011, 41002).
func IsInvalidAppID(err error) bool {
	return hasCode(err, CodeInvalidAppID, CodeInvalidComponent, CodeAppIDMissing)
}

// IsInvalidRequest reports a request WeChat could not parse or whose
// arguments it rejected (47001, 40097).
func IsInvalidRequest(err error) bool { return hasCode(err, CodeDataFormatError, CodeInvalidArgs) }

// IsNetwork reports a failure to get an answer from WeChat at all.
func IsNetwork(err error) bool {
	var netErr *NetworkError
	return errors.As(err, &netErr)
}

// Class is a coarse, stable category of a client error, suitable for
// condition reasons and metric labels.
type Class string

// Classes returned by Classify.
const (
	ClassNone                Class = ""
	ClassBusy                Class = "Busy"
	ClassInvalidToken        Class = "InvalidToken"
	ClassQuota               Class = "QuotaExceeded"
	ClassTicketInvalid       Class = "TicketInvalid"
	ClassRefreshTokenInvalid Class = "RefreshTokenInvalid"
	ClassNotAuthorized       Class = "NotAuthorized"
	ClassAuthCodeInvalid     Class = "AuthCodeInvalid"
	ClassIPNotWhitelisted    Class = "IPNotWhitelisted"
	ClassUnauthorizedAPI     Class = "UnauthorizedAPI"
	ClassInvalidAppSecret    Class = "InvalidAppSecret"
	ClassInvalidAppID        Class = "InvalidAppID"
	ClassInvalidRequest      Class = "InvalidRequest"
	ClassNetwork             Class = "NetworkError"
	ClassAPIError            Class = "APIError"
	ClassOther               Class = "Error"
)

// Classify maps err to a Class. A nil error is ClassNone.
func Classify(err error) Class {
	switch {
	case err == nil:
		return ClassNone
	case IsBusy(err):
		return ClassBusy
	case IsInvalidToken(err):
		return ClassInvalidToken
	case IsQuota(err):
		return ClassQuota
	case IsTicketInvalid(err):
		return ClassTicketInvalid
	case IsRefreshTokenInvalid(err):
		return ClassRefreshTokenInvalid
	case IsNotAuthorized(err):
		return ClassNotAuthorized
	case IsAuthCodeInvalid(err):
		return ClassAuthCodeInvalid
	case IsIPNotWhitelisted(err):
		return ClassIPNotWhitelisted
	case IsUnauthorizedAPI(err):
		return ClassUnauthorizedAPI
	case IsInvalidAppSecret(err):
		return ClassInvalidAppSecret
	case IsInvalidAppID(err):
		return ClassInvalidAppID
	case IsInvalidRequest(err):
		return ClassInvalidRequest
	case IsNetwork(err):
		return ClassNetwork
	}
	if _, ok := Code(err); ok {
		return ClassAPIError
	}
	return ClassOther
}

// redactor scrubs secret values out of strings before they reach an error,
// a log line or a metric label.
type redactor []string

const redacted = "[REDACTED]"

func (r redactor) apply(s string) string {
	for _, secret := range r {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}

// newNetworkError turns a transport error into a NetworkError whose text holds
// neither the URL nor any secret. *url.Error is unwrapped because its Error()
// prints the full URL, query string included.
func newNetworkError(api string, err error, secrets redactor) *NetworkError {
	var uerr *url.Error
	for errors.As(err, &uerr) {
		err = uerr.Err
	}
	kind := "network"
	notSent := false
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.Canceled):
		kind = "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		kind = "timeout"
	case errors.As(err, &dnsErr):
		kind, notSent = "dial", true
	case errors.As(err, &opErr) && opErr.Op == "dial":
		kind, notSent = "dial", true
	default:
		var te interface{ Timeout() bool }
		if errors.As(err, &te) && te.Timeout() {
			kind = "timeout"
		}
	}
	return &NetworkError{
		API:     api,
		Kind:    kind,
		NotSent: notSent,
		msg:     scrubURLs(secrets.apply(err.Error())),
		err:     err,
	}
}

func newHTTPStatusError(api string, status int) *NetworkError {
	return &NetworkError{
		API:  api,
		Kind: "http_" + strconv.Itoa(status),
		msg:  fmt.Sprintf("unexpected HTTP status %d", status),
	}
}

func newInvalidResponseError(api string, err error, secrets redactor) *NetworkError {
	return &NetworkError{
		API:  api,
		Kind: "invalid_response",
		msg:  "invalid response: " + scrubURLs(secrets.apply(err.Error())),
		err:  err,
	}
}

// scrubURLs drops the query of anything in s that looks like a URL, as a
// last line of defence should an inner error quote one.
func scrubURLs(s string) string {
	fields := strings.Fields(s)
	changed := false
	for i, f := range fields {
		if q := strings.IndexByte(f, '?'); q >= 0 && strings.Contains(f[:q], "/") {
			fields[i] = f[:q] + "?" + redacted
			changed = true
		}
	}
	if !changed {
		return s
	}
	return strings.Join(fields, " ")
}
