/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Messages and events of authorized accounts reach the receiver at the platform's
// 消息与事件接收URL, https://<host>/wechat/<namespace>/<component>/messages/$APPID$
// (see docs/messages.md).

// DefaultHMACKeyKey is the key read from MessageForwarding.HMACKeySecretRef when none is given.
const DefaultHMACKeyKey = "hmacKey"

// TestResponderMode switches the answers to WeChat's 全网发布 (release) automated test.
// +kubebuilder:validation:Enum=Enabled;Disabled
type TestResponderMode string

const (
	// TestResponderEnabled (the default) answers the test accounts' messages as the test expects.
	TestResponderEnabled TestResponderMode = "Enabled"
	// TestResponderDisabled handles the test accounts' messages like any other account's.
	TestResponderDisabled TestResponderMode = "Disabled"
)

// ComponentMessages configures how the receiver handles the messages and events of the
// accounts that authorized the platform.
type ComponentMessages struct {
	// TestResponder answers WeChat's 全网发布 automated test: for the test accounts (listed
	// in docs/messages.md) a text TESTCOMPONENT_MSG_TYPE_TEXT gets the reply
	// TESTCOMPONENT_MSG_TYPE_TEXT_callback, an event gets "<Event>from_callback", and a text
	// QUERY_AUTH_CODE:<code> gets an empty answer, after which the manager exchanges the
	// code and sends "<code>_from_api" as a customer-service message. "Enabled" when unset.
	// +optional
	TestResponder TestResponderMode `json:"testResponder,omitempty"`

	// Forward is where messages go for accounts whose WeChatAuthorizer names no target of
	// its own, and for accounts that have no WeChatAuthorizer.
	// +optional
	Forward *MessageForwarding `json:"forward,omitempty"`
}

// AuthorizerMessages configures how the receiver handles one account's messages and events.
type AuthorizerMessages struct {
	// Forward is where this account's messages go; it overrides the component's default.
	// +optional
	Forward *MessageForwarding `json:"forward,omitempty"`
}

// MessageForwarding names an HTTP endpoint (usually a Service in the cluster) that gets each
// decrypted message, signed with HMAC-SHA256, and may answer with a passive reply. Apps never
// need the platform's Token or EncodingAESKey.
type MessageForwarding struct {
	// URL the receiver POSTs the decrypted message XML to: an in-cluster Service,
	// http://<service>.<namespace>.svc[.cluster.local][:port]/path, for example
	// http://shop.team-a.svc:8080/wechat/messages. Other hosts are forwarded to only if the
	// receiver's --forward-allowed-hosts lists them; link-local addresses (cloud metadata
	// endpoints) never. Redirects are not followed; user information is refused.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#@]+([/?#]\S*)?$`
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != ''",message="must be an absolute http or https URL with a host, e.g. http://shop.team-a.svc:8080/wechat"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'(?i)^https?://(169\\.254\\.|0+\\.0+\\.0+\\.0+([:/?#]|$)|\\[(fe[89ab][0-9a-f]:|::\\]|::ffff:169\\.254\\.))')",message="must not name a link-local or unspecified address (cloud metadata endpoints); forward to a Service: http://<service>.<namespace>.svc:<port>/<path>"
	URL string `json:"url"`

	// HMACKeySecretRef names the Secret (in this resource's namespace) and key holding the
	// HMAC-SHA256 key the receiver signs forwarded messages with. The manager copies the key
	// into the receiver keyring, the only Secret the receiver may read; after rotating it,
	// touch an annotation of this resource so the manager copies it at once.
	HMACKeySecretRef HMACKeySecretReference `json:"hmacKeySecretRef"`

	// Timeout is how long the receiver waits for the app's answer before answering WeChat
	// "success" without a reply, for example "2s" or "1500ms". Defaults to the receiver's
	// --forward-timeout (3s); at most 4s, since WeChat gives up after 5s.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s))+$`
	Timeout string `json:"timeout,omitempty"`
}

// HMACKeySecretReference names one key of a Secret in the same namespace.
type HMACKeySecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the Secret's data. Defaults to "hmacKey".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// TestReply is a customer-service message owed to WeChat's 全网发布 test: a test account
// sent QUERY_AUTH_CODE:<code>. The receiver records it (it holds no access token); the
// manager exchanges the code with api_query_auth, sends "<code>_from_api" to ToUser with
// the resulting authorizer_access_token, and removes the entry.
type TestReply struct {
	// AuthorizerAppID is the test account's appid (the $APPID$ of the message URL).
	// +kubebuilder:validation:MaxLength=64
	AuthorizerAppID string `json:"authorizerAppID"`

	// ToUser is the openid that sent the message (its FromUserName).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	ToUser string `json:"toUser"`

	// Code is the authorization code the test sent; single use.
	// +kubebuilder:validation:MaxLength=256
	Code string `json:"code"`

	// ReceivedAt is when the receiver recorded it.
	ReceivedAt metav1.Time `json:"receivedAt"`

	// ExpiresAt is when the entry is dropped unanswered (the code's lifetime).
	ExpiresAt metav1.Time `json:"expiresAt"`
}

// TestResponderOn reports whether the component answers the 全网发布 test.
func (c *WeChatComponent) TestResponderOn() bool {
	return c.Spec.Messages.TestResponder != TestResponderDisabled
}
