/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package controllers holds the WeChatComponent and WeChatAuthorizer reconcilers, which keep
// component_access_token and authorizer_access_token fresh in Kubernetes Secrets.
//
// The RBAC markers below are the manager's whole permission set; `make manifests` turns them
// into config/rbac/role.yaml. Secrets need list/watch because the manager caches the Secrets
// it manages (label-selected; RBAC cannot grant by label, see docs/operations.md "Threat
// model"), get for the user's Secrets that spec names and that opt in (usable-by), and
// create/update (never patch, never delete) for its own: owner references let the garbage
// collector delete them. It creates WeChatAuthorizers only for components with autoCreate on,
// and patches a component's annotations to ask for a component token refresh.
//
// +kubebuilder:rbac:groups=platform.wechat-operator.dev,resources=wechatcomponents,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=platform.wechat-operator.dev,resources=wechatauthorizers,verbs=get;list;watch;update;patch;create
// +kubebuilder:rbac:groups=platform.wechat-operator.dev,resources=wechatcomponents/status;wechatauthorizers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=platform.wechat-operator.dev,resources=wechatcomponents/finalizers;wechatauthorizers/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
package controllers
