/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

func TestDecideDiscovery(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	cases := map[string]struct {
		pass string
		st   *wechatv1alpha1.DiscoveryStatus
		want discoveryPlan
	}{
		"no pass asked for": {want: discoveryPlan{action: discoveryIdle}},
		"no pass asked for, an old one recorded": {
			st: &wechatv1alpha1.DiscoveryStatus{Pass: "a", NextOffset: 500}, want: discoveryPlan{action: discoveryIdle}},
		"a first pass starts at offset 0": {pass: "a", want: discoveryPlan{action: discoveryRead, fresh: true}},
		"a completed pass is not read again": {pass: "a",
			st: &wechatv1alpha1.DiscoveryStatus{Pass: "a", CompletedAt: at(-time.Hour)}, want: discoveryPlan{action: discoveryIdle}},
		"a new value starts another pass": {pass: "b",
			st: &wechatv1alpha1.DiscoveryStatus{Pass: "a", CompletedAt: at(-time.Hour)}, want: discoveryPlan{action: discoveryRead, fresh: true}},
		"a new value starts at once, even while the old pass backs off": {pass: "b",
			st: &wechatv1alpha1.DiscoveryStatus{Pass: "a", RetryAt: at(time.Minute)}, want: discoveryPlan{action: discoveryRead, fresh: true}},
		"a running pass resumes at its offset": {pass: "a",
			st: &wechatv1alpha1.DiscoveryStatus{Pass: "a", NextOffset: 1000}, want: discoveryPlan{action: discoveryRead, offset: 1000}},
		"a failed read waits for its retry time": {pass: "a",
			st:   &wechatv1alpha1.DiscoveryStatus{Pass: "a", NextOffset: 500, RetryAt: at(40 * time.Second)},
			want: discoveryPlan{action: discoveryWait, requeue: 40 * time.Second}},
		"a failed read is retried at its retry time": {pass: "a",
			st:   &wechatv1alpha1.DiscoveryStatus{Pass: "a", NextOffset: 500, RetryAt: at(0)},
			want: discoveryPlan{action: discoveryRead, offset: 500}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := decideDiscovery(tc.pass, tc.st, now); got != tc.want {
				t.Fatalf("decideDiscovery = %+v, want %+v", got, tc.want)
			}
		})
	}
}
