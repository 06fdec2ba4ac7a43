/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
)

// Plain Go tests of the options and permissions decisions: no API server, no WeChat.

// optionsAuthorizer manages customer_service (1) and location_report (2); its options were
// checked an hour ago, at generation 3, and are next due in 5 hours.
func optionsAuthorizer() *wechatv1alpha1.WeChatAuthorizer {
	return &wechatv1alpha1.WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "shop", Generation: 3},
		Spec: wechatv1alpha1.WeChatAuthorizerSpec{
			ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: "wx1111111111111111",
			Options: &wechatv1alpha1.AuthorizerOptions{CustomerService: ptr.To[int32](1), LocationReport: ptr.To[int32](2)},
		},
		Status: wechatv1alpha1.WeChatAuthorizerStatus{
			AuthorizedAt: mtime(-48 * time.Hour),
			Options: &wechatv1alpha1.AuthorizerOptionsStatus{
				CheckedAt: mtime(-time.Hour), NextCheckAt: mtime(5 * time.Hour), ObservedGeneration: 3,
			},
		},
	}
}

func TestDecideOptions(t *testing.T) {
	cases := map[string]struct {
		tweak  func(*wechatv1alpha1.WeChatAuthorizer)
		check  bool
		wait   time.Duration
		wanted []string
	}{
		"checked an hour ago: due at nextCheckAt": {
			tweak: func(*wechatv1alpha1.WeChatAuthorizer) {}, wait: 5 * time.Hour, wanted: []string{"location_report", "customer_service"},
		},
		"never checked": {
			tweak: func(a *wechatv1alpha1.WeChatAuthorizer) { a.Status.Options = nil }, check: true,
		},
		"nextCheckAt has come": {
			tweak: func(a *wechatv1alpha1.WeChatAuthorizer) { a.Status.Options.NextCheckAt = mtime(0) }, check: true,
		},
		"a spec change is acted on at once": {
			tweak: func(a *wechatv1alpha1.WeChatAuthorizer) { a.Generation = 4 }, check: true,
		},
		"a new authorization is acted on at once": {
			tweak: func(a *wechatv1alpha1.WeChatAuthorizer) { a.Status.AuthorizedAt = mtime(-time.Minute) }, check: true,
		},
		"an authorization in the same second as the check is not new": {
			tweak: func(a *wechatv1alpha1.WeChatAuthorizer) { a.Status.AuthorizedAt = mtime(-time.Hour) }, wait: 5 * time.Hour,
		},
		"a failed check waits for its backoff, even with failures counted": {
			tweak: func(a *wechatv1alpha1.WeChatAuthorizer) {
				a.Status.Options.FailedAttempts, a.Status.Options.NextCheckAt = 7, mtime(40*time.Minute)
			}, wait: 40 * time.Minute,
		},
		"no options in spec: nothing is managed": {
			tweak: func(a *wechatv1alpha1.WeChatAuthorizer) { a.Spec.Options = nil; a.Status.Options = nil }, wanted: []string{},
		},
		"options all unset: nothing is managed, never set": {
			tweak: func(a *wechatv1alpha1.WeChatAuthorizer) {
				a.Spec.Options = &wechatv1alpha1.AuthorizerOptions{}
				a.Status.Options = nil
			}, wanted: []string{},
		},
		"an option set to 0 is managed": {
			tweak: func(a *wechatv1alpha1.WeChatAuthorizer) {
				a.Spec.Options = &wechatv1alpha1.AuthorizerOptions{VoiceRecognize: ptr.To[int32](0)}
			}, wait: 5 * time.Hour, wanted: []string{"voice_recognize"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := optionsAuthorizer()
			tc.tweak(a)
			plan := decideOptions(a, decideNow)
			if plan.check != tc.check || plan.wait != tc.wait {
				t.Fatalf("check=%v wait=%v, want check=%v wait=%v", plan.check, plan.wait, tc.check, tc.wait)
			}
			if tc.wanted != nil {
				names := []string{}
				for _, o := range plan.wanted {
					names = append(names, o.name)
				}
				if !slices.Equal(names, tc.wanted) {
					t.Fatalf("wanted = %v, want %v", names, tc.wanted)
				}
				if len(names) == 0 && plan.check {
					t.Fatal("a check with nothing to manage")
				}
			}
		})
	}
}

