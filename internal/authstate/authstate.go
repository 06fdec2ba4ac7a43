/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package authstate signs and checks the state parameter of authorization links.
//
// The redirect landing page (GET …/authorized?auth_code=…) writes to a WeChatComponent's
// status and makes the manager call api_query_auth, so the receiver accepts it only from
// links the operator made: their redirect_uri carries state=, an expiring HMAC over the
// component's namespace and name. WeChat keeps redirect_uri's query when it appends auth_code
// and expires_in.
//
// The HMAC key is derived from the platform's message-verification Token (消息校验Token) and
// its EncodingAESKey: the receiver already holds both (the keyring), and whoever makes links
// can read them from the component's credentials Secret. Nothing new is given to the
// receiver, no new Secret has to be managed, and changing either (on WeChat's settings page
// and in the Secret) revokes every outstanding link. The EncodingAESKey (43 characters, 256
// bits) is what makes the key unguessable: states are handed to people outside the cluster,
// and a Token (3 to 32 letters and digits) alone could be guessed offline from one of them.
// The derivation separates this use of the keys from WeChat's, which never key an HMAC.
//
// A state reads "v1.<expires, unix seconds>.<nonce>.<mac>", nonce and mac in unpadded
// base64url, mac = HMAC-SHA256(key, "v1\n<namespace>/<name>\n<expires>\n<nonce>").
package authstate

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

const (
	// Param is the query parameter of redirect_uri that carries the state.
	Param = "state"
	// DefaultLifetime is how long a link's state is accepted. A pre_auth_code lasts about
	// 10 minutes and the redirect follows the authorization at once; an hour leaves the
	// administrator room to reload the landing page.
	DefaultLifetime = time.Hour
	// MaxLifetime bounds what is accepted, whoever signed it.
	MaxLifetime = 24 * time.Hour
	// MaxLength bounds a state before it is parsed.
	MaxLength = 128

	version  = "v1"
	keyLabel = "wechat-operator authorization-link state key v2"
	nonceLen = 12
	macLen   = sha256.Size
)

// Errors of Verify; none carries the key or the state.
var (
	ErrMalformed = errors.New("the state parameter is missing or malformed")
	ErrForged    = errors.New("the state parameter was not signed for this platform")
	ErrExpired   = errors.New("the state parameter has expired")
)

var b64 = base64.RawURLEncoding

// Key derives the state key of a platform from its message-verification Token and its
// EncodingAESKey.
func Key(token, encodingAESKey string) []byte {
	mac := hmac.New(sha256.New, []byte(encodingAESKey))
	mac.Write([]byte(keyLabel + "\n" + token))
	return mac.Sum(nil)
}

// Sign returns a state for the component namespace/name that expires at expires.
func Sign(key []byte, namespace, name string, expires time.Time) (string, error) {
	raw := make([]byte, nonceLen)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return sign(key, namespace, name, expires, raw), nil
}

func sign(key []byte, namespace, name string, expires time.Time, rawNonce []byte) string {
	nonce := b64.EncodeToString(rawNonce)
	exp := strconv.FormatInt(expires.Unix(), 10)
	return version + "." + exp + "." + nonce + "." + b64.EncodeToString(sum(key, namespace, name, exp, nonce))
}

// Verify checks that state was signed with key for namespace/name and has not expired at
// now. It returns when the state expires.
func Verify(key []byte, namespace, name, state string, now time.Time) (time.Time, error) {
	p, err := Parse(state)
	if err != nil {
		return time.Time{}, err
	}
	if !hmac.Equal(sum(key, namespace, name, p.expiresText, p.Nonce), p.MAC) {
		return time.Time{}, ErrForged
	}
	if !now.Before(p.Expires) || p.Expires.After(now.Add(MaxLifetime)) {
		return time.Time{}, ErrExpired
	}
	return p.Expires, nil
}

// Parsed is a state taken apart, not yet verified.
type Parsed struct {
	Expires     time.Time
	Nonce       string
	MAC         []byte
	expiresText string
}

// Parse takes a state apart. It accepts only the canonical form Sign produces.
func Parse(state string) (Parsed, error) {
	if len(state) == 0 || len(state) > MaxLength {
		return Parsed{}, ErrMalformed
	}
	parts := strings.Split(state, ".")
	if len(parts) != 4 || parts[0] != version {
		return Parsed{}, ErrMalformed
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	// Only the canonical decimal: no sign, no leading zero, so one expiry has one text.
	if err != nil || exp <= 0 || strconv.FormatInt(exp, 10) != parts[1] {
		return Parsed{}, ErrMalformed
	}
	nonce, err := b64.DecodeString(parts[2])
	if err != nil || len(nonce) != nonceLen || b64.EncodeToString(nonce) != parts[2] {
		return Parsed{}, ErrMalformed
	}
	mac, err := b64.DecodeString(parts[3])
	if err != nil || len(mac) != macLen || b64.EncodeToString(mac) != parts[3] {
		return Parsed{}, ErrMalformed
	}
	return Parsed{Expires: time.Unix(exp, 0), Nonce: parts[2], MAC: mac, expiresText: parts[1]}, nil
}

func sum(key []byte, namespace, name, expires, nonce string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(version + "\n" + namespace + "/" + name + "\n" + expires + "\n" + nonce))
	return mac.Sum(nil)
}
