/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	"maps"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AutoCreatedAuthorizerName is the name of the WeChatAuthorizer created for an account that
// authorized a component whose spec.authorizers.autoCreate is on.
func AutoCreatedAuthorizerName(component, authorizerAppID string) string {
	return component + "-" + authorizerAppID
}

// isAutoCreatedName reports name == AutoCreatedAuthorizerName(component, appID), without
// building it (every message's lookup asks).
func isAutoCreatedName(name, component, appID string) bool {
	return len(name) == len(component)+1+len(appID) && strings.HasPrefix(name, component) &&
		name[len(component)] == '-' && strings.HasSuffix(name, appID)
}

// StateSecretName is the name of the operator-private Secret that keeps a WeChatAuthorizer's
// refresh token (key SecretKeyRefreshToken) and last access token.
func StateSecretName(authorizer string) string { return authorizer + "-state" }

// PickAuthorizer returns the WeChatAuthorizer of component for the account appID among
// items, or nil. Should there be several, every caller picks the same one: the one named as
// autoCreate names it, else the oldest, else the first by name.
func PickAuthorizer(items []WeChatAuthorizer, component, appID string) *WeChatAuthorizer {
	var found *WeChatAuthorizer
	for i := range items {
		found = preferAuthorizer(found, &items[i], component, appID)
	}
	return found
}

// PickAuthorizerOf is PickAuthorizer over pointers (an informer's own objects).
func PickAuthorizerOf(items []*WeChatAuthorizer, component, appID string) *WeChatAuthorizer {
	var found *WeChatAuthorizer
	for _, a := range items {
		found = preferAuthorizer(found, a, component, appID)
	}
	return found
}

// preferAuthorizer is the one of found and a that PickAuthorizer chooses.
func preferAuthorizer(found, a *WeChatAuthorizer, component, appID string) *WeChatAuthorizer {
	if a.Spec.ComponentRef.Name != component || a.Spec.AppID != appID {
		return found
	}
	switch {
	case found == nil, isAutoCreatedName(a.Name, component, appID):
		return a
	case isAutoCreatedName(found.Name, component, appID):
		return found
	case a.CreationTimestamp.Before(&found.CreationTimestamp),
		a.CreationTimestamp.Equal(&found.CreationTimestamp) && a.Name < found.Name:
		return a
	}
	return found
}

// NewAutoCreatedAuthorizer is the WeChatAuthorizer that autoCreate makes for an account that
// authorized component, filled from spec.authorizers.template.
func NewAutoCreatedAuthorizer(component *WeChatComponent, appID string) *WeChatAuthorizer {
	tmpl := component.Spec.Authorizers.Template
	a := &WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{
			Name:        AutoCreatedAuthorizerName(component.Name, appID),
			Namespace:   component.Namespace,
			Labels:      maps.Clone(tmpl.Labels),
			Annotations: maps.Clone(tmpl.Annotations),
		},
		Spec: WeChatAuthorizerSpec{
			ComponentRef: LocalObjectReference{Name: component.Name},
			AppID:        appID,
			TokenSecret: TokenSecretTemplate{
				Labels: maps.Clone(tmpl.TokenSecret.Labels), Annotations: maps.Clone(tmpl.TokenSecret.Annotations),
			},
		},
	}
	if a.Labels == nil {
		a.Labels = map[string]string{}
	}
	a.Labels[LabelComponent] = component.Name
	a.Labels[LabelManagedBy] = ManagedByValue
	return a
}

// StatusConditions lets code common to both kinds (the manager's status writer) reach the
// conditions.
func (c *WeChatComponent) StatusConditions() *[]metav1.Condition { return &c.Status.Conditions }

// StatusConditions lets code common to both kinds (the manager's status writer) reach the
// conditions.
func (a *WeChatAuthorizer) StatusConditions() *[]metav1.Condition { return &a.Status.Conditions }
