/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// startControlPlane starts etcd and kube-apiserver, installs the CRDs and writes kubeconfigs.
func (d *demo) startControlPlane(ctx context.Context) error {
	o := d.opts
	step("starting etcd and kube-apiserver from %s", d.rel(o.assets))
	etcdLog, err := os.Create(filepath.Join(d.logDir, "etcd.log"))
	if err != nil {
		return err
	}
	apiLog, err := os.Create(filepath.Join(d.logDir, "kube-apiserver.log"))
	if err != nil {
		return err
	}
	for _, sub := range []string{"etcd", "apiserver"} {
		if err := os.MkdirAll(filepath.Join(o.dir, sub), 0o700); err != nil {
			return err
		}
	}
	d.env = &envtest.Environment{
		BinaryAssetsDirectory: o.assets,
		CRDDirectoryPaths:     []string{filepath.Join(o.root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		// The machine may be busy compiling; the default 20 s is tight for a cold start.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	// Data and certificates live under the demo directory: that is how a later run
	// recognises (and stops) processes of a demo that was killed before it could clean up.
	tramp, err := harness.MakeTrampolines(filepath.Join(o.dir, "bin"), o.assets)
	if err != nil {
		return err
	}
	d.env.ControlPlane.Etcd = &envtest.Etcd{Path: tramp["etcd"], DataDir: filepath.Join(o.dir, "etcd"), Out: etcdLog, Err: etcdLog}
	d.env.ControlPlane.KubectlPath = d.kubectl
	api := d.env.ControlPlane.GetAPIServer()
	api.Path = tramp["kube-apiserver"]
	api.CertDir = filepath.Join(o.dir, "apiserver")
	api.Out, api.Err = apiLog, apiLog

	start := time.Now()
	started := make(chan error, 1)
	go func() {
		_, err := d.env.Start()
		started <- err
	}()
	select {
	case err = <-started:
	case <-ctx.Done():
		// envtest.Start cannot be cancelled; wait for it, then shutdown stops what it started.
		<-started //nolint:errcheck // the context error is what the caller needs; shutdown cleans up
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("starting the control plane: %w (logs: %s)", err, d.rel(d.logDir))
	}
	info("kube-apiserver %s is up (%s); CRDs installed from config/crd/bases",
		d.env.ControlPlane.APIServer.SecureServing.URL("https", "/"), time.Since(start).Round(100*time.Millisecond))

	d.scheme = harness.NewScheme()
	admin, err := d.writeKubeconfig("kubeconfig", envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}})
	if err != nil {
		return err
	}
	d.adminKubeconfig = filepath.Join(o.dir, "kubeconfig")
	if d.c, err = client.New(admin, client.Options{Scheme: d.scheme}); err != nil {
		return err
	}
	if _, err := d.writeKubeconfig("manager.kubeconfig", harness.ServiceAccountUser(o.operatorNS, harness.ManagerSA)); err != nil {
		return err
	}
	if _, err := d.writeKubeconfig("receiver.kubeconfig", harness.ServiceAccountUser(o.operatorNS, harness.ReceiverSA)); err != nil {
		return err
	}
	info("kubeconfig: %s   (try: KUBECONFIG=%s kubectl get wxc,wxa -A)", d.adminKubeconfig, d.adminKubeconfig)
	return nil
}

// writeKubeconfig writes a kubeconfig for user into the demo directory.
func (d *demo) writeKubeconfig(name string, user envtest.User) (*rest.Config, error) {
	return harness.WriteKubeconfig(d.env, user, filepath.Join(d.opts.dir, name))
}

// applyRBAC applies the namespace, ServiceAccounts and RBAC of config/default, exactly as
// `make deploy` would; the manager and receiver then run with those permissions only.
func (d *demo) applyRBAC(ctx context.Context) error {
	step("applying the namespace and least-privilege RBAC from config/default")
	n, err := harness.ApplyRBAC(ctx, d.c, d.opts.root, d.opts.operatorNS, "wechat-operator-demo")
	if err != nil {
		return err
	}
	info("%d objects; the manager and the receiver authenticate as their ServiceAccounts, not as admin", n)
	return nil
}

// startProcesses starts wechat-sim, the manager and the receiver, and waits until each is ready.
func (d *demo) startProcesses(ctx context.Context) error {
	o := d.opts
	bin := func(name string) string { return filepath.Join(o.root, "bin", name) }
	ports := make([]int, 5)
	for i := range ports {
		p, err := harness.FreePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	simPort, recvPort, recvInternal, mgrMetrics, mgrProbe := ports[0], ports[1], ports[2], ports[3], ports[4]
	d.simURL = fmt.Sprintf("http://127.0.0.1:%d", simPort)
	d.receiverBase = fmt.Sprintf("http://127.0.0.1:%d", recvPort)
	d.managerMetrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", mgrMetrics)
	receiverURL := fmt.Sprintf("http://127.0.0.1:%d/wechat/%s/%s/events", recvPort, o.namespace, d.samples.componentName)

	s := d.samples
	seed := wxsim.SeedFile{
		Components: []wxsim.ComponentSeed{{
			AppID: s.componentAppID, AppSecret: s.appSecret, Token: s.token, EncodingAESKey: s.encodingAESKey,
			ReceiverURL: receiverURL,
		}},
		Authorizers: []wxsim.AuthorizerSeed{{
			ComponentAppID: s.componentAppID, AppID: s.authorizerAppID,
			NickName: "Demo Coffee", PrincipalName: "Demo Coffee Ltd.", Alias: "democoffee",
			ServiceType: 2, FuncInfo: []int{1, 15, 18},
		}, {
			// Authorized before the operator existed: only the discovery pass finds it.
			ComponentAppID: s.componentAppID, AppID: discoveredAppID, NickName: discoveredNickName,
			ServiceType: 2, Authorized: true,
		}},
	}
	seedPath := filepath.Join(o.dir, "sim-seed.json")
	data, err := json.MarshalIndent(seed, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(seedPath, data, 0o600); err != nil {
		return err
	}

	step("starting wechat-sim (token lifetime %s, ticket push every %s) on %s", o.tokenLifetime, o.pushInterval, d.simURL)
	overlap := min(5*time.Minute, o.tokenLifetime/4)
	sim, err := d.start(ctx, "wechat-sim", bin("wechat-sim"),
		"--listen", fmt.Sprintf("127.0.0.1:%d", simPort),
		"--seed-file", seedPath,
		"--token-lifetime", o.tokenLifetime.String(),
		"--api-ticket-lifetime", o.tokenLifetime.String(), // tickets compressed like tokens
		"--token-overlap", overlap.String(),
		"--push-interval", o.pushInterval.String(),
		// The demo pushes the first ticket itself once the receiver knows the component.
		"--push-on-start=false",
		"--push-retries", "2", "--push-retry-delay", "1s",
	)
	if err != nil {
		return err
	}
	if err := harness.WaitHTTP(ctx, sim, d.simURL+"/healthz", 30*time.Second); err != nil {
		return err
	}
	info("pushes go to the receiver at %s", receiverURL)

	step("starting the manager (leader election on, WeChat API = the simulator)")
	mgr, err := d.start(ctx, "manager", bin("manager"),
		"--kubeconfig", filepath.Join(o.dir, "manager.kubeconfig"),
		"--wechat-api-url", d.simURL,
		"--operator-namespace", o.operatorNS,
		"--leader-elect",
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", mgrMetrics),
		// Plain HTTP on loopback: the demo and tests scrape it without a token.
		"--metrics-secure=false",
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", mgrProbe),
	)
	if err != nil {
		return err
	}
	if err := harness.WaitHTTP(ctx, mgr, fmt.Sprintf("http://127.0.0.1:%d/readyz", mgrProbe), 60*time.Second); err != nil {
		return err
	}
	info("ready; metrics at %s", d.managerMetrics)

	step("starting the webhook receiver on 127.0.0.1:%d", recvPort)
	recv, err := d.start(ctx, "webhook-receiver", bin("webhook-receiver"),
		"--kubeconfig", filepath.Join(o.dir, "receiver.kubeconfig"),
		"--listen-address", fmt.Sprintf("127.0.0.1:%d", recvPort),
		"--internal-address", fmt.Sprintf("127.0.0.1:%d", recvInternal),
		"--operator-namespace", o.operatorNS,
	)
	if err != nil {
		return err
	}
	if err := harness.WaitHTTP(ctx, recv, fmt.Sprintf("http://127.0.0.1:%d/readyz", recvInternal), 60*time.Second); err != nil {
		return err
	}
	info("ready; metrics at http://127.0.0.1:%d/metrics", recvInternal)
	info("logs: %s/{etcd,kube-apiserver,wechat-sim,manager,webhook-receiver}.log", d.rel(d.logDir))
	return nil
}

// start starts a child process and remembers it for shutdown.
func (d *demo) start(ctx context.Context, name, bin string, args ...string) (*harness.Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s is not built: run `make build` or the demo without --build=false", bin)
	}
	c, err := harness.Start(name, bin, filepath.Join(d.logDir, name+".log"), args...)
	if err != nil {
		return nil, err
	}
	d.children = append(d.children, c)
	return c, nil
}

// applySamples applies config/samples with kubectl, as a user would.
func (d *demo) applySamples(ctx context.Context) error {
	step("kubectl apply -n %s -k config/samples", d.opts.namespace)
	cmd := exec.CommandContext(ctx, d.kubectl, "--kubeconfig", d.adminKubeconfig, "apply", "-n", d.opts.namespace, "-k", filepath.Join(d.opts.root, "config", "samples"))
	out, err := cmd.CombinedOutput()
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		info("%s", strings.TrimRight(line, "\n"))
	}
	if err != nil {
		return fmt.Errorf("kubectl apply -k config/samples: %w", err)
	}
	return nil
}

// pushFirstTicket waits until the manager has projected the component's Token and
// EncodingAESKey into the receiver's keyring, then has the simulator push a ticket (later
// ones follow every --push-interval).
func (d *demo) pushFirstTicket(ctx context.Context) error {
	step("waiting for the manager to project the component's keys into the receiver keyring")
	key := client.ObjectKey{Namespace: d.opts.operatorNS, Name: keyring.DefaultSecretName}
	tokenKey := keyring.TokenKey(d.opts.namespace, d.samples.componentName)
	err := d.poll(ctx, time.Minute, func() (bool, error) {
		var s corev1.Secret
		if err := d.c.Get(ctx, key, &s); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		_, ok := s.Data[tokenKey]
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("the keyring Secret %s never got the key %s: %w", key, tokenKey, err)
	}
	info("Secret %s has entry %s (values are never printed)", key, tokenKey)

	step("wechat-sim pushes a component_verify_ticket to the receiver (encrypted and signed, as WeChat does)")
	compKey := client.ObjectKey{Namespace: d.opts.namespace, Name: d.samples.componentName}
	var lastErr string
	err = d.poll(ctx, time.Minute, func() (bool, error) {
		// The manager asks WeChat for a push (api_start_push_ticket) when it has no ticket;
		// that push may already have arrived. Otherwise the simulator pushes now.
		var comp wechatv1alpha1.WeChatComponent
		if err := d.c.Get(ctx, compKey, &comp); err != nil {
			return false, err
		}
		if comp.Status.VerifyTicket != nil {
			info("the manager asked for it (api_start_push_ticket) and it has arrived")
			return true, nil
		}
		status, body, err := d.simPost(ctx, "/admin/push-ticket", map[string]any{"component_appid": d.samples.componentAppID})
		if err != nil {
			return false, err
		}
		if status == 200 {
			info("delivered: the receiver answered \"success\"")
			return true, nil
		}
		lastErr = strings.TrimSpace(string(body))
		return false, nil // the receiver's cache may lag the keyring by a moment
	})
	if err != nil {
		return fmt.Errorf("the ticket push was never accepted (last answer: %s): %w", lastErr, err)
	}
	return nil
}
