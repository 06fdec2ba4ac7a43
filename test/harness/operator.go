/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// Binaries are the operator's programs, built from this checkout.
type Binaries struct {
	Manager, Receiver, Sim string
}

// Build builds manager, webhook-receiver and wechat-sim from root into outDir (go's build
// cache makes a second build quick).
func Build(ctx context.Context, root, outDir string) (Binaries, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Binaries{}, err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", outDir+string(filepath.Separator),
		"./cmd/manager", "./cmd/webhook-receiver", "./cmd/wechat-sim")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return Binaries{
		Manager:  filepath.Join(outDir, "manager"),
		Receiver: filepath.Join(outDir, "webhook-receiver"),
		Sim:      filepath.Join(outDir, "wechat-sim"),
	}, nil
}

// Sim is a running wechat-sim.
type Sim struct {
	*Process
	// URL is the base URL of the WeChat API and the admin API.
	URL string
	admin
}

// StartSim writes seed to dir/<name>-seed.json and starts wechat-sim with it and args,
// waiting until it answers.
func StartSim(ctx context.Context, bin, name, dir string, seed wxsim.SeedFile, args ...string) (*Sim, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	seedPath := filepath.Join(dir, name+"-seed.json")
	data, err := json.Marshal(seed)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(seedPath, data, 0o600); err != nil {
		return nil, err
	}
	args = append([]string{"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--seed-file", seedPath}, args...)
	p, err := Start(name, bin, filepath.Join(dir, name+".log"), args...)
	if err != nil {
		return nil, err
	}
	s := &Sim{Process: p, URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	s.admin = admin{base: s.URL}
	if err := WaitHTTP(ctx, p, s.URL+"/healthz", 30*time.Second); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return s, nil
}

// Manager is a running manager.
type Manager struct {
	*Process
	MetricsURL, ReadyURL string
}

// StartManager starts the manager as the manager ServiceAccount against the simulator at
// wechatURL, with extra flags after the harness's own (later flags win). It does not wait
// for leadership: with --leader-elect a second manager is ready but idle.
func StartManager(ctx context.Context, bin, name string, cp *ControlPlane, wechatURL string, extra ...string) (*Manager, error) {
	ports, err := FreePorts(2)
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--kubeconfig", cp.ManagerKubeconfig,
		"--wechat-api-url", wechatURL,
		"--operator-namespace", OperatorNamespace,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		// Plain HTTP on loopback: the demo and tests scrape it without a token.
		"--metrics-secure=false",
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
	}, extra...)
	p, err := Start(name, bin, filepath.Join(cp.LogDir, name+".log"), args...)
	if err != nil {
		return nil, err
	}
	m := &Manager{Process: p,
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0]),
		ReadyURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1])}
	if err := WaitHTTP(ctx, p, m.ReadyURL, time.Minute); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return m, nil
}

// Receiver is a running webhook receiver.
type Receiver struct {
	*Process
	// URL is the public base URL (pushes go to URL + "/wechat/<ns>/<component>/events").
	URL                  string
	MetricsURL, ReadyURL string
}

// EventsURL is the 授权事件接收URL of a component.
func (r *Receiver) EventsURL(namespace, component string) string {
	return r.URL + "/wechat/" + namespace + "/" + component + "/events"
}

// StartReceiver starts a webhook receiver as the receiver ServiceAccount and waits until it
// is ready.
func StartReceiver(ctx context.Context, bin, name string, cp *ControlPlane, extra ...string) (*Receiver, error) {
	ports, err := FreePorts(2)
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--kubeconfig", cp.ReceiverKubeconfig,
		"--listen-address", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"--internal-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--operator-namespace", OperatorNamespace,
	}, extra...)
	p, err := Start(name, bin, filepath.Join(cp.LogDir, name+".log"), args...)
	if err != nil {
		return nil, err
	}
	r := &Receiver{Process: p, URL: "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]),
		ReadyURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1])}
	if err := WaitHTTP(ctx, p, r.ReadyURL, time.Minute); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return r, nil
}
