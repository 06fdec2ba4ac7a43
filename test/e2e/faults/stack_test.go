/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// Short lifetimes make a refresh cycle take seconds: the operator refreshes a token this short
// at about half its lifetime (minus up to a tenth of jitter), so a 40 s token is refreshed
// 16–20 s after it was issued, and a fault has 20 s before anything expires.
//
// Tickets are pushed at WeChat's own interval, so within a scenario only when the manager asks
// (api_start_push_ticket) or the scenario does. A ticket the receiver writes while a reconcile
// of the same WeChatComponent is in flight makes that reconcile's status update conflict, and
// the manager drops it (the failure it recorded never reaches status); pushes every few
// seconds would make the conditions asserted here a matter of luck (see docs/faults.md).
const (
	tokenLifetime = 40 * time.Second
	tokenOverlap  = 10 * time.Second
	pushInterval  = 10 * time.Minute
)

// simArgs are the wechat-sim flags every scenario starts from; later flags win.
func simArgs(lifetime time.Duration, extra ...string) []string {
	return append([]string{
		"--token-lifetime", lifetime.String(),
		"--token-overlap", tokenOverlap.String(),
		"--push-interval", pushInterval.String(),
		// Tenants are added while the simulator runs; their first ticket is requested by the
		// manager (api_start_push_ticket) once the receiver knows their keys.
		"--push-on-start=false",
		"--push-retries", "4", "--push-retry-delay", "1s", "--push-timeout", "5s",
	}, extra...)
}

// stack is one scenario's processes: a simulator, receivers and managers, all stopped (and
// their logs shown if the scenario failed) when the scenario ends.
type stack struct {
	name      string
	dir       string
	sim       *harness.Sim
	receivers []*harness.Receiver
	// pushTo, if set, is where the simulator pushes a tenant's events instead of the first
	// receiver.
	pushTo func(ns, component string) string

	mu    sync.Mutex         // procs grows from supervisors' goroutines too
	procs []*harness.Process // everything to show logs of and stop, in start order
}

func (s *stack) add(p *harness.Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs = append(s.procs, p)
}

// newStack starts a simulator (with simArgs(lifetime, extra...)) and n receivers. Managers
// are started by the scenario (startManager), as each wants them differently.
func newStack(name string, receivers int, lifetime time.Duration, extra ...string) *stack {
	dir := filepath.Join(work, name)
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	s := &stack{name: name, dir: dir}
	DeferCleanup(s.stop)
	for i := range receivers {
		r, err := harness.StartReceiver(ctx, bins.Receiver, fmt.Sprintf("%s-receiver-%d", name, i), cp)
		Expect(err).NotTo(HaveOccurred())
		s.receivers = append(s.receivers, r)
		s.add(r.Process)
	}
	// wechat-sim wants one platform to start with; tenants add theirs while it runs.
	placeholder := wxsim.ComponentSeed{AppID: "wx" + randomHex(8), AppSecret: randomHex(16), Token: "placeholder",
		EncodingAESKey: wxsim.GenerateEncodingAESKey()}
	sim, err := harness.StartSim(ctx, bins.Sim, name+"-sim", dir, wxsim.SeedFile{Components: []wxsim.ComponentSeed{placeholder}},
		simArgs(lifetime, extra...)...)
	Expect(err).NotTo(HaveOccurred())
	s.sim = sim
	s.add(sim.Process)
	return s
}

// startManager starts a manager as the manager ServiceAccount against wechatURL ("" is the
// simulator), with a short WeChat timeout and extra flags.
func (s *stack) startManager(name, wechatURL string, extra ...string) *harness.Manager {
	m, err := s.launchManager(ctx, name, wechatURL, extra...)
	Expect(err).NotTo(HaveOccurred())
	return m
}

func (s *stack) launchManager(c context.Context, name, wechatURL string, extra ...string) (*harness.Manager, error) {
	if wechatURL == "" {
		wechatURL = s.sim.URL
	}
	args := append([]string{"--wechat-api-timeout", "5s"}, extra...)
	m, err := harness.StartManager(c, bins.Manager, s.name+"-"+name, cp, wechatURL, args...)
	if err == nil {
		s.add(m.Process)
	}
	return m, err
}

// stop shows the logs of a failed scenario and stops its processes, newest first.
func (s *stack) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if failed || CurrentSpecReport().Failed() {
		for _, p := range s.procs {
			GinkgoWriter.Printf("\n---- last lines of %s (%s)\n%s\n", p.Name, p.LogPath, p.Tail(60))
		}
	}
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].Stop(10 * time.Second)
	}
}

// receiverURL is where the simulator pushes a tenant's events.
func (s *stack) receiverURL(ns, component string) string {
	if s.pushTo != nil {
		return s.pushTo(ns, component)
	}
	return s.receivers[0].EventsURL(ns, component)
}

// counters reads the simulator's call counters.
func (s *stack) counters() harness.Counters {
	c, err := s.sim.Counters(ctx)
	Expect(err).NotTo(HaveOccurred())
	return c
}

// calls is a function for Eventually: the calls of api naming appID.
func (s *stack) calls(api, appID string) func() int {
	return func() int { return s.counters().CallsFor(api, appID) }
}

// arm scripts a fault on the simulator.
func (s *stack) arm(f harness.Fault) {
	Expect(s.sim.AddFault(ctx, f)).To(Succeed())
}

// faultsLeft is a function for Eventually: the armed faults naming appID.
func (s *stack) faultsLeft(appID string) func() int {
	return func() int {
		faults, err := s.sim.Faults(ctx)
		Expect(err).NotTo(HaveOccurred())
		n := 0
		for _, f := range faults {
			if f.AppID == appID {
				n += f.Count
			}
		}
		return n
	}
}
