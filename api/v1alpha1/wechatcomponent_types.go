/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Default key names in the credentials Secret of a WeChatComponent.
const (
	DefaultAppSecretKey      = "appSecret"
	DefaultTokenKey          = "token"
	DefaultEncodingAESKeyKey = "encodingAESKey"
)

// WeChatComponentSpec describes one WeChat Open Platform third-party platform (第三方平台).
type WeChatComponentSpec struct {
	// AppID is the third-party platform's component_appid, as shown on the platform's
	// settings page (wx followed by 16 lowercase hex digits).
	// +kubebuilder:validation:Pattern=`^wx[0-9a-f]{16}$`
	AppID string `json:"appID"`

	// CredentialsSecretRef names the Secret holding the platform's AppSecret, its
	// message-verification Token (消息校验Token) and its EncodingAESKey (消息加解密Key).
	// Only the manager reads it; the receiver gets Token and EncodingAESKey through the
	// keyring Secret, never the AppSecret.
	CredentialsSecretRef CredentialsSecretReference `json:"credentialsSecretRef"`

	// TokenSecret says where the component_access_token is written.
	// +optional
	TokenSecret TokenSecretTemplate `json:"tokenSecret,omitempty"`

	// Refresh tunes when the component_access_token is refreshed.
	// +optional
	Refresh RefreshPolicy `json:"refresh,omitempty"`

	// Authorizers says what happens when an account authorizes this platform.
	// +optional
	Authorizers AuthorizersPolicy `json:"authorizers,omitempty"`

	// Receiver tunes how the webhook receiver accepts this platform's pushes.
	// +optional
	Receiver ReceiverOptions `json:"receiver,omitempty"`

	// Quota says what the operator does when WeChat answers 45009 (daily API quota reached).
	// +optional
	Quota QuotaPolicy `json:"quota,omitempty"`

	// Messages configures the 消息与事件接收URL of the authorized accounts: the answers to
	// WeChat's 全网发布 test, and the default forwarding target.
	// +optional
	Messages ComponentMessages `json:"messages,omitempty"`

	// AuthorizePage configures the authorization start page the receiver serves at
	// /wechat/<namespace>/<name>/authorize (off unless enabled; see docs/authorization.md).
	// +optional
	AuthorizePage AuthorizePage `json:"authorizePage,omitempty"`
}

// CredentialsSecretReference names the credentials Secret and, optionally, its key names.
type CredentialsSecretReference struct {
	// Name of the Secret, in the WeChatComponent's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// AppSecretKey is the key holding the AppSecret. Defaults to "appSecret".
	// +optional
	AppSecretKey string `json:"appSecretKey,omitempty"`

	// TokenKey is the key holding the message-verification Token. Defaults to "token".
	// +optional
	TokenKey string `json:"tokenKey,omitempty"`

	// EncodingAESKeyKey is the key holding the 43-character EncodingAESKey.
	// Defaults to "encodingAESKey".
	// +optional
	EncodingAESKeyKey string `json:"encodingAESKeyKey,omitempty"`
}

// AuthorizersPolicy says how authorizations pushed by WeChat become WeChatAuthorizers.
type AuthorizersPolicy struct {
	// AutoCreate makes the manager create a WeChatAuthorizer named
	// "<component>-<authorizer appid>" when an account authorizes this platform (the
	// receiver only records the pushed code in status.pendingAuthorizationCodes; it
	// creates nothing).
	// When false, authorizations are recorded only on WeChatAuthorizers that already
	// exist, and an Event on the component tells about the others.
	// +optional
	AutoCreate bool `json:"autoCreate,omitempty"`

	// Template is applied to WeChatAuthorizers created automatically.
	// +optional
	Template AuthorizerTemplate `json:"template,omitempty"`

	// Discover, when set, makes the manager read api_get_authorizer_list once and create a
	// WeChatAuthorizer named "<component>-<authorizer appid>" (with the template) for every
	// account that authorized this platform and has none yet, keeping the listed refresh
	// token in its state Secret: a platform moving from an SDK moves its accounts with this
	// one field. Existing WeChatAuthorizers of listed accounts are left as they are.
	// The value names the pass: when status.discovery.pass equals it, the pass is done and
	// nothing more is listed. Set another value (a date, say "2026-12-02") to run another
	// pass, say after accounts authorized while autoCreate was off. Removing the field
	// deletes nothing.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	Discover string `json:"discover,omitempty"`
}

// AuthorizerTemplate is the part of a WeChatAuthorizer that AutoCreate fills in.
type AuthorizerTemplate struct {
	// Labels added to created WeChatAuthorizers (the operator adds the component label).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations added to created WeChatAuthorizers.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// TokenSecret labels and annotations for the token Secrets of created authorizers.
	// The Secret name is always derived from the authorizer name.
	// +optional
	TokenSecret TokenSecretTemplate `json:"tokenSecret,omitempty"`
}

