/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// The account the simulator seeds as authorized before the operator existed: the demo finds
// it with spec.authorizers.discover, as a platform moving from an SDK would.
const (
	discoveredAppID    = "wx5e6f7a8b9c0d1e2f"
	discoveredNickName = "Demo Tea"
	discoveryPass      = "demo"
)

// startDiscovery sets spec.authorizers.discover on the sample component with kubectl, as a
// user moving a platform over would.
func (d *demo) startDiscovery(ctx context.Context) error {
	patch := fmt.Sprintf(`{"spec":{"authorizers":{"discover":%q}}}`, discoveryPass)
	step("migrating: %s (%s) authorized the platform before the operator existed; one discovery pass finds it", discoveredAppID, discoveredNickName)
	info("$ kubectl patch wxc %s --type merge -p '%s'", d.samples.componentName, patch)
	cmd := exec.CommandContext(ctx, d.kubectl, "--kubeconfig", d.adminKubeconfig, "patch", "-n", d.opts.namespace,
		"wechatcomponent", d.samples.componentName, "--type", "merge", "-p", patch)
	out, err := cmd.CombinedOutput()
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		info("%s", strings.TrimRight(line, "\n"))
	}
	if err != nil {
		return fmt.Errorf("kubectl patch (spec.authorizers.discover): %w", err)
	}
	return nil
}

// discoveryTrack is what the demo saw of the discovery pass.
type discoveryTrack struct {
	completed       bool // Discovered=True for the demo's pass
	authorizerReady bool // the WeChatAuthorizer it created has a token
}

func (o *observer) observeDiscovery(ctx context.Context, comp *wechatv1alpha1.WeChatComponent) error {
	d := o.d
	if s := comp.Status.Discovery; !o.discovery.completed && s != nil && s.Pass == discoveryPass && s.CompletedAt != nil &&
		meta.IsStatusConditionTrue(comp.Status.Conditions, wechatv1alpha1.ConditionDiscovered) {
		o.discovery.completed = true
		o.event("discovery: pass %q read api_get_authorizer_list once: %d listed, %d created, %d already there", s.Pass, s.Found, s.Created, s.Existing)
	}
	if o.discovery.authorizerReady {
		return nil
	}
	var a wechatv1alpha1.WeChatAuthorizer
	key := client.ObjectKey{Namespace: d.opts.namespace, Name: wechatv1alpha1.AutoCreatedAuthorizerName(d.samples.componentName, discoveredAppID)}
	if err := d.c.Get(ctx, key, &a); err != nil {
		return client.IgnoreNotFound(err)
	}
	if meta.IsStatusConditionTrue(a.Status.Conditions, wechatv1alpha1.ConditionReady) {
		o.discovery.authorizerReady = true
		o.event("discovery: %s (%s) is Ready with the refresh token the list gave: no re-authorization", a.Name, discoveredNickName)
	}
	return nil
}

func (t discoveryTrack) missing() []string {
	var m []string
	if !t.completed {
		m = append(m, fmt.Sprintf("WeChatComponent Discovered=True for pass %q", discoveryPass))
	}
	if !t.authorizerReady {
		m = append(m, "the discovered WeChatAuthorizer ("+discoveredAppID+") Ready=True")
	}
	return m
}
