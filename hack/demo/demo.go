/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/test/harness"
	"github.com/wechat-operator/wechat-operator/test/kustomize"
)

// demo is one run: the control plane, the child processes and what has been observed.
type demo struct {
	opts *options

	lock     *os.File
	logDir   string
	env      *envtest.Environment
	children []*harness.Process
	kubectl  string
	// adminKubeconfig is the kubeconfig printed for the user (system:masters).
	adminKubeconfig string
	c               client.Client
	scheme          *runtime.Scheme

	samples *samples
	simURL  string
	// receiverBase is the receiver's public address (http://127.0.0.1:port).
	receiverBase string
	// managerMetrics is the manager's /metrics URL, where the demo sees which controllers run.
	managerMetrics string

	started  time.Time
	deadline time.Time
	obs      *observer
}

func (d *demo) run(ctx context.Context) error {
	o := d.opts
	d.logDir = filepath.Join(o.dir, "logs")

	step("preparing %s", d.rel(o.dir))
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	lock, err := lockDir(o.dir)
	if err != nil {
		return err
	}
	d.lock = lock
	if err := killLeftovers(o.dir); err != nil {
		return err
	}
	for _, sub := range []string{"etcd", "apiserver", "logs"} {
		if err := os.RemoveAll(filepath.Join(o.dir, sub)); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(d.logDir, 0o755); err != nil {
		return err
	}
	if err := d.ensureControlPlaneBinaries(ctx); err != nil {
		return err
	}
	// kustomize.Kubectl and envtest look here for kubectl.
	_ = os.Setenv("KUBEBUILDER_ASSETS", o.assets)
	if d.kubectl, err = kustomize.Kubectl(); err != nil {
		return err
	}

	if o.build {
		if err := d.buildBinaries(ctx); err != nil {
			return err
		}
	}
	d.started = time.Now()
	if o.check {
		d.deadline = d.started.Add(o.timeout)
		info("check mode: giving up at %s (--timeout %s)", d.deadline.Format(time.TimeOnly), o.timeout)
	}

	step("reading config/samples")
	if d.samples, err = readSamples(filepath.Join(o.root, "config", "samples")); err != nil {
		return err
	}
	info("WeChatComponent %s (appid %s), WeChatAuthorizer %s (appid %s)",
		d.samples.componentName, d.samples.componentAppID, d.samples.authorizerName, d.samples.authorizerAppID)
	info("the simulator is seeded with the credentials of Secret %s, so WeChat and the cluster agree", d.samples.credentialsSecret)

	if err := d.startControlPlane(ctx); err != nil {
		return err
	}
	if err := d.applyRBAC(ctx); err != nil {
		return err
	}
	if err := d.startProcesses(ctx); err != nil {
		return err
	}
	if err := d.applySamples(ctx); err != nil {
		return err
	}
	if err := d.pushFirstTicket(ctx); err != nil {
		return err
	}
	if err := d.startDiscovery(ctx); err != nil {
		return err
	}
	d.obs = newObserver(d)
	return d.watch(ctx)
}

// poll calls f every half second until it returns true, an error, timeout passes or ctx ends.
func (d *demo) poll(ctx context.Context, timeout time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if err != nil || ok {
			return err
		}
		if err := d.childrenAlive(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// childrenAlive fails if any child process has exited.
func (d *demo) childrenAlive() error {
	for _, c := range d.children {
		if c.Exited() {
			return fmt.Errorf("%w: %s (%w); last lines of %s:\n%s", errExited, c.Name, c.Err(), d.rel(c.LogPath), c.Tail(30))
		}
	}
	return nil
}

// shutdown stops the children (newest first) and the control plane, and makes sure nothing
// the demo started is still running.
func (d *demo) shutdown() {
	if d.lock == nil {
		return
	}
	if len(d.children) > 0 || d.env != nil {
		step("stopping")
	}
	for i := len(d.children) - 1; i >= 0; i-- {
		c := d.children[i]
		c.Stop(15 * time.Second)
		info("%-16s stopped (pid %d)", c.Name, c.PID())
	}
	if d.env != nil {
		if err := d.env.Stop(); err != nil {
			info("stopping the control plane: %v", err)
		} else {
			info("%-16s stopped", "kube-apiserver")
			info("%-16s stopped", "etcd")
		}
	}
	if err := killLeftovers(d.opts.dir); err != nil {
		info("WARNING: %v", err)
	} else if d.env != nil || len(d.children) > 0 {
		info("nothing the demo started is running any more; logs stay in %s", d.rel(d.logDir))
	}
	_ = os.RemoveAll(filepath.Join(d.opts.dir, "etcd"))
	_ = os.RemoveAll(filepath.Join(d.opts.dir, "apiserver"))
	_ = d.lock.Close()
	d.lock = nil
}

// printDiagnostics prints what helps to see why a check failed: the custom resources'
// status and the end of every log.
func (d *demo) printDiagnostics() {
	w := os.Stderr
	if d.c != nil && d.samples != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var comp wechatv1alpha1.WeChatComponent
		if err := d.c.Get(ctx, client.ObjectKey{Namespace: d.opts.namespace, Name: d.samples.componentName}, &comp); err == nil {
			printStatus(w, "WeChatComponent "+comp.Name, comp.Status.Conditions, comp.Status.FailedAttempts, comp.Status.LastFailureReason)
		}
		var auth wechatv1alpha1.WeChatAuthorizer
		if err := d.c.Get(ctx, client.ObjectKey{Namespace: d.opts.namespace, Name: d.samples.authorizerName}, &auth); err == nil {
			printStatus(w, "WeChatAuthorizer "+auth.Name, auth.Status.Conditions, auth.Status.FailedAttempts, auth.Status.LastFailureReason)
		} else if !apierrors.IsNotFound(err) {
			fmt.Fprintf(w, "WeChatAuthorizer %s: %v\n", d.samples.authorizerName, err)
		}
	}
	// The operator's own logs say most; the control plane's rarely matter.
	for _, l := range []struct {
		name  string
		lines int
	}{{"manager", 60}, {"webhook-receiver", 30}, {"wechat-sim", 30}, {"kube-apiserver", 10}, {"etcd", 5}} {
		p := filepath.Join(d.logDir, l.name+".log")
		if _, err := os.Stat(p); err == nil {
			fmt.Fprintf(w, "\n----- last lines of %s -----\n%s\n", d.rel(p), harness.Tail(p, l.lines))
		}
	}
}

func printStatus(w io.Writer, what string, conds []metav1.Condition, failed int32, reason string) {
	fmt.Fprintf(w, "\n%s: failedAttempts=%d lastFailureReason=%q\n", what, failed, reason)
	for _, c := range conds {
		fmt.Fprintf(w, "  %s=%s reason=%s message=%q\n", c.Type, c.Status, c.Reason, c.Message)
	}
}

// simPost posts a JSON body to the simulator and returns the status and body.
func (d *demo) simPost(ctx context.Context, path string, body any) (int, []byte, error) {
	return httpJSON(ctx, "POST", d.simURL+path, body)
}

// simGet gets a simulator URL.
func (d *demo) simGet(ctx context.Context, path string) (int, []byte, error) {
	return httpJSON(ctx, "GET", d.simURL+path, nil)
}
