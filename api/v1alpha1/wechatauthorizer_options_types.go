/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthorizerOptions are an official account's options as api_get_authorizer_option and
// api_set_authorizer_option know them. An option left unset is not managed: the operator
// neither reads nor sets it.
type AuthorizerOptions struct {
	// LocationReport is option location_report: whether WeChat reports users' location to
	// the platform: 0 never, 1 when a user enters a session with the account, 2 every 5
	// seconds during a session.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2
	LocationReport *int32 `json:"locationReport,omitempty"`

	// VoiceRecognize is option voice_recognize: 1 turns WeChat's speech recognition of
	// voice messages on (messages then carry a Recognition field), 0 off.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1
	VoiceRecognize *int32 `json:"voiceRecognize,omitempty"`

	// CustomerService is option customer_service: 1 turns the multi-agent customer service
	// (多客服) on, 0 off.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1
	CustomerService *int32 `json:"customerService,omitempty"`
}

// AuthorizerOptionsStatus is what the operator last saw of the options spec.options manages.
type AuthorizerOptionsStatus struct {
	// The option values as last read from WeChat, or as last set: only those spec.options
	// manages, and only once read.
	AuthorizerOptions `json:",inline"`

	// CheckedAt is when the operator last read the options (and set those that differed),
	// successfully or not.
	// +optional
	CheckedAt *metav1.Time `json:"checkedAt,omitempty"`

	// NextCheckAt is when they are read again: 6 hours after a successful check (so a change
	// made in WeChat is put back within 6 hours), after the backoff of a failed one. A spec
	// change or a new authorization has them read at once.
	// +optional
	NextCheckAt *metav1.Time `json:"nextCheckAt,omitempty"`

	// ObservedGeneration is the spec generation the last check worked from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// FailedAttempts counts the checks in a row that failed; the condition OptionsApplied
	// has the last one's reason.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`
}
