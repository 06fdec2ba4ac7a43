/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package keyring names the entries of the receiver keyring Secret, which the manager
// writes and the receiver reads:
//
//	<namespace>.<component>.token                 a WeChatComponent's message-verification Token
//	<namespace>.<component>.encodingAESKey        its EncodingAESKey
//	<namespace>.<component>.forwardKey            the HMAC key of its spec.messages.forward (if any)
//	<namespace>.<authorizer>.authorizerForwardKey the HMAC key of a WeChatAuthorizer's spec.messages.forward
//
// The suffix tells the kind, so a component and an authorizer of the same name never share
// an entry. A resource name may contain dots but a namespace (a DNS label) cannot, so a key
// is split at its first dot after the fixed suffix is removed.
package keyring

import "strings"

const (
	// DefaultSecretName is the keyring Secret's name in the operator's namespace.
	DefaultSecretName = "wechat-receiver-keyring"

	tokenSuffix                = ".token"
	aesKeySuffix               = ".encodingAESKey"
	forwardKeySuffix           = ".forwardKey"
	authorizerForwardKeySuffix = ".authorizerForwardKey"
)

// TokenKey is the data key of a component's message-verification Token.
func TokenKey(namespace, name string) string { return namespace + "." + name + tokenSuffix }

// AESKeyKey is the data key of a component's EncodingAESKey.
func AESKeyKey(namespace, name string) string { return namespace + "." + name + aesKeySuffix }

// ForwardKeyKey is the data key of the HMAC key a component's default message forwarding
// signs with.
func ForwardKeyKey(namespace, component string) string {
	return namespace + "." + component + forwardKeySuffix
}

// AuthorizerForwardKeyKey is the data key of the HMAC key a WeChatAuthorizer's message
// forwarding signs with.
func AuthorizerForwardKeyKey(namespace, authorizer string) string {
	return namespace + "." + authorizer + authorizerForwardKeySuffix
}

// ParseKey splits a data key of a component's entry into the component's namespace and name.
func ParseKey(key string) (namespace, name string, ok bool) {
	for _, suffix := range []string{tokenSuffix, aesKeySuffix, forwardKeySuffix} {
		if rest, found := strings.CutSuffix(key, suffix); found {
			return split(rest)
		}
	}
	return "", "", false
}

// ParseAuthorizerKey splits a data key of a WeChatAuthorizer's entry into the authorizer's
// namespace and name.
func ParseAuthorizerKey(key string) (namespace, name string, ok bool) {
	rest, found := strings.CutSuffix(key, authorizerForwardKeySuffix)
	if !found {
		return "", "", false
	}
	return split(rest)
}

func split(rest string) (namespace, name string, ok bool) {
	namespace, name, ok = strings.Cut(rest, ".")
	return namespace, name, ok && namespace != "" && name != ""
}
