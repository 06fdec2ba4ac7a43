/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultRefreshTokenKey is the key read from RefreshTokenSecretRef when none is given.
const DefaultRefreshTokenKey = "refresh_token"

// UnauthorizedPolicy says what happens to the token Secret when an account revokes its authorization.
// +kubebuilder:validation:Enum=Retain;DeleteToken
type UnauthorizedPolicy string

const (
	// UnauthorizedRetain keeps the token Secret as it is; the token simply stops working.
	UnauthorizedRetain UnauthorizedPolicy = "Retain"
	// UnauthorizedDeleteToken removes the token from the token Secret's data.
	UnauthorizedDeleteToken UnauthorizedPolicy = "DeleteToken"
)

// WeChatAuthorizerSpec describes an official account or mini program that authorized a
// WeChatComponent, whose authorizer_access_token the operator keeps fresh.
type WeChatAuthorizerSpec struct {
	// ComponentRef names the WeChatComponent (in the same namespace) this account authorized.
	ComponentRef LocalObjectReference `json:"componentRef"`

	// AppID is the authorizer's appid (the official account's or mini program's).
	// +kubebuilder:validation:Pattern=`^wx[0-9a-f]{16}$`
	AppID string `json:"appID"`

	// TokenSecret says where the authorizer_access_token is written.
	// +optional
	TokenSecret TokenSecretTemplate `json:"tokenSecret,omitempty"`

	// Refresh tunes when the authorizer_access_token is refreshed.
	// +optional
	Refresh RefreshPolicy `json:"refresh,omitempty"`

	// RefreshTokenSecretRef imports an authorizer_refresh_token kept by another system.
	// It is read once, when the operator has no refresh token of its own for this account;
	// after that the operator keeps the refresh token in its private state Secret.
	// Without it, an account that authorized before the operator existed is found through
	// api_get_authorizer_list.
	// +optional
	RefreshTokenSecretRef *SecretKeyReference `json:"refreshTokenSecretRef,omitempty"`

	// Options are account options the operator keeps as set here, like any desired state:
	// it reads them with api_get_authorizer_option and sets with api_set_authorizer_option
	// those that differ, at once after a spec change and every 6 hours after, so a change
	// made in WeChat is put back. An option left unset is not managed. status.options has
	// what WeChat said, the condition OptionsApplied whether it worked. Official accounts only.
	// +optional
	Options *AuthorizerOptions `json:"options,omitempty"`

	// RequiredFuncInfo lists the permission sets (funcscope_category ids: 1 message
	// management, 2 user management, ...) the platform needs from this account. The
	// condition PermissionsGranted is False, naming the missing ids, while the account's
	// func_info (status.info.funcInfo) lacks any of them: the account did not grant it, or
	// another platform took it (the message management set, for one, can be held by one
	// platform only), and the account's administrator must authorize the platform again.
	// Unset: no PermissionsGranted condition.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=1
	RequiredFuncInfo []int32 `json:"requiredFuncInfo,omitempty"`

	// OnUnauthorized says what happens to the token Secret when the account revokes its
	// authorization: Retain (default) keeps it, DeleteToken removes the token from it.
	// The WeChatAuthorizer itself is always kept, so a re-authorization resumes it.
	// +optional
	OnUnauthorized UnauthorizedPolicy `json:"onUnauthorized,omitempty"`

	// Messages configures how the receiver handles this account's messages and events.
	// +optional
	Messages AuthorizerMessages `json:"messages,omitempty"`

	// Tickets lists the API tickets the operator keeps fresh for this account, obtained with
	// the account's own authorizer_access_token (cgi-bin/ticket/getticket) and written into the
	// token Secret beside the access token: "jsapi" as jsapi_ticket and jsapi_ticket_expires_at
	// (RFC 3339), "wx_card" as wx_card_ticket and wx_card_ticket_expires_at. A ticket is
	// refreshed before it expires by the same policy as the token (spec.refresh); a new access
	// token does not refresh it. Removing a type removes its keys from the Secret. Condition
	// TicketsReady says whether every listed ticket is valid.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=2
	Tickets []TicketSpec `json:"tickets,omitempty"`
}

// TicketType is a kind of API ticket (the type parameter of cgi-bin/ticket/getticket).
// +kubebuilder:validation:Enum=jsapi;wx_card
type TicketType string

