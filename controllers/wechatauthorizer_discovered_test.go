/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

func TestStateSecretOwnership(t *testing.T) {
	yes := true
	ours := map[string]string{wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue, wechatv1alpha1.LabelAuthorizer: "platform-wx1"}
	gv := wechatv1alpha1.GroupVersion.String()
	ref := func(apiVersion, kind, name string, uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &yes}}
	}
	a := &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{Name: "platform-wx1", UID: "a-uid"},
		Spec: wechatv1alpha1.WeChatAuthorizerSpec{ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}}}
	cases := map[string]struct {
		labels    map[string]string
		refs      []metav1.OwnerReference
		ours      bool // discoveredStateOurs for this authorizer (UID a-uid) of component c-uid
		adoptable bool // stateAdoptable
	}{
		"the component's, not handed over yet": {ours, ref(gv, wechatv1alpha1.KindWeChatComponent, "platform", "c-uid"), true, true},
		"this authorizer's":                    {ours, ref(gv, wechatv1alpha1.KindWeChatAuthorizer, "platform-wx1", "a-uid"), true, true},
		"an earlier authorizer of this name":   {ours, ref(gv, wechatv1alpha1.KindWeChatAuthorizer, "platform-wx1", "old"), false, true},
		"no labels":                            {nil, ref(gv, wechatv1alpha1.KindWeChatAuthorizer, "platform-wx1", "a-uid"), false, false},
		"another authorizer's label": {map[string]string{wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue, wechatv1alpha1.LabelAuthorizer: "other"},
			ref(gv, wechatv1alpha1.KindWeChatAuthorizer, "platform-wx1", "a-uid"), false, false},
		"no controller":                    {ours, nil, false, false},
		"controlled by a ConfigMap":        {ours, ref("v1", "ConfigMap", "platform-wx1", "a-uid"), false, false},
		"another component's":              {ours, ref(gv, wechatv1alpha1.KindWeChatComponent, "elsewhere", "x-uid"), false, false},
		"another group's WeChatAuthorizer": {ours, ref("example.com/v1", wechatv1alpha1.KindWeChatAuthorizer, "platform-wx1", "a-uid"), false, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "platform-wx1-state", Labels: tc.labels, OwnerReferences: tc.refs}}
			if got := discoveredStateOurs(s, a.Name, "c-uid", a.UID); got != tc.ours {
				t.Errorf("discoveredStateOurs = %v, want %v", got, tc.ours)
			}
			if got := stateAdoptable(s, a); got != tc.adoptable {
				t.Errorf("stateAdoptable = %v, want %v", got, tc.adoptable)
			}
		})
	}
}
