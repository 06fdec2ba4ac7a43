/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Command demo runs the whole wechat-operator locally, without Docker or a cluster: a real
// etcd + kube-apiserver (built by hack/setup-envtest.sh), the WeChat simulator, the manager
// and the webhook receiver as local processes, the samples from config/samples, and an
// account authorizing the sample platform. It then shows tokens being issued and refreshed.
//
//	make demo          interactive; Ctrl-C stops everything
//	make demo-check    the same, non-interactive: asserts tokens were issued and refreshed, exits 0/1
//
// See README.md, "Running locally".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wechat-operator/wechat-operator/test/harness"
)

// options are the demo's flags.
type options struct {
	check         bool
	timeout       time.Duration
	root          string
	dir           string
	assets        string
	build         bool
	tokenLifetime time.Duration
	pushInterval  time.Duration
	interval      time.Duration
	refreshes     int
	authorizers   string
	namespace     string
	operatorNS    string
}

// Names the demo relies on. The rest (appids, credentials, names of the samples) is read
// from config/samples, so the simulator always matches what is applied.
const (
	defaultOperatorNamespace = "wechat-operator-system"
	// authorizerControllerName is the controller-runtime name of the WeChatAuthorizer
	// controller; the demo looks for it in the manager's metrics to know whether the
	// manager it runs refreshes authorizer tokens.
	authorizerControllerName = "wechatauthorizer"
	componentControllerName  = "wechatcomponent"
)

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: demo [flags]   (normally: make demo, make demo-check)\n\n"+
			"Runs etcd, kube-apiserver, wechat-sim, the manager and the webhook receiver locally,\n"+
			"applies config/samples, authorizes the sample account and shows tokens being issued\n"+
			"and refreshed. Ctrl-C stops every process it started.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	authorizersDefault := os.Getenv("DEMO_AUTHORIZERS")
	if authorizersDefault == "" {
		authorizersDefault = "auto"
	}
	fs.BoolVar(&o.check, "check", false, "run non-interactively: assert that tokens are issued and refreshed, then stop and exit 0 (or 1 at --timeout)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "with --check: give up after this long (counted once the binaries are built)")
	fs.StringVar(&o.root, "root", ".", "the repository's root directory")
	fs.StringVar(&o.dir, "dir", ".demo", "`directory` for logs, kubeconfigs and the control plane's data (relative to --root)")
	fs.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "`directory` with etcd, kube-apiserver and kubectl (default: $KUBEBUILDER_ASSETS, else bin/k8s/1.37.2)")
	fs.BoolVar(&o.build, "build", true, "build manager, webhook-receiver and wechat-sim into bin/ first (cached by go)")
	fs.DurationVar(&o.tokenLifetime, "token-lifetime", 2*time.Minute, "lifetime of the simulator's access tokens; the operator refreshes at about half of it")
	fs.DurationVar(&o.pushInterval, "push-interval", 30*time.Second, "interval of the simulator's component_verify_ticket pushes")
	fs.DurationVar(&o.interval, "interval", 0, "how often to print the state (default 5s, with --check 20s)")
	fs.IntVar(&o.refreshes, "refreshes", 1, "with --check: refreshes of every token to wait for")
	fs.StringVar(&o.authorizers, "authorizers", authorizersDefault, "authorizer token assertions: auto (when the manager runs the WeChatAuthorizer controller), on, off (default: $DEMO_AUTHORIZERS, else auto)")
	fs.StringVar(&o.namespace, "namespace", "default", "namespace the samples are applied in")
	fs.StringVar(&o.operatorNS, "operator-namespace", defaultOperatorNamespace, "namespace of the operator (keyring Secret, leader election Lease, RBAC)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch o.authorizers {
	case "1", "true", "on", "yes":
		o.authorizers = "on"
	case "0", "false", "off", "no":
		o.authorizers = "off"
	case "auto", "":
		o.authorizers = "auto"
	default:
		return nil, fmt.Errorf("--authorizers (or DEMO_AUTHORIZERS) %q: want auto, on or off", o.authorizers)
	}
	if o.interval == 0 {
		o.interval = 5 * time.Second
		if o.check {
			o.interval = 20 * time.Second
		}
	}
	if o.tokenLifetime < 30*time.Second {
		return nil, errors.New("--token-lifetime must be at least 30s")
	}
	var err error
	if o.root, err = filepath.Abs(o.root); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(o.dir) {
		o.dir = filepath.Join(o.root, o.dir)
	}
	if o.assets == "" {
		o.assets = filepath.Join(o.root, "bin", "k8s", "1.37.2")
	}
	if o.assets, err = filepath.Abs(o.assets); err != nil {
		return nil, err
	}
	return o, nil
}

func main() {
	harness.Trampoline()
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(2)
	}

	// The first signal starts an orderly shutdown; later ones only say it is under way, so
	// that nothing is left running because the user pressed Ctrl-C twice.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Printf("\n==> %v received: stopping every process the demo started...\n", s)
		cancel()
		for s := range sigs {
			fmt.Printf("    (%v) still stopping, one moment\n", s)
		}
	}()

	d := &demo{opts: opts}
	err = d.run(ctx)
	interrupted := ctx.Err() != nil
	failed := err != nil && !(interrupted && !opts.check)
	if failed {
		fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
		if opts.check {
			d.printDiagnostics() // while the control plane still runs
		}
	}
	cancel()
	d.shutdown()

	switch {
	case failed && opts.check:
		fmt.Fprintln(os.Stderr, "\nDEMO CHECK FAILED")
		os.Exit(1)
	case failed:
		os.Exit(1)
	case opts.check:
		fmt.Println("\nDEMO CHECK PASSED")
	}
}

// step prints a headline for what happens next.
func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

// info prints a detail line under a step.
func info(format string, args ...any) {
	fmt.Printf("    "+format+"\n", args...)
}

// rel shortens a path under the repository for printing.
func (d *demo) rel(path string) string {
	if r, err := filepath.Rel(d.opts.root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
