/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/utils/clock"
)

// Defaults applied by New to zero-valued Options fields. They are WeChat's
// documented values.
const (
	DefaultTokenLifetime       = 7200 * time.Second
	DefaultTokenOverlap        = 5 * time.Minute
	DefaultTicketInterval      = 10 * time.Minute
	DefaultTicketLifetime      = 12 * time.Hour
	DefaultPreAuthCodeLifetime = 600 * time.Second
	DefaultAuthCodeLifetime    = 3600 * time.Second
	DefaultPushTimeout         = 5 * time.Second
	DefaultPushRetries         = 3
	DefaultPushRetryDelay      = 5 * time.Second
	DefaultClearQuotaPerMonth  = 10
)

// ComponentSeed is a third-party platform known to the simulator.
type ComponentSeed struct {
	AppID          string `json:"appid"`
	AppSecret      string `json:"appsecret"`
	Token          string `json:"token"`
	EncodingAESKey string `json:"encoding_aes_key"`
	// ReceiverURL is the 授权事件接收URL pushes are POSTed to. Empty: the
	// Options.ReceiverURLTemplate, or no pushes.
	ReceiverURL string `json:"receiver_url,omitempty"`
	// MessageURL is the 消息与事件接收URL messages of authorized accounts are
	// POSTed to; "$APPID$" in it is replaced with the account's appid.
	MessageURL string `json:"message_url,omitempty"`
	// IPWhitelist, if not empty, lists the only client IPs allowed to call
	// the API for this component (others get 61004).
	IPWhitelist []string `json:"ip_whitelist,omitempty"`
}

// AuthorizerSeed is an official account or mini program profile, optionally
// already authorized to a component.
type AuthorizerSeed struct {
	// ComponentAppID is the component the account belongs to (an account
	// may be seeded once per component).
	ComponentAppID string       `json:"component_appid"`
	AppID          string       `json:"appid"`
	NickName       string       `json:"nick_name,omitempty"`
	HeadImg        string       `json:"head_img,omitempty"`
	ServiceType    int          `json:"service_type,omitempty"`
	VerifyType     int          `json:"verify_type,omitempty"`
	UserName       string       `json:"user_name,omitempty"`
	PrincipalName  string       `json:"principal_name,omitempty"`
	Alias          string       `json:"alias,omitempty"`
	Signature      string       `json:"signature,omitempty"`
	QRCodeURL      string       `json:"qrcode_url,omitempty"`
	MiniProgram    bool         `json:"mini_program,omitempty"`
	Business       BusinessInfo `json:"business_info,omitzero"`
	// FuncInfo are the permission set ids granted on authorization;
	// DefaultFuncInfo if empty.
	FuncInfo []int `json:"func_info,omitempty"`
	// Authorized seeds the account as already authorized (no push is sent).
	Authorized bool `json:"authorized,omitempty"`
	// RefreshToken is the refresh token of an Authorized seed; generated if
	// empty.
	RefreshToken string `json:"refresh_token,omitempty"`
}

// BusinessInfo mirrors authorizer_info.business_info (0 closed, 1 open).
type BusinessInfo struct {
	OpenStore int `json:"open_store"`
	OpenScan  int `json:"open_scan"`
	OpenPay   int `json:"open_pay"`
	OpenCard  int `json:"open_card"`
	OpenShake int `json:"open_shake"`
}

// DefaultFuncInfo is granted when a seed or an authorization names none.
var DefaultFuncInfo = []int{1, 2, 3, 4, 11}

