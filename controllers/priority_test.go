/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"testing"
	"time"
)

func TestAuthorizerRequeuePriority(t *testing.T) {
	cases := map[string]struct {
		requeue   time.Duration
		refreshAt time.Time
		want      int
	}{
		"requeue for the refresh":           {time.Hour, decideNow.Add(time.Hour), priorityRefresh},
		"refresh due now (error, no delay)": {0, decideNow.Add(-time.Minute), priorityRefresh},
		"retry of a failed refresh":         {30 * time.Second, decideNow.Add(30 * time.Second), priorityRefresh},
		"rounded to a second before":        {time.Hour - 500*time.Millisecond, decideNow.Add(time.Hour), priorityRefresh},
		"info or a ticket due first":        {10 * time.Minute, decideNow.Add(time.Hour), priorityBulk},
		"nothing to refresh":                {time.Hour, time.Time{}, priorityBulk},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := authorizerRequeuePriority(tc.requeue, tc.refreshAt, decideNow); got != tc.want {
				t.Errorf("authorizerRequeuePriority = %d, want %d", got, tc.want)
			}
		})
	}
}
