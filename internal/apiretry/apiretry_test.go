/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package apiretry

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestTransient(t *testing.T) {
	events := schema.GroupResource{Group: "events.k8s.io", Resource: "events"}
	for err, want := range map[error]bool{
		errors.New("dial tcp 10.0.0.1:443: connection refused"):                true,
		fmt.Errorf("wrapped: %w", apierrors.NewServiceUnavailable("starting")): true,
		apierrors.NewInternalError(errors.New("etcd")):                         true,
		apierrors.NewTooManyRequests("slow down", 1):                           true,
		apierrors.NewForbidden(events, "x", errors.New("RBAC")):                false,
		apierrors.NewNotFound(events, "x"):                                     false,
		apierrors.NewAlreadyExists(events, "x"):                                false,
	} {
		if got := Transient(err); got != want {
			t.Errorf("Transient(%v) = %v, want %v", err, got, want)
		}
	}
}
