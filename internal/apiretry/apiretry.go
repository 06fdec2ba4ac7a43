/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package apiretry tells which API-server errors are worth another try, for
// k8s.io/client-go/util/retry.OnError.
package apiretry

import (
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Transient is an error another try may not have: no answer, or a 5xx or 429 one. A refusal
// (4xx) would be refused again.
func Transient(err error) bool {
	var status apierrors.APIStatus
	return !errors.As(err, &status) || status.Status().Code >= 500 || status.Status().Code == 429
}
