/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/test/kustomize"
)

// ensureControlPlaneBinaries builds etcd and kube-apiserver with hack/setup-envtest.sh if
// they are not in the assets directory yet (`make demo` on a fresh machine).
func (d *demo) ensureControlPlaneBinaries(ctx context.Context) error {
	o := d.opts
	missing := false
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(o.assets, bin)); err != nil {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	version, ok := strings.CutPrefix(o.assets, filepath.Join(o.root, "bin", "k8s")+string(filepath.Separator))
	if !ok || strings.Contains(version, string(filepath.Separator)) {
		return fmt.Errorf("etcd or kube-apiserver is missing from %s: build them with `make envtest`", o.assets)
	}
	step("building the local control plane (etcd, kube-apiserver %s) from Go modules into %s: about 7 minutes on 2 cores, once", version, d.rel(o.assets))
	cmd := exec.CommandContext(ctx, filepath.Join(o.root, "hack", "setup-envtest.sh"))
	cmd.Dir = o.root
	cmd.Env = append(os.Environ(), "K8S_VERSION="+version)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout // progress on stderr; on stdout the path, or go's errors
	return runWithHeartbeat(cmd, "building")
}

// buildBinaries builds the three programs the demo runs.
func (d *demo) buildBinaries(ctx context.Context) error {
	step("building manager, webhook-receiver and wechat-sim into bin/ (go caches them; the first build takes a few minutes)")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(d.opts.root, "bin")+string(filepath.Separator),
		"./cmd/manager", "./cmd/webhook-receiver", "./cmd/wechat-sim")
	cmd.Dir = d.opts.root
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return runWithHeartbeat(cmd, "building")
}

// runWithHeartbeat runs cmd, saying every 15 seconds that it is still at work.
func runWithHeartbeat(cmd *exec.Cmd, doing string) error {
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
			}
			info("done in %s", time.Since(start).Round(100*time.Millisecond))
			return nil
		case <-heartbeat.C:
			info("still %s (%s)...", doing, time.Since(start).Round(time.Second))
		}
	}
}

// samples is what the demo needs to know about config/samples.
type samples struct {
	componentName, componentAppID     string
	credentialsSecret                 string
	appSecret, token, encodingAESKey  string
	authorizerName, authorizerAppID   string
	componentSecret, authorizerSecret string
}

func readSamples(dir string) (*samples, error) {
	objs, err := kustomize.Render(dir)
	if err != nil {
		return nil, err
	}
	comps := kustomize.OfKind(objs, "WeChatComponent")
	if len(comps) == 0 {
		return nil, fmt.Errorf("%s has no WeChatComponent", dir)
	}
	var comp wechatv1alpha1.WeChatComponent
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(comps[0].Object, &comp); err != nil {
		return nil, fmt.Errorf("%s: WeChatComponent: %w", dir, err)
	}
	s := &samples{
		componentName:     comp.Name,
		componentAppID:    comp.Spec.AppID,
		credentialsSecret: comp.Spec.CredentialsSecretRef.Name,
		componentSecret:   comp.Spec.TokenSecret.Name,
	}
	if s.componentSecret == "" {
		s.componentSecret = comp.Name + "-component-token"
	}
	u := kustomize.Find(objs, "Secret", s.credentialsSecret)
	if u == nil {
		return nil, fmt.Errorf("%s has no Secret %s (the component's credentialsSecretRef)", dir, s.credentialsSecret)
	}
	var secret corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &secret); err != nil {
		return nil, fmt.Errorf("%s: Secret %s: %w", dir, s.credentialsSecret, err)
	}
	value := func(key, def string) string {
		if key == "" {
			key = def
		}
		if v, ok := secret.StringData[key]; ok {
			return v
		}
		return string(secret.Data[key])
	}
	ref := comp.Spec.CredentialsSecretRef
	s.appSecret = value(ref.AppSecretKey, "appSecret")
	s.token = value(ref.TokenKey, "token")
	s.encodingAESKey = value(ref.EncodingAESKeyKey, "encodingAESKey")
	if s.appSecret == "" || s.token == "" || s.encodingAESKey == "" {
		return nil, fmt.Errorf("%s: Secret %s lacks appSecret, token or encodingAESKey", dir, s.credentialsSecret)
	}
	for _, a := range kustomize.OfKind(objs, "WeChatAuthorizer") {
		var auth wechatv1alpha1.WeChatAuthorizer
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(a.Object, &auth); err != nil {
			return nil, fmt.Errorf("%s: WeChatAuthorizer: %w", dir, err)
		}
		if auth.Spec.ComponentRef.Name != comp.Name {
			continue
		}
		s.authorizerName, s.authorizerAppID = auth.Name, auth.Spec.AppID
		s.authorizerSecret = auth.Spec.TokenSecret.Name
		if s.authorizerSecret == "" {
			s.authorizerSecret = auth.Name + "-token"
		}
		break
	}
	if s.authorizerName == "" {
		return nil, fmt.Errorf("%s has no WeChatAuthorizer of component %s", dir, comp.Name)
	}
	return s, nil
}
