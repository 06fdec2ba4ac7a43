/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// A status write conflicts when the receiver wrote to the same object during the reconcile
// (a ticket, a code, a revocation). Dropping the reconcile's status then would lose what it
// learned (a failure, its count and backoff), so it is re-applied onto the latest object:
// the fields the receiver writes come from the latest, less what this reconcile consumed.

// rebaseComponentStatus returns mine re-applied onto latest. before is the status the
// reconcile started from.
func rebaseComponentStatus(before, mine, latest *wechatv1alpha1.WeChatComponentStatus) wechatv1alpha1.WeChatComponentStatus {
	merged := *mine.DeepCopy()
	merged.VerifyTicket = latest.VerifyTicket.DeepCopy()
	merged.PendingAuthorizationCodes = unconsumed(before.PendingAuthorizationCodes, mine.PendingAuthorizationCodes, latest.PendingAuthorizationCodes,
		func(c wechatv1alpha1.AuthorizationCode) string { return c.Code })
	merged.PendingTestReplies = unconsumed(before.PendingTestReplies, mine.PendingTestReplies, latest.PendingTestReplies,
		func(t wechatv1alpha1.TestReply) string { return t.Code })
	return merged
}

// rebaseAuthorizerStatus returns mine re-applied onto latest.
func rebaseAuthorizerStatus(before, mine, latest *wechatv1alpha1.WeChatAuthorizerStatus) wechatv1alpha1.WeChatAuthorizerStatus {
	merged := *mine.DeepCopy()
	merged.UnauthorizedAt = latest.UnauthorizedAt.DeepCopy()
	// A code the receiver recorded meanwhile is kept for the next reconcile; the one this
	// reconcile exchanged (or kept for a retry) is as it left it.
	if !equality.Semantic.DeepEqual(latest.AuthorizationCode, before.AuthorizationCode) {
		merged.AuthorizationCode = latest.AuthorizationCode.DeepCopy()
	}
	return merged
}

// unconsumed is latest without the entries this reconcile removed (in before, not in mine).
func unconsumed[T any](before, mine, latest []T, key func(T) string) []T {
	var consumed []string
	for _, b := range before {
		if !slices.ContainsFunc(mine, func(m T) bool { return key(m) == key(b) }) {
			consumed = append(consumed, key(b))
		}
	}
	out := make([]T, 0, len(latest))
	for _, l := range latest {
		if !slices.Contains(consumed, key(l)) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
