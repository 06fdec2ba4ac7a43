/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxcrypto

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
)

// Signature computes the msg_signature WeChat uses: the lower-case hex SHA1 of the
// concatenation of token, timestamp, nonce and encrypt after sorting them as byte strings.
func Signature(token, timestamp, nonce, encrypt string) string {
	sum := signatureSum(token, timestamp, nonce, []byte(encrypt))
	return hex.EncodeToString(sum[:])
}

// signatureSum sorts the three strings and encrypt and hashes their concatenation.
// It does not allocate for realistic sizes (the concatenation is built on the stack).
func signatureSum(token, timestamp, nonce string, encrypt []byte) [sha1.Size]byte {
	s := [3]string{token, timestamp, nonce}
	// Sort three strings (insertion sort: three compares at most).
	if s[1] < s[0] {
		s[0], s[1] = s[1], s[0]
	}
	if s[2] < s[1] {
		s[1], s[2] = s[2], s[1]
		if s[1] < s[0] {
			s[0], s[1] = s[1], s[0]
		}
	}
	var stack [2048]byte
	buf := stack[:0]
	placed := false
	for _, v := range s {
		if !placed && string(encrypt) < v {
			buf = append(buf, encrypt...)
			placed = true
		}
		buf = append(buf, v...)
	}
	if !placed {
		buf = append(buf, encrypt...)
	}
	return sha1.Sum(buf)
}

// verifySum compares msgSignature (hex, either case) with sum in constant time.
func verifySum(sum [sha1.Size]byte, msgSignature string) error {
	if len(msgSignature) != 2*sha1.Size {
		return errorf(ErrBadSignature, "msg_signature must be 40 hex characters")
	}
	var want, got [2 * sha1.Size]byte
	hex.Encode(want[:], sum[:])
	for i := 0; i < len(got); i++ {
		c := msgSignature[i]
		if 'A' <= c && c <= 'F' {
			c += 'a' - 'A'
		}
		got[i] = c
	}
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return errorf(ErrBadSignature, "signature mismatch")
	}
	return nil
}
