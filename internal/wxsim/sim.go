/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package wxsim simulates the WeChat Open Platform third-party platform API
// for tests, benchmarks and the local demo. It keeps real state and applies
// WeChat's rules: tickets pushed encrypted and signed to the receiver and
// valid for 12 h, access tokens that expire and whose predecessor stays valid
// for 5 minutes, single-use pre-auth and authorization codes, refresh-token
// rotation, daily quotas and their reset, scripted faults and call counters.
// Time comes from an injectable clock.
//
// A Simulator is an http.Handler serving WeChat's paths
// (/cgi-bin/component/...) and an admin API under /admin/ (see
// docs/simulator.md); every admin action is also a Go method.
package wxsim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// Endpoint names (the last path element under /cgi-bin/component/).
const (
	APIComponentToken    = "api_component_token"
	APIStartPushTicket   = "api_start_push_ticket"
	APICreatePreAuthCode = "api_create_preauthcode"
	APIQueryAuth         = "api_query_auth"
	APIAuthorizerToken   = "api_authorizer_token"
	APIGetAuthorizerInfo = "api_get_authorizer_info"
	APIGetAuthorizerList = "api_get_authorizer_list"
	APIClearQuota        = "clear_quota"
	// APISendCustomMessage is /cgi-bin/message/custom/send, the customer-service
	// message API an authorized account's access token calls (see messages.go).
	APISendCustomMessage = "message_custom_send"
	// APIGetAPIDomainIP is /cgi-bin/get_api_domain_ip, an authorizer API the
	// simulator serves so an authorizer access token can be checked the
	// way an app would use it.
	APIGetAPIDomainIP = "get_api_domain_ip"
)

// ComponentAPIs lists the simulated /cgi-bin/component/ endpoints.
var ComponentAPIs = []string{
	APIComponentToken, APIStartPushTicket, APICreatePreAuthCode, APIQueryAuth,
	APIAuthorizerToken, APIGetAuthorizerInfo, APIGetAuthorizerList, APIClearQuota,
	APIGetAuthorizerOption, APISetAuthorizerOption,
}

// Errors of the Go admin methods.
var (
	ErrUnknownComponent  = errors.New("unknown component")
	ErrUnknownAuthorizer = errors.New("unknown authorizer")
	ErrNotAuthorized     = errors.New("authorizer has not authorized the component")
	ErrNoReceiver        = errors.New("component has no receiver URL")
	ErrInvalidPreAuth    = errors.New("pre_auth_code is invalid, used or expired")
)

// beijing is the zone WeChat's daily quotas roll over in.
var beijing = time.FixedZone("CST", 8*3600)

// Simulator is a simulated WeChat Open Platform. Create it with New; it is
// an http.Handler and safe for concurrent use.
type Simulator struct {
	opts  Options
	clock clock.Clock
	log   *slog.Logger
	mux   *http.ServeMux

	pushNow   chan string
	done      chan struct{}
	closeOnce sync.Once

	mu           sync.Mutex
	components   map[string]*component
	tokens       map[string]*tokenRecord
	preAuthCodes map[string]*codeRecord
	authCodes    map[string]*codeRecord
	faults       []*Fault
	counters     map[string]map[string]*CallStats
	quotas       map[string]int
	pushes       []PushRecord
	pushSeq      int
	customMsgs   []CustomMessage
}

type component struct {
	seed        ComponentSeed
	crypter     *wxcrypto.Crypter
	tickets     map[string]time.Time // ticket → issued
	pushing     bool                 // WeChat is pushing tickets
	token       string               // newest component_access_token
	authorizers map[string]*authorizer
	usageDay    string
	usage       map[string]int
	clearMonth  string
	clears      int
	// listOmitsRefreshTokens: api_get_authorizer_list answers without refresh_token
	// (SetListRefreshTokens).
	listOmitsRefreshTokens bool
}

type authorizer struct {
	seed         AuthorizerSeed
	authorized   bool
	funcInfo     []int
	refreshToken string
	authTime     time.Time
	token        string // newest authorizer_access_token
	// apiTickets are getticket's tickets (tickets.go); usage counts the account's own
	// quota of getticket on usageDay.
	apiTickets map[string]apiTicket
	usageDay   string
	usage      map[string]int
	// options are the api_set_authorizer_option values; absent: 0.
	options map[string]int
}

type tokenKind int