// ReceiverOptions tunes the webhook receiver for one platform.
type ReceiverOptions struct {
	// TimestampWindow is how far a push's timestamp may differ from the receiver's clock
	// before the push is rejected as a replay. Defaults to "5m", at most "1h": the replay
	// cache remembers each push until its timestamp leaves the window, so the window bounds
	// its memory.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('1h')",message="timestampWindow must be at most 1h"
	TimestampWindow string `json:"timestampWindow,omitempty"`
}

// QuotaPolicy says how the operator handles WeChat's daily API quotas.
type QuotaPolicy struct {
	// ResetOnExhausted: when true and a WeChat call of this platform answers 45009 (daily
	// quota reached), the WeChatComponent controller calls clear_quota, at most once per
	// Beijing (UTC+8) day, and retries the call. This covers the component's own
	// api_component_token and, on their request, the calls of its WeChatAuthorizers.
	// WeChat allows about 10 resets a month per platform (48006 when they are used up).
	// Default off: the operator waits for the quotas to reset at midnight Beijing time.
	// +optional
	ResetOnExhausted bool `json:"resetOnExhausted,omitempty"`
}

// VerifyTicket is the newest component_verify_ticket WeChat pushed. It is written by the
// receiver and is useless without the AppSecret (see docs on why it lives in status).
type VerifyTicket struct {
	// Ticket is the component_verify_ticket value.
	Ticket string `json:"ticket"`

	// CreateTime is when WeChat created the ticket (the push's CreateTime).
	CreateTime metav1.Time `json:"createTime"`

	// ReceivedAt is when the receiver accepted the push.
	ReceivedAt metav1.Time `json:"receivedAt"`
}

// WeChatComponentStatus is the observed state of a WeChatComponent.
type WeChatComponentStatus struct {
	// Conditions: Ready (a valid component_access_token is in the token Secret),
	// TicketReceived (a usable component_verify_ticket is known), and kstatus' Reconciling
	// (work in flight) and Stalled (a human must act).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// ObservedGeneration is the spec generation the controller last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// VerifyTicket is the newest component_verify_ticket, written by the receiver.
	// +optional
	VerifyTicket *VerifyTicket `json:"verifyTicket,omitempty"`

	// PendingAuthorizationCodes are authorization codes waiting for the controller: codes that
	// reached the receiver's redirect page (…/authorized?auth_code=&state=) before the
	// matching push named their account, and codes pushed by WeChat for an account that has
	// no WeChatAuthorizer yet (with authorizers.autoCreate on; the controller creates it).
	// The controller exchanges each once and clears it; the account is learnt from the
	// exchange. When the list is full, Redirect codes give way before Push codes do.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	PendingAuthorizationCodes []AuthorizationCode `json:"pendingAuthorizationCodes,omitempty"`

	// PendingTestReplies are customer-service replies owed to WeChat's 全网发布 test,
	// recorded by the receiver and sent (then cleared) by the controller.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	PendingTestReplies []TestReply `json:"pendingTestReplies,omitempty"`

	// AuthorizeLinkRequests are visits of the authorization start page (spec.authorizePage)
	// waiting for a pre_auth_code: the receiver records each, the manager answers it within a
	// second with the code sealed, and the receiver removes it once shown.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	AuthorizeLinkRequests []AuthorizeLinkRequest `json:"authorizeLinkRequests,omitempty"`

	// TokenStatus: where the token is, until when, and how its refreshes went.
	TokenStatus `json:",inline"`

	// LastQuotaResetTime is when the controller last reset the platform's daily API quotas
	// with clear_quota (spec.quota.resetOnExhausted). At most one reset is made per Beijing day.
	// +optional
	LastQuotaResetTime *metav1.Time `json:"lastQuotaResetTime,omitempty"`

	// Discovery is the progress and outcome of the last spec.authorizers.discover pass.
	// +optional
	Discovery *DiscoveryStatus `json:"discovery,omitempty"`
}

// WeChatComponent is a WeChat Open Platform third-party platform whose
// component_access_token the operator keeps fresh in a Secret.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wxc,categories=wechat
// +kubebuilder:printcolumn:name="AppID",type=string,JSONPath=`.spec.appID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Ticket Age",type=date,JSONPath=`.status.verifyTicket.receivedAt`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Refresh At",type=string,priority=1,JSONPath=`.status.refreshAt`
// +kubebuilder:printcolumn:name="Secret",type=string,priority=1,JSONPath=`.status.tokenSecretName`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WeChatComponent struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WeChatComponentSpec   `json:"spec"`
	Status WeChatComponentStatus `json:"status,omitempty"`
}

// WeChatComponentList is a list of WeChatComponents.
// +kubebuilder:object:root=true
type WeChatComponentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WeChatComponent `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WeChatComponent{}, &WeChatComponentList{})
}
