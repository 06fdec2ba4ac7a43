/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// classifiers lists every exported classifier, for exclusivity checks.
var classifiers = map[string]func(error) bool{
	"IsBusy":                IsBusy,
	"IsInvalidToken":        IsInvalidToken,
	"IsQuota":               IsQuota,
	"IsTicketInvalid":       IsTicketInvalid,
	"IsRefreshTokenInvalid": IsRefreshTokenInvalid,
	"IsNotAuthorized":       IsNotAuthorized,
	"IsAuthCodeInvalid":     IsAuthCodeInvalid,
	"IsIPNotWhitelisted":    IsIPNotWhitelisted,
	"IsUnauthorizedAPI":     IsUnauthorizedAPI,
	"IsInvalidAppSecret":    IsInvalidAppSecret,
	"IsInvalidAppID":        IsInvalidAppID,
	"IsInvalidRequest":      IsInvalidRequest,
	"IsNetwork":             IsNetwork,
}

// TestClassifiedErrcodesFromTheSimulator produces every classified errcode
// through the client, from the simulator's own rules where it has one and
// from a scripted fault otherwise, and checks that exactly the right
// classifier recognizes it.
func TestClassifiedErrcodesFromTheSimulator(t *testing.T) {
	type produce func(t *testing.T, e *testEnv) error
	cases := []struct {
		name       string
		simMut     func(*wxsim.Options)
		produce    produce
		code       int
		classifier string
		class      Class
	}{
		{"busy -1 (fault)", nil, func(t *testing.T, e *testEnv) error {
			e.sim.AddFault(wxsim.Fault{API: APIComponentToken, ErrCode: -1, Count: 3})
			return stepping(t, e.clock, func() error {
				_, err := e.client.ComponentToken(t.Context(), compID, compSecret, e.ticket(t))
				return err
			})
		}, -1, "IsBusy", ClassBusy},
		{"superseded token 40001", nil, func(t *testing.T, e *testEnv) error {
			old := e.token(t)
			e.token(t)
			e.clock.Step(5 * time.Minute)
			_, err := e.client.CreatePreAuthCode(t.Context(), old, compID)
			return err
		}, 40001, "IsInvalidToken", ClassInvalidToken},
		{"expired token 42001", nil, func(t *testing.T, e *testEnv) error {
			tok := e.token(t)
			e.clock.Step(2 * time.Hour)
			_, err := e.client.CreatePreAuthCode(t.Context(), tok, compID)
			return err
		}, 42001, "IsInvalidToken", ClassInvalidToken},
		{"malformed token 40014", nil, func(t *testing.T, e *testEnv) error {
			_, err := e.client.CreatePreAuthCode(t.Context(), "bad token!", compID)
			return err
		}, 40014, "IsInvalidToken", ClassInvalidToken},
		{"quota 45009", func(o *wxsim.Options) { o.Quotas = map[string]int{APIComponentToken: 1} }, func(t *testing.T, e *testEnv) error {
			e.token(t)
			_, err := e.client.ComponentToken(t.Context(), compID, compSecret, e.ticket(t))
			return err
		}, 45009, "IsQuota", ClassQuota},
		{"expired ticket 61005", nil, func(t *testing.T, e *testEnv) error {
			tk := e.ticket(t)
			e.clock.Step(12 * time.Hour)
			_, err := e.client.ComponentToken(t.Context(), compID, compSecret, tk)
			return err
		}, 61005, "IsTicketInvalid", ClassTicketInvalid},
		{"invalid ticket 61006", nil, func(t *testing.T, e *testEnv) error {
			_, err := e.client.ComponentToken(t.Context(), compID, compSecret, "ticket@@@forged")
			return err
		}, 61006, "IsTicketInvalid", ClassTicketInvalid},
		{"rotated refresh token 61023", func(o *wxsim.Options) { o.RotateRefreshTokens = true }, func(t *testing.T, e *testEnv) error {
			tok := e.token(t)
			ai := e.authorize(t, tok)
			if _, err := e.client.AuthorizerToken(t.Context(), tok, compID, authzID, ai.RefreshToken); err != nil {
				t.Fatal(err)
			}
			_, err := e.client.AuthorizerToken(t.Context(), tok, compID, authzID, ai.RefreshToken)
			return err
		}, 61023, "IsRefreshTokenInvalid", ClassRefreshTokenInvalid},
		{"not authorized 61003", nil, func(t *testing.T, e *testEnv) error {
			_, err := e.client.AuthorizerToken(t.Context(), e.token(t), compID, authzID, "refreshtoken@@@x")
			return err
		}, 61003, "IsNotAuthorized", ClassNotAuthorized},
		{"used authorization code 61009", nil, func(t *testing.T, e *testEnv) error {
			tok := e.token(t)
			res, _ := e.sim.Authorize(t.Context(), wxsim.AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID})
			if _, err := e.client.QueryAuth(t.Context(), tok, compID, res.AuthCode); err != nil {
				t.Fatal(err)
			}
			_, err := e.client.QueryAuth(t.Context(), tok, compID, res.AuthCode)
			return err
		}, 61009, "IsAuthCodeInvalid", ClassAuthCodeInvalid},
		{"expired authorization code 61010", nil, func(t *testing.T, e *testEnv) error {
			res, _ := e.sim.Authorize(t.Context(), wxsim.AuthorizeRequest{ComponentAppID: compID, AuthorizerAppID: authzID})
			e.clock.Step(time.Hour)
			_, err := e.client.QueryAuth(t.Context(), e.token(t), compID, res.AuthCode)
			return err
		}, 61010, "IsAuthCodeInvalid", ClassAuthCodeInvalid},
		{"IP not whitelisted 61004", func(o *wxsim.Options) { o.Components[0].IPWhitelist = []string{"192.0.2.1"} }, func(t *testing.T, e *testEnv) error {
			_, err := e.client.ComponentToken(t.Context(), compID, compSecret, e.ticket(t))
			return err
		}, 61004, "IsIPNotWhitelisted", ClassIPNotWhitelisted},
		{"unauthorized API 48001 (fault)", nil, func(t *testing.T, e *testEnv) error {
			e.sim.AddFault(wxsim.Fault{API: APIGetAuthorizerList, ErrCode: 48001})
			_, err := e.client.GetAuthorizerList(t.Context(), e.token(t), compID, 0, 10)
			return err
		}, 48001, "IsUnauthorizedAPI", ClassUnauthorizedAPI},
		{"wrong appsecret 40125", nil, func(t *testing.T, e *testEnv) error {
			_, err := e.client.ComponentToken(t.Context(), compID, "wrong-secret", e.ticket(t))
			return err
		}, 40125, "IsInvalidAppSecret", ClassInvalidAppSecret},
		{"missing appsecret 41004", nil, func(t *testing.T, e *testEnv) error {
			return e.client.StartPushTicket(t.Context(), compID, "")
		}, 41004, "IsInvalidAppSecret", ClassInvalidAppSecret},
		{"unknown appid 40013", nil, func(t *testing.T, e *testEnv) error {
			_, err := e.client.ComponentToken(t.Context(), "wx9999999999999999", compSecret, "x")
			return err
		}, 40013, "IsInvalidAppID", ClassInvalidAppID},
		{"token of another component 61011", nil, func(t *testing.T, e *testEnv) error {
			_, err := e.client.CreatePreAuthCode(t.Context(), e.token(t), otherComp)
			return err
		}, 61011, "IsInvalidAppID", ClassInvalidAppID},
		{"bad request 47001 (fault)", nil, func(t *testing.T, e *testEnv) error {
			e.sim.AddFault(wxsim.Fault{API: APIClearQuota, ErrCode: 47001})
			return e.client.ClearQuota(t.Context(), e.token(t), compID)
		}, 47001, "IsInvalidRequest", ClassInvalidRequest},
		{"invalid args 40097 (count past the page size, sent raw)", nil, func(t *testing.T, e *testEnv) error {
			e.sim.AddFault(wxsim.Fault{API: APIGetAuthorizerList, ErrCode: 40097})
			_, err := e.client.GetAuthorizerList(t.Context(), e.token(t), compID, 0, 500)
			return err
		}, 40097, "IsInvalidRequest", ClassInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, tc.simMut, nil)
			err := tc.produce(t, e)
			code, ok := Code(err)
			if !ok || code != tc.code {
				t.Fatalf("err = %v, want errcode %d", err, tc.code)
			}
			for name, is := range classifiers {
				if got, want := is(err), name == tc.classifier; got != want {
					t.Errorf("%s(err) = %v, want %v", name, got, want)
				}
			}
			if got := Classify(err); got != tc.class {
				t.Errorf("Classify = %q, want %q", got, tc.class)
			}
			// Classifiers see through wrapping.
			wrapped := fmt.Errorf("refreshing: %w", err)
			if !classifiers[tc.classifier](wrapped) {
				t.Errorf("%s does not see through wrapping", tc.classifier)
			}
		})
	}
}

func TestClassifiersOnOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("plain"), &NetworkError{API: "x", Kind: "timeout"}} {
		for name, is := range classifiers {
			want := name == "IsNetwork" && err != nil && strings.Contains(fmt.Sprintf("%T", err), "NetworkError")
			if got := is(err); got != want {
				t.Errorf("%s(%v) = %v, want %v", name, err, got, want)
			}
		}
	}
	if Classify(nil) != ClassNone || Classify(errors.New("x")) != ClassOther || Classify(&APIError{Code: 12345}) != ClassAPIError {
		t.Error("Classify of nil, plain or unknown-code errors is wrong")
	}
	if _, ok := Code(errors.New("x")); ok {
		t.Error("Code found an errcode in a plain error")
	}
}

func TestAPIErrorText(t *testing.T) {
	e := &APIError{API: APIComponentToken, Code: 61006, Msg: "component ticket is invalid rid: 1"}
	if got := e.Error(); got != "wechat api_component_token: errcode 61006: component ticket is invalid rid: 1" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&APIError{API: "x", Code: -1}).Error(); got != "wechat x: errcode -1" {
		t.Errorf("Error() = %q", got)
	}
}