const (
	componentToken tokenKind = iota + 1
	authorizerToken
)

type tokenRecord struct {
	kind           tokenKind
	componentAppID string
	authorizerID   string
	expires        time.Time
	superseded     time.Time // zero while it is the newest
	revoked        bool
}

type codeRecord struct {
	componentAppID  string
	authorizerAppID string
	expires         time.Time
	used            bool
}

// CallStats counts calls of one endpoint for one appid.
type CallStats struct {
	// Calls counts every request that reached the endpoint.
	Calls int `json:"calls"`
	// Errors counts the answers with a non-zero errcode (or a scripted
	// HTTP failure or timeout).
	Errors int `json:"errors"`
}

// New returns a Simulator seeded with opts. It does not start pushing
// tickets: call Run for that.
func New(opts Options) (*Simulator, error) {
	opts.setDefaults()
	s := &Simulator{
		opts:         opts,
		clock:        opts.Clock,
		log:          opts.Logger,
		pushNow:      make(chan string, 16),
		done:         make(chan struct{}),
		components:   map[string]*component{},
		tokens:       map[string]*tokenRecord{},
		preAuthCodes: map[string]*codeRecord{},
		authCodes:    map[string]*codeRecord{},
		counters:     map[string]map[string]*CallStats{},
		quotas:       map[string]int{},
	}
	for api, n := range opts.Quotas {
		s.quotas[api] = n
	}
	for _, c := range opts.Components {
		if _, dup := s.components[c.AppID]; dup {
			return nil, fmt.Errorf("component %s seeded twice", c.AppID)
		}
		if err := s.PutComponent(c); err != nil {
			return nil, err
		}
	}
	for _, a := range opts.Authorizers {
		if err := s.PutAuthorizer(a); err != nil {
			return nil, err
		}
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s, nil
}

// MustNew is New that panics on an invalid seed; for tests.
func MustNew(opts Options) *Simulator {
	s, err := New(opts)
	if err != nil {
		panic(err)
	}
	return s
}

// Close releases requests held by scripted timeouts and stops Run. It is
// safe to call more than once.
func (s *Simulator) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

// ServeHTTP serves the WeChat API and the admin API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// PutComponent adds a component, or updates the secrets and receiver URL of
// an existing one (keeping its tickets, tokens and authorizers).
func (s *Simulator) PutComponent(seed ComponentSeed) error {
	if err := seed.validate(); err != nil {
		return err
	}
	cr, err := wxcrypto.NewCrypter(seed.Token, seed.EncodingAESKey, seed.AppID)
	if err != nil {
		return fmt.Errorf("component %s: %w", seed.AppID, err)
	}
	if seed.ReceiverURL == "" && s.opts.ReceiverURLTemplate != "" {
		seed.ReceiverURL = strings.ReplaceAll(s.opts.ReceiverURLTemplate, "{appid}", seed.AppID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.components[seed.AppID]; ok {
		c.seed, c.crypter = seed, cr
		return nil
	}
	s.components[seed.AppID] = &component{
		seed:        seed,
		crypter:     cr,
		tickets:     map[string]time.Time{},
		pushing:     true,
		authorizers: map[string]*authorizer{},
		usage:       map[string]int{},
	}
	return nil
}

// SetReceiverURL changes where a component's pushes go.
func (s *Simulator) SetReceiverURL(componentAppID, receiverURL string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.components[componentAppID]
	if !ok {
		return ErrUnknownComponent
	}
	c.seed.ReceiverURL = receiverURL
	return nil
}

// PutAuthorizer adds or updates an account profile of a component. An
// Authorized seed of an account not yet authorized becomes authorized
// silently (no push), with seed.RefreshToken or a new one.
func (s *Simulator) PutAuthorizer(seed AuthorizerSeed) error {
	if seed.AppID == "" {
		return errors.New("authorizer appid is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.components[seed.ComponentAppID]
	if !ok {
		return fmt.Errorf("authorizer %s: %w %q", seed.AppID, ErrUnknownComponent, seed.ComponentAppID)
	}
	a := c.authorizerLocked(seed.AppID)
	a.seed = withProfileDefaults(seed)
	if len(seed.FuncInfo) > 0 {
		a.funcInfo = append([]int(nil), seed.FuncInfo...)
	}
	if seed.Authorized && !a.authorized {
		a.authorized = true
		a.authTime = s.clock.Now()
		a.refreshToken = seed.RefreshToken
		if a.refreshToken == "" {
			a.refreshToken = newRefreshToken()
		}
	}
	return nil
}

func (c *component) authorizerLocked(appID string) *authorizer {
	a, ok := c.authorizers[appID]
	if !ok {
		a = &authorizer{
			seed:     withProfileDefaults(AuthorizerSeed{ComponentAppID: c.seed.AppID, AppID: appID}),
			funcInfo: append([]int(nil), DefaultFuncInfo...),
		}
		c.authorizers[appID] = a
	}
	return a
}

func withProfileDefaults(a AuthorizerSeed) AuthorizerSeed {
	if a.NickName == "" {
		a.NickName = "Sim account " + a.AppID
	}
	if a.UserName == "" {
		a.UserName = "gh_" + strings.TrimPrefix(a.AppID, "wx")
		if len(a.UserName) > 15 {
			a.UserName = a.UserName[:15]
		}
	}
	if a.HeadImg == "" {
		a.HeadImg = "http://wx.qlogo.cn/mmopen/sim-" + a.AppID + "/0"
	}
	if a.QRCodeURL == "" {
		a.QRCodeURL = "http://mmbiz.qpic.cn/mmbiz_jpg/sim-" + a.AppID + "/0"
	}
	if a.PrincipalName == "" {
		a.PrincipalName = "Simulated Company Ltd."
	}
	return a
}

// --- random values -------------------------------------------------------

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newAccessToken() string  { return randomString(96) }
func newRefreshToken() string { return "refreshtoken@@@" + randomString(32) }
func newTicket() string       { return "ticket@@@" + randomString(64) }
func newPreAuthCode() string  { return "preauthcode@@@" + randomString(48) }
func newAuthCode() string     { return "queryauthcode@@@" + randomString(64) }

func newRID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// --- tokens ----------------------------------------------------------------

// issueTokenLocked mints a token and caps the validity of the previous one
// (prev, if any) to now + TokenOverlap.
func (s *Simulator) issueTokenLocked(kind tokenKind, compID, authzID, prev string) string {
	now := s.clock.Now()
	s.pruneTokensLocked(now)
	if p, ok := s.tokens[prev]; ok && p.superseded.IsZero() {
		p.superseded = now
	}
	tok := newAccessToken()
	s.tokens[tok] = &tokenRecord{kind: kind, componentAppID: compID, authorizerID: authzID, expires: now.Add(s.opts.TokenLifetime)}
	return tok
}

// pruneTokensLocked forgets tokens a day past their expiry (after that an
// old token reads as unknown, 40001, as on WeChat).
func (s *Simulator) pruneTokensLocked(now time.Time) {
	for k, t := range s.tokens {
		if now.Sub(t.expires) > 24*time.Hour {
			delete(s.tokens, k)
		}
	}
	for k, c := range s.preAuthCodes {
		if now.Sub(c.expires) > 24*time.Hour {
			delete(s.preAuthCodes, k)
		}
	}
	for k, c := range s.authCodes {
		if now.Sub(c.expires) > 24*time.Hour {
			delete(s.authCodes, k)
		}
	}
}

func wellFormedToken(tok string) bool {
	if len(tok) < 16 || len(tok) > 512 {
		return false
	}
	for _, r := range tok {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '*' || r == '.' || r == '@') {
			return false
		}
	}
	return true
}

// checkTokenLocked validates an access token of the given kind, returning
// its record or an errcode.
func (s *Simulator) checkTokenLocked(tok string, kind tokenKind) (*tokenRecord, int) {
	if tok == "" {
		return nil, 41001
	}
	if !wellFormedToken(tok) {
		return nil, 40014
	}
	rec, ok := s.tokens[tok]
	if !ok || rec.kind != kind || rec.revoked {
		return nil, 40001
	}
	now := s.clock.Now()
	if !now.Before(rec.expires) {
		return nil, 42001
	}
	if !rec.superseded.IsZero() && !now.Before(rec.superseded.Add(s.opts.TokenOverlap)) {
		return nil, 40001
	}
	return rec, 0
}

// TokenState reports how the simulator would judge an access token right
// now: 0 if valid, else the errcode an API call with it would get.
func (s *Simulator) TokenState(tok string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.tokens[tok]
	kind := componentToken
	if ok {
		kind = rec.kind
	}
	_, code := s.checkTokenLocked(tok, kind)
	return code
}
