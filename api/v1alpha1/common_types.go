/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// TokenSecretTemplate says where an access token is written and how that Secret is labelled.
// The Secret holds only what an app needs (access_token, expires_at, appid): nothing in it can
// mint new tokens.
type TokenSecretTemplate struct {
	// Name of the Secret the access token is written to, in the resource's namespace.
	// Defaults to "<name>-component-token" for a WeChatComponent and "<name>-token" for a
	// WeChatAuthorizer. Changing it makes the operator write the new Secret; the old one is
	// left to its owner reference.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name,omitempty"`

	// Labels added to the token Secret, for example to let a reloader find it.
	// The operator always adds app.kubernetes.io/managed-by=wechat-operator.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations added to the token Secret. The operator always sets
	// platform.wechat-operator.dev/expires-at.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// RefreshPolicy tunes when a token is refreshed. Left empty, a token is refreshed
// max(10m, 10% of its lifetime) before it expires, minus a random jitter of up to 5% of
// its lifetime, so replicas and restarts never line up on the same second.
type RefreshPolicy struct {
	// Before is how long before expiry to refresh: a duration such as "15m" or a percentage
	// of the token's lifetime such as "20%". It is never less than the built-in floor
	// (max(10m, 10% of the lifetime)), because WeChat keeps the old token valid for only
	// about 5 minutes after issuing a new one.
	// +optional
	// +kubebuilder:validation:Pattern=`^(([0-9]+(\.[0-9]+)?(s|m|h))+|[0-9]{1,2}%)$`
	Before string `json:"before,omitempty"`

	// Jitter is the largest random amount subtracted from the refresh time: a duration such
	// as "2m" or a percentage of the lifetime such as "5%". Defaults to "5%".
	// +optional
	// +kubebuilder:validation:Pattern=`^(([0-9]+(\.[0-9]+)?(s|m|h))+|[0-9]{1,2}%)$`
	Jitter string `json:"jitter,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// SecretKeyReference names one key of a Secret in the same namespace.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the Secret's data. Defaults to "refresh_token".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// TokenStatus is the part of a WeChatComponent's and a WeChatAuthorizer's status that says
// where the access token is and when it is refreshed. Both controllers write it the same way.
type TokenStatus struct {
	// TokenSecretName is the Secret the current access token is in.
	// +optional
	TokenSecretName string `json:"tokenSecretName,omitempty"`

	// ExpiresAt is when the current access token expires.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// RefreshAt is when the controller will next refresh the token; after a failed refresh
	// (failedAttempts > 0), when it tries again: WeChat is not called before then.
	// +optional
	RefreshAt *metav1.Time `json:"refreshAt,omitempty"`

	// LastRefreshTime is when the current token was obtained.
	// +optional
	LastRefreshTime *metav1.Time `json:"lastRefreshTime,omitempty"`

	// FailedAttempts counts refresh attempts that failed since the last success.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`

	// LastFailureReason is the condition reason of the last failed attempt.
	// +optional
	LastFailureReason string `json:"lastFailureReason,omitempty"`
}
