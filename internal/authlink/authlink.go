/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package authlink is what makes an authorization link, shared by `kubectl wechat
// auth-link`, the manager and the receiver's authorization start page:
//
//   - WithState appends the signed state (internal/authstate) the receiver's landing page
//     checks to a redirect_uri;
//   - Seal and Open carry a pre_auth_code from the manager to the receiver through the
//     WeChatComponent's status without letting readers of the resource use it.
//
// The link itself (componentloginpage / bindcomponent) is wxapi.AuthorizationLink.
//
// Sealing: AES-256-GCM with a key derived from the platform's message-verification Token
// and EncodingAESKey, which the manager (credentials Secret) and the receiver (keyring)
// already hold and which readers of the custom resource do not; the additional data binds
// a sealed code to one component and one request, so it cannot be moved to another. A
// sealed value reads "v1." + base64url(nonce ‖ ciphertext ‖ tag), unpadded.
package authlink

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/authstate"
)

const (
	sealVersion  = "v1"
	sealKeyLabel = "wechat-operator pre_auth_code seal key v1"
	// MaxSealedLength bounds a sealed value before it is decoded (the CRD says 1024).
	MaxSealedLength = 1024
	// maxCodeLength bounds what is sealed: WeChat's pre_auth_codes are about 60 characters.
	maxCodeLength = 512
)

// Errors of Open and Seal; none carries a key or a code.
var (
	ErrMalformed = errors.New("the sealed pre_auth_code is malformed")
	ErrForged    = errors.New("the sealed pre_auth_code was not sealed for this component and request")
	ErrTooLong   = errors.New("the pre_auth_code is too long to seal")
)

// SealKey derives the sealing key from the platform's Token and EncodingAESKey. The label
// separates it from the state key (authstate.Key), made from the same two.
func SealKey(token, encodingAESKey string) []byte {
	m := hmac.New(sha256.New, []byte(encodingAESKey))
	m.Write([]byte(sealKeyLabel + "\n" + token))
	return m.Sum(nil)
}

func additionalData(namespace, name, requestID string) []byte {
	return []byte(sealVersion + "\n" + namespace + "/" + name + "\n" + requestID)
}

func aead(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts a pre_auth_code for the request requestID of the component namespace/name.
func Seal(key []byte, namespace, name, requestID, preAuthCode string) (string, error) {
	if len(preAuthCode) > maxCodeLength {
		return "", ErrTooLong
	}
	g, err := aead(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := g.Seal(nonce, nonce, []byte(preAuthCode), additionalData(namespace, name, requestID))
	return sealVersion + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal made for the same component and request.
func Open(key []byte, namespace, name, requestID, sealed string) (string, error) {
	if len(sealed) > MaxSealedLength {
		return "", ErrMalformed
	}
	body, ok := strings.CutPrefix(sealed, sealVersion+".")
	if !ok {
		return "", ErrMalformed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil {
		return "", ErrMalformed
	}
	g, err := aead(key)
	if err != nil {
		return "", err
	}
	if len(raw) < g.NonceSize()+g.Overhead() {
		return "", ErrMalformed
	}
	plain, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], additionalData(namespace, name, requestID))
	if err != nil {
		return "", ErrForged
	}
	return string(plain), nil
}

// WithState returns redirectURI with the state the receiver's landing page checks appended:
// signed with stateKey (authstate.Key) for namespace/name, accepted until expires. The other
// query parameters keep their order; a redirectURI that already carries a state or a
// fragment is refused (WeChat appends auth_code and expires_in to the query).
func WithState(redirectURI string, stateKey []byte, namespace, name string, expires time.Time) (string, error) {
	u, err := url.Parse(redirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("the redirect URI must be an absolute http or https URL")
	}
	if u.Query().Has(authstate.Param) || u.Fragment != "" {
		return "", errors.New("the redirect URI must carry neither " + authstate.Param + "= nor a #fragment")
	}
	state, err := authstate.Sign(stateKey, namespace, name, expires)
	if err != nil {
		return "", err
	}
	param := authstate.Param + "=" + url.QueryEscape(state)
	if u.RawQuery == "" {
		u.RawQuery = param
	} else {
		u.RawQuery += "&" + param
	}
	return u.String(), nil
}