func TestOptionsRetryIsBoundedAndCapped(t *testing.T) {
	for _, b := range []refresh.Backoff{refresh.APIFailure, refresh.ConfigurationError} {
		f := &failure{reason: "r", backoff: b}
		prev := time.Duration(0)
		for n := int32(1); n <= 40; n++ {
			lo, hi := optionsRetry(f, n, 0.999999, 0), optionsRetry(f, n, 0, 0)
			if lo < time.Second || hi > optionsRetryCap || lo > hi {
				t.Fatalf("%v after %d failures: [%v, %v], outside [1s, %v]", b, n, lo, hi, optionsRetryCap)
			}
			if hi < prev {
				t.Fatalf("%v: the backoff shrank after %d failures", b, n)
			}
			prev = hi
		}
		if prev != optionsRetryCap {
			t.Fatalf("%v: a persistent error ends at %v, want the cap %v", b, prev, optionsRetryCap)
		}
		if first := optionsRetry(f, 1, 0, 0); first != b.Base {
			t.Fatalf("the first retry is %v, want the failure's own base %v", first, b.Base)
		}
	}
}

func TestDecidePermissions(t *testing.T) {
	info := func(ids ...int32) *wechatv1alpha1.AuthorizerInfo {
		return &wechatv1alpha1.AuthorizerInfo{FuncInfo: ids, UpdatedAt: mtime(-time.Hour)}
	}
	cases := map[string]struct {
		required []int32
		info     *wechatv1alpha1.AuthorizerInfo
		status   metav1.ConditionStatus // "": no condition
		reason   string
		contains []string
		absent   []string
	}{
		"no requirement: no condition":     {info: info(1, 2)},
		"not read yet: Unknown":            {required: []int32{1}, status: metav1.ConditionUnknown, reason: wechatv1alpha1.ReasonPermissionsUnknown},
		"info without a time: Unknown":     {required: []int32{1}, info: &wechatv1alpha1.AuthorizerInfo{FuncInfo: []int32{1}}, status: metav1.ConditionUnknown},
		"all granted":                      {required: []int32{15, 1}, info: info(1, 2, 15), status: metav1.ConditionTrue, reason: wechatv1alpha1.ReasonPermissionsGranted, contains: []string{"1 (message management), 15 (custom menu)"}},
		"message management taken away":    {required: []int32{1, 15}, info: info(2, 15), status: metav1.ConditionFalse, reason: wechatv1alpha1.ReasonPermissionsMissing, contains: []string{"sets 1 (message management) that", "must authorize the platform again", "kubectl wechat auth-link platform -n ns"}, absent: []string{"15"}},
		"several missing, sorted, once":    {required: []int32{7, 1, 7}, info: info(), status: metav1.ConditionFalse, contains: []string{"sets 1 (message management), 7 (mass messages and notifications) that"}},
		"an id without a name is a number": {required: []int32{99}, info: info(1), status: metav1.ConditionFalse, contains: []string{"sets 99 that"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := optionsAuthorizer()
			a.Spec.RequiredFuncInfo, a.Status.Info = tc.required, tc.info
			c := decidePermissions(a)
			if tc.status == "" {
				if c != nil {
					t.Fatalf("condition %+v, want none", c)
				}
				return
			}
			if c == nil || c.Status != tc.status || (tc.reason != "" && c.Reason != tc.reason) {
				t.Fatalf("condition %+v, want %s %s", c, tc.status, tc.reason)
			}
			for _, s := range tc.contains {
				if !strings.Contains(c.Message, s) {
					t.Errorf("message %q lacks %q", c.Message, s)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(c.Message, s) {
					t.Errorf("message %q names %q", c.Message, s)
				}
			}
		})
	}
}

func TestMiniProgramPermissionIDsAreNotNamed(t *testing.T) {
	a := optionsAuthorizer()
	a.Spec.RequiredFuncInfo = []int32{1}
	a.Status.Info = &wechatv1alpha1.AuthorizerInfo{MiniProgram: true, FuncInfo: []int32{17}, UpdatedAt: mtime(0)}
	if c := decidePermissions(a); strings.Contains(c.Message, "1 (message management)") {
		t.Fatalf("a mini program's id 1 named as an official account's: %q", c.Message)
	}
}
