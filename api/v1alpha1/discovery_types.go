/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DiscoveryStatus is one spec.authorizers.discover pass over api_get_authorizer_list. The
// pass reads one page of up to 500 accounts per reconcile and records where it is, so a
// restart resumes it instead of starting again.
type DiscoveryStatus struct {
	// Pass is the spec.authorizers.discover value this pass runs for.
	Pass string `json:"pass"`

	// StartedAt is when the pass read its first page.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`

	// CompletedAt is when the pass read its last page. Set: the pass is over; nothing is
	// listed again until spec.authorizers.discover changes.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`

	// NextOffset is the api_get_authorizer_list offset of the next page, while the pass runs.
	// +optional
	NextOffset int32 `json:"nextOffset,omitempty"`

	// Found is how many accounts the list named so far.
	// +optional
	Found int32 `json:"found,omitempty"`

	// Created is how many WeChatAuthorizers the pass created.
	// +optional
	Created int32 `json:"created,omitempty"`

	// Existing is how many listed accounts already had a WeChatAuthorizer (or whose name
	// was taken), left as they were.
	// +optional
	Existing int32 `json:"existing,omitempty"`

	// RefreshTokensMissing is how many of the created WeChatAuthorizers the list gave no
	// refresh token for: they wait with reason RefreshTokenMissing until their token is
	// imported (kubectl wechat import) or the account authorizes again.
	// +optional
	RefreshTokensMissing int32 `json:"refreshTokensMissing,omitempty"`

	// FailedAttempts counts the failed page reads in a row; the pass backs off between them.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`

	// StateSecretConflicts is how many listed accounts got no WeChatAuthorizer because a
	// Secret named <authorizer>-state was there that the operator did not write: delete or
	// rename it, then start another pass.
	// +optional
	StateSecretConflicts int32 `json:"stateSecretConflicts,omitempty"`

	// RetryAt is when the next page is read, not before: after a failed page (WeChat, or
	// creating its objects in Kubernetes) its backoff, between two pages a short pause.
	// +optional
	RetryAt *metav1.Time `json:"retryAt,omitempty"`
}
