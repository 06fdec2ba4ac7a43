/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxcrypto

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of them, so callers
// branch with errors.Is. No error message ever contains a key, token, ticket, code or any
// plaintext: messages describe only what kind of check failed and, at most, lengths.
var (
	// ErrBadSignature: msg_signature does not match SHA1(sort(token, timestamp, nonce, encrypt)).
	ErrBadSignature = errors.New("wxcrypto: bad msg_signature")
	// ErrBadAppID: the appid inside the plaintext (or the envelope's AppId) is not this component's.
	ErrBadAppID = errors.New("wxcrypto: appid mismatch")
	// ErrBadPadding: the decrypted block does not end in valid PKCS#7 padding for 32-byte blocks.
	ErrBadPadding = errors.New("wxcrypto: bad padding")
	// ErrMalformed: the input is not the expected shape (XML envelope or push, base64, lengths).
	ErrMalformed = errors.New("wxcrypto: malformed input")
	// ErrBadKey: the EncodingAESKey (or another part of the key material) is invalid.
	ErrBadKey = errors.New("wxcrypto: bad key")
)

// wrapErr gives a sentinel a little context without ever including data values.
type wrapErr struct {
	sentinel error
	detail   string
}

func (e *wrapErr) Error() string { return e.sentinel.Error() + ": " + e.detail }
func (e *wrapErr) Unwrap() error { return e.sentinel }

func errorf(sentinel error, detail string) error { return &wrapErr{sentinel: sentinel, detail: detail} }
