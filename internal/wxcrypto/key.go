/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxcrypto

import (
	"encoding/base64"
	"strconv"
)

// EncodingAESKeyLen is the length of an EncodingAESKey as shown in the WeChat console.
const EncodingAESKeyLen = 43

// ParseEncodingAESKey validates a 43-character EncodingAESKey (only [A-Za-z0-9]) and returns
// the 32-byte AES key, base64(EncodingAESKey + "="). The two spare low bits of the last
// character are ignored, as every WeChat SDK does (the console generates keys whose last
// character may set them). Errors wrap ErrBadKey and never contain the key.
func ParseEncodingAESKey(encodingAESKey string) ([]byte, error) {
	if len(encodingAESKey) != EncodingAESKeyLen {
		return nil, errorf(ErrBadKey, "EncodingAESKey must be 43 characters, got "+strconv.Itoa(len(encodingAESKey)))
	}
	for i := 0; i < len(encodingAESKey); i++ {
		c := encodingAESKey[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return nil, errorf(ErrBadKey, "EncodingAESKey may contain only A-Z, a-z and 0-9")
		}
	}
	var src [EncodingAESKeyLen + 1]byte
	copy(src[:], encodingAESKey)
	src[EncodingAESKeyLen] = '='
	key := make([]byte, 32)
	n, err := base64.StdEncoding.Decode(key, src[:])
	if err != nil || n != 32 {
		return nil, errorf(ErrBadKey, "EncodingAESKey does not decode to 32 bytes")
	}
	return key, nil
}
