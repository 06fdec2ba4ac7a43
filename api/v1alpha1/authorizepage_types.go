/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The hosted authorization start page (docs/authorization.md): WeChat opens its PC
// authorization page only for a browser that comes from a page on the platform's
// 授权发起页域名, so the receiver can serve that page at
// https://<host>/wechat/<namespace>/<component>/authorize. The receiver holds no token: it
// records a request in status.authorizeLinkRequests, the manager answers it with a fresh
// pre_auth_code (sealed, so that readers of the resource cannot use it), and the receiver
// shows a button to the link and removes the request.

// MaxAuthorizeLinkRequests bounds status.authorizeLinkRequests (the CRD's MaxItems): the
// requests in flight for one component at a time.
const MaxAuthorizeLinkRequests = 8

// AuthorizePage configures the authorization start page the receiver serves for this
// platform. The page is off unless enabled.
type AuthorizePage struct {
	// Enabled turns the page on: GET https://<receiver host>/wechat/<namespace>/<name>/authorize
	// then shows a button to a fresh, single-use authorization link (PC and mobile). Register
	// the receiver's host as the platform's 授权发起页域名 (authorization start page domain).
	// Each visit costs one api_create_preauthcode call; visits are rate-limited per client
	// and per component. Off when unset: the page answers 404.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// AuthType is the accounts the link offers: 1 official accounts, 2 mini programs, 3 both.
	// When unset, a visit may choose with ?auth_type=1|2|3, else 3; when set, a visit asking
	// for another value is refused (400).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3
	AuthType int32 `json:"authType,omitempty"`

	// BizAppID restricts the link to one account (its appid). When unset, a visit may name one
	// with ?biz_appid=; when set, a visit naming another is refused (400).
	// +optional
	// +kubebuilder:validation:Pattern=`^wx[0-9a-f]{16}$`
	BizAppID string `json:"bizAppID,omitempty"`

	// RedirectURI is where WeChat sends the administrator's browser after the authorization;
	// its host must be the 授权发起页域名. When unset, the receiver's redirect landing page on
	// the host the page was opened on: https://<host>/wechat/<namespace>/<name>/authorized
	// (http when the request came over plain HTTP without X-Forwarded-Proto: https). The
	// receiver adds the signed state its landing page checks, so a redirect URI of another
	// page must check it too (docs/authorization.md).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#@]+(/[^\s#]*)?$`
	RedirectURI string `json:"redirectURI,omitempty"`
}

// AuthorizeLinkRequest is one visit of the authorization start page waiting for a
// pre_auth_code: written by the receiver, answered by the manager, removed by the receiver
// once shown (or by the manager once expired).
type AuthorizeLinkRequest struct {
	// ID is the receiver's random name for the request.
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]{16,64}$`
	ID string `json:"id"`

	// RequestedAt is when the receiver recorded the request. The manager answers a request
	// only within a few seconds of it and removes it after a minute.
	RequestedAt metav1.Time `json:"requestedAt"`

	// AnsweredAt is when the manager answered.
	// +optional
	AnsweredAt *metav1.Time `json:"answeredAt,omitempty"`

	// SealedPreAuthCode is the pre_auth_code the manager obtained, encrypted (AES-256-GCM)
	// with a key derived from the platform's Token and EncodingAESKey and bound to this
	// component and request: readers of the resource cannot use it, the receiver can. It is
	// single use, and removed from status as soon as the page has shown it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	SealedPreAuthCode string `json:"sealedPreAuthCode,omitempty"`

	// ExpiresAt is when the pre_auth_code expires (WeChat: 10 to 30 minutes).
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// FailureReason is the condition reason when the manager could not get a pre_auth_code
	// (for example ComponentNotReady, WeChatBusy, AuthorizePageDisabled).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	FailureReason string `json:"failureReason,omitempty"`
}