const (
	// TicketJSAPI is the jsapi_ticket that signs JS-SDK configurations (wx.config).
	TicketJSAPI TicketType = "jsapi"
	// TicketWXCard is the api_ticket of WeChat card and coupon JS APIs.
	TicketWXCard TicketType = "wx_card"
)

// TicketSpec asks for one API ticket.
type TicketSpec struct {
	// Type is the ticket: "jsapi" (JS-SDK signatures) or "wx_card" (card and coupon APIs).
	Type TicketType `json:"type"`
}

// TicketStatus is what the controller observed of one API ticket. The ticket itself is only
// in the token Secret.
type TicketStatus struct {
	// Type is the ticket this entry is about.
	Type TicketType `json:"type"`

	// ExpiresAt is when the ticket in the token Secret expires.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// RefreshAt is when the ticket is next refreshed; after a failed attempt
	// (failedAttempts > 0), when it is tried again: WeChat is not called before then.
	// +optional
	RefreshAt *metav1.Time `json:"refreshAt,omitempty"`

	// LastRefreshTime is when the ticket in the token Secret was obtained.
	// +optional
	LastRefreshTime *metav1.Time `json:"lastRefreshTime,omitempty"`

	// FailedAttempts counts attempts that failed since the last success.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`

	// LastFailureReason is the condition reason of the last failed attempt.
	// +optional
	LastFailureReason string `json:"lastFailureReason,omitempty"`
}

// AuthorizationCode is an authorization code (auth_code) waiting to be exchanged with
// api_query_auth. It is single use; the controller clears it once exchanged.
type AuthorizationCode struct {
	// Code is the authorization code.
	Code string `json:"code"`

	// ExpiresAt is when the code stops being accepted by WeChat.
	ExpiresAt metav1.Time `json:"expiresAt"`

	// ReceivedAt is when the receiver recorded the code.
	// +optional
	ReceivedAt *metav1.Time `json:"receivedAt,omitempty"`

	// Source is where the code came from: "Push", WeChat's signed authorized or
	// updateauthorized push (verified), or "Redirect", the redirect landing page (anyone
	// holding a valid authorization link can open it, so not verified). A bounded list
	// never drops a Push code for a Redirect one. Unset on codes recorded before this field.
	// +optional
	// +kubebuilder:validation:Enum=Push;Redirect
	Source AuthorizationCodeSource `json:"source,omitempty"`

	// AuthorizerAppID is the account the code belongs to, when WeChat's push said so (a
	// redirect does not). The WeChatComponent controller hands such a code to the account's
	// WeChatAuthorizer (creating it with autoCreate) instead of exchanging it itself.
	// +optional
	// +kubebuilder:validation:Pattern=`^wx[0-9a-f]{16}$`
	AuthorizerAppID string `json:"authorizerAppID,omitempty"`
}

// AuthorizationCodeSource says where an authorization code came from.
type AuthorizationCodeSource string

const (
	// AuthorizationCodeFromPush: WeChat's signed authorized / updateauthorized push.
	AuthorizationCodeFromPush AuthorizationCodeSource = "Push"
	// AuthorizationCodeFromRedirect: the redirect landing page; not signed by WeChat.
	AuthorizationCodeFromRedirect AuthorizationCodeSource = "Redirect"
)

// AuthorizerInfo is what api_get_authorizer_info says about the account.
type AuthorizerInfo struct {
	// NickName is the account's display name.
	// +optional
	NickName string `json:"nickName,omitempty"`
	// HeadImg is the URL of the account's avatar.
	// +optional
	HeadImg string `json:"headImg,omitempty"`
	// ServiceType is service_type_info.id (official accounts: 0 subscription, 1 upgraded
	// subscription, 2 service account; mini programs: 0).
	// +optional
	ServiceType *int32 `json:"serviceType,omitempty"`
	// VerifyType is verify_type_info.id (-1 unverified, 0 WeChat verified, others partly verified).
	// +optional
	VerifyType *int32 `json:"verifyType,omitempty"`
	// UserName is the original id (gh_...).
	// +optional
	UserName string `json:"userName,omitempty"`
	// PrincipalName is the account's legal owner.
	// +optional
	PrincipalName string `json:"principalName,omitempty"`
	// Alias is the account's WeChat id.
	// +optional
	Alias string `json:"alias,omitempty"`
	// QRCodeURL is the URL of the account's QR code image.
	// +optional
	QRCodeURL string `json:"qrcodeURL,omitempty"`
	// Signature is the account's self-description (its 功能介绍).
	// +optional
	Signature string `json:"signature,omitempty"`
	// MiniProgram is true for a mini program (api_get_authorizer_info returned
	// MiniProgramInfo), false for an official account. A mini program's serviceType is 0,
	// like a subscription account's: this field tells them apart.
	// +optional
	MiniProgram bool `json:"miniProgram,omitempty"`
	// BusinessInfo lists which business features are open.
	// +optional
	BusinessInfo *BusinessInfo `json:"businessInfo,omitempty"`
	// FuncInfo is the list of permission set ids (funcscope_category ids) granted to the platform.
	// +optional
	// +listType=set
	FuncInfo []int32 `json:"funcInfo,omitempty"`
	// UpdatedAt is when this information was last fetched.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`
}

