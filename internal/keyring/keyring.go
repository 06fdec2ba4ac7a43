/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package keyring names the entries of the receiver keyring Secret, which the manager
// writes and the receiver reads: one Token and one EncodingAESKey per WeChatComponent,
// under "<namespace>.<name>.token" and "<namespace>.<name>.encodingAESKey". A resource name
// may contain dots but a namespace (a DNS label) cannot, so a key is split at its first dot
// after the fixed suffix is removed.
package keyring

import "strings"

const (
	// DefaultSecretName is the keyring Secret's name in the operator's namespace.
	DefaultSecretName = "wechat-receiver-keyring"

	tokenSuffix  = ".token"
	aesKeySuffix = ".encodingAESKey"
)

// TokenKey is the data key of a component's message-verification Token.
func TokenKey(namespace, name string) string { return namespace + "." + name + tokenSuffix }

// AESKeyKey is the data key of a component's EncodingAESKey.
func AESKeyKey(namespace, name string) string { return namespace + "." + name + aesKeySuffix }

// ParseKey splits a data key into the component's namespace and name.
func ParseKey(key string) (namespace, name string, ok bool) {
	rest, found := strings.CutSuffix(key, tokenSuffix)
	if !found {
		rest, found = strings.CutSuffix(key, aesKeySuffix)
	}
	if !found {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ".")
	return namespace, name, ok && namespace != "" && name != ""
}