// Options configure a Simulator. Zero values take the defaults above.
type Options struct {
	// Clock is the simulator's time; the real clock if nil. With a fake
	// clock, tests run hours of token life in milliseconds.
	Clock clock.Clock
	// Components and Authorizers are the initial state.
	Components  []ComponentSeed
	Authorizers []AuthorizerSeed
	// ReceiverURLTemplate is the receiver URL of components without one;
	// "{appid}" is replaced with the component appid.
	ReceiverURLTemplate string

	TokenLifetime       time.Duration // component and authorizer access tokens
	TokenOverlap        time.Duration // validity of the previous token after a new one
	TicketInterval      time.Duration // between two pushes of component_verify_ticket
	TicketLifetime      time.Duration // validity of a ticket
	PreAuthCodeLifetime time.Duration
	AuthCodeLifetime    time.Duration
	// APITicketLifetime is the expires_in of getticket's jsapi and wx_card tickets.
	APITicketLifetime time.Duration
	// RotateRefreshTokens makes api_authorizer_token return a new refresh
	// token every time; the previous one is then rejected with 61023.
	RotateRefreshTokens bool
	// Quotas are daily call limits per component, by endpoint name
	// (e.g. "api_component_token": 2000). Absent or 0: unlimited.
	Quotas map[string]int
	// ClearQuotaPerMonth bounds clear_quota calls per component and month
	// (48006 past it). 0: DefaultClearQuotaPerMonth; negative: unlimited.
	ClearQuotaPerMonth int

	// PushOnStart makes Run push a ticket to every component at once
	// rather than after the first interval.
	PushOnStart bool
	// PushClient sends pushes; a client with PushTimeout if nil.
	PushClient  *http.Client
	PushTimeout time.Duration
	// PushRetries is how many times a push the receiver did not answer with
	// "success" is retried; PushRetryDelay is the first wait (doubling).
	// Negative PushRetries: no retries.
	PushRetries    int
	PushRetryDelay time.Duration

	// Logger receives one line per API call and push; never a token,
	// ticket, code or key. Discarded if nil.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.TokenLifetime, DefaultTokenLifetime)
	def(&o.TokenOverlap, DefaultTokenOverlap)
	def(&o.TicketInterval, DefaultTicketInterval)
	def(&o.TicketLifetime, DefaultTicketLifetime)
	def(&o.PreAuthCodeLifetime, DefaultPreAuthCodeLifetime)
	def(&o.AuthCodeLifetime, DefaultAuthCodeLifetime)
	def(&o.APITicketLifetime, DefaultAPITicketLifetime)
	def(&o.PushTimeout, DefaultPushTimeout)
	def(&o.PushRetryDelay, DefaultPushRetryDelay)
	switch {
	case o.PushRetries == 0:
		o.PushRetries = DefaultPushRetries
	case o.PushRetries < 0:
		o.PushRetries = 0
	}
	if o.ClearQuotaPerMonth == 0 {
		o.ClearQuotaPerMonth = DefaultClearQuotaPerMonth
	}
	if o.PushClient == nil {
		o.PushClient = &http.Client{
			Timeout:       o.PushTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c ComponentSeed) validate() error {
	if c.AppID == "" {
		return errors.New("component appid is empty")
	}
	if c.AppSecret == "" {
		return fmt.Errorf("component %s: appsecret is empty", c.AppID)
	}
	if c.Token == "" {
		return fmt.Errorf("component %s: token is empty", c.AppID)
	}
	if len(c.EncodingAESKey) != 43 {
		return fmt.Errorf("component %s: encoding_aes_key must be 43 characters", c.AppID)
	}
	return nil
}

// SeedFile is the JSON seed configuration read by cmd/wechat-sim.
type SeedFile struct {
	Components  []ComponentSeed  `json:"components"`
	Authorizers []AuthorizerSeed `json:"authorizers,omitempty"`
	Quotas      map[string]int   `json:"quotas,omitempty"`
}

// LoadSeedFile reads a SeedFile. Unknown fields are errors, so a typo does
// not silently drop a setting.
func LoadSeedFile(path string) (SeedFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return SeedFile{}, err
	}
	defer func() { _ = f.Close() }()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var sf SeedFile
	if err := dec.Decode(&sf); err != nil {
		return SeedFile{}, fmt.Errorf("seed file %s: %w", path, err)
	}
	return sf, nil
}

// GenerateEncodingAESKey returns a random 43-character EncodingAESKey made of
// letters and digits only, as the WeChat console generates them.
func GenerateEncodingAESKey() string {
	for {
		var b [32]byte
		_, _ = rand.Read(b[:])
		k := strings.TrimSuffix(base64.StdEncoding.EncodeToString(b[:]), "=")
		if !strings.ContainsAny(k, "+/") {
			return k
		}
	}
}