// BusinessInfo mirrors business_info of api_get_authorizer_info.
type BusinessInfo struct {
	// +optional
	OpenStore bool `json:"openStore,omitempty"`
	// +optional
	OpenScan bool `json:"openScan,omitempty"`
	// +optional
	OpenPay bool `json:"openPay,omitempty"`
	// +optional
	OpenCard bool `json:"openCard,omitempty"`
	// +optional
	OpenShake bool `json:"openShake,omitempty"`
}

// WeChatAuthorizerStatus is the observed state of a WeChatAuthorizer.
type WeChatAuthorizerStatus struct {
	// Conditions: Ready (a valid authorizer_access_token is in the token Secret),
	// Authorized (the account's authorization of the component is in force), TicketsReady
	// (with spec.tickets: every ticket listed is valid in the token Secret), and kstatus'
	// Reconciling (work in flight) and Stalled (a human must act). With spec.options,
	// OptionsApplied (WeChat has the options spec sets); with spec.requiredFuncInfo,
	// PermissionsGranted (the account granted those permission sets). None of these three
	// affects Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// ObservedGeneration is the spec generation the controller last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// AuthorizationCode is a pending authorization code, written by the receiver and
	// cleared by the controller once exchanged.
	// +optional
	AuthorizationCode *AuthorizationCode `json:"authorizationCode,omitempty"`

	// AuthorizedAt is when the account last authorized the component.
	// +optional
	AuthorizedAt *metav1.Time `json:"authorizedAt,omitempty"`

	// UnauthorizedAt is when the account revoked its authorization, if it did.
	// +optional
	UnauthorizedAt *metav1.Time `json:"unauthorizedAt,omitempty"`

	// Options is what the operator last saw of the options spec.options manages.
	// +optional
	Options *AuthorizerOptionsStatus `json:"options,omitempty"`

	// Info is what WeChat says about the account.
	// +optional
	Info *AuthorizerInfo `json:"info,omitempty"`

	// TokenStatus: where the token is, until when, and how its refreshes went.
	TokenStatus `json:",inline"`

	// Tickets: the API tickets of spec.tickets, one entry per type.
	// +optional
	// +listType=map
	// +listMapKey=type
	Tickets []TicketStatus `json:"tickets,omitempty"`
}

// WeChatAuthorizer is an official account or mini program that authorized a
// WeChatComponent; the operator keeps its authorizer_access_token fresh in a Secret.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wxa,categories=wechat
// +kubebuilder:printcolumn:name="AppID",type=string,JSONPath=`.spec.appID`
// +kubebuilder:printcolumn:name="Nickname",type=string,JSONPath=`.status.info.nickName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Component",type=string,priority=1,JSONPath=`.spec.componentRef.name`
// +kubebuilder:printcolumn:name="Authorized",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Authorized")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Permissions",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="PermissionsGranted")].status`
// +kubebuilder:printcolumn:name="Options",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="OptionsApplied")].status`
// +kubebuilder:printcolumn:name="Secret",type=string,priority=1,JSONPath=`.status.tokenSecretName`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WeChatAuthorizer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WeChatAuthorizerSpec   `json:"spec"`
	Status WeChatAuthorizerStatus `json:"status,omitempty"`
}

// WeChatAuthorizerList is a list of WeChatAuthorizers.
// +kubebuilder:object:root=true
type WeChatAuthorizerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WeChatAuthorizer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WeChatAuthorizer{}, &WeChatAuthorizerList{})
}
