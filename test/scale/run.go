/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/managerdefaults"
	"github.com/wechat-operator/wechat-operator/internal/memlimit"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

const (
	namespace      = "bench"
	credsName      = "platform-credentials"
	appSecret      = "bench-app-secret"
	verifyToken    = "bench-verify-token"
	encodingAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	// WeChat's documented values, as the simulator has them, and the operator's least refresh
	// margin, before compression.
	realLifetime    = wxsim.DefaultTokenLifetime
	realOverlap     = wxsim.DefaultTokenOverlap
	realPushEvery   = wxsim.DefaultTicketInterval
	realTicketValid = wxsim.DefaultTicketLifetime
	realMinMargin   = refresh.MinMargin
	// The manager's flag defaults (--wechat-api-rate, --wechat-api-burst, --kube-api-qps,
	// --kube-api-burst), multiplied by the compression.
	realAPIRate   = managerdefaults.WeChatAPIRate
	realAPIBurst  = managerdefaults.WeChatAPIBurst
	realKubeQPS   = managerdefaults.KubeAPIQPS
	realKubeBurst = managerdefaults.KubeAPIBurst
)

func componentName(i int) string   { return fmt.Sprintf("platform-%03d", i) }
func componentAppID(i int) string  { return fmt.Sprintf("wx%016x", 0xbe000+i) }
func authorizerName(i int) string  { return fmt.Sprintf("account-%06d", i) }
func authorizerAppID(i int) string { return fmt.Sprintf("wx%016x", 0xa0000000+i) }

// run is one benchmark at one authorizer count.
type run struct {
	o         *options
	n, comps  int
	k         float64
	lifetime  time.Duration
	cp        *harness.ControlPlane
	bins      harness.Binaries
	sim       *harness.Sim
	recv      *harness.Receiver
	mgr       *harness.Manager // the first of mgrs
	mgrs      []*harness.Manager
	mgrFlags  []string
	tokens    *tokenWatch
	mem       *memorySampler // the first of mems
	mems      []*memorySampler
	memCtx    context.CancelFunc
	processes []*harness.Process
	res       *results
	// pprofURLs: each manager process's /debug/pprof/ (with --profile), in r.mgrs' order.
	pprofURLs  []string
	scrapeAPIs func(context.Context) ([]sample, error)
}

func (r *run) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) / r.k).Round(time.Millisecond)
}

func runOne(ctx context.Context, o *options, n int) (*results, error) {
	comps := o.components
	if comps == 0 {
		comps = min(100, max(1, n/1000))
	}
	r := &run{o: o, n: n, comps: comps, k: o.compression, tokens: newTokenWatch()}
	r.lifetime = r.scale(realLifetime)
	r.res = &results{authorizers: n, components: comps, compression: r.k, lifetime: r.lifetime, started: time.Now()}
	defer r.shutdown()
	steps := []struct {
		what string
		f    func(context.Context) error
	}{
		{"setting up", r.setup},
		{"components and first tickets", r.components},
		{"authorizers", r.authorizers},
		{"steady state", r.steady},
		{"manager restart", r.restart},
		{"receiver throughput", r.receiverThroughput},
	}
	for _, s := range steps {
		if err := s.f(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
		if err := r.alive(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	r.res.finished = time.Now()
	return r.res, nil
}

func (r *run) alive() error {
	for _, p := range r.processes {
		if p.Exited() {
			return fmt.Errorf("%s exited (%w); last lines of %s:\n%s", p.Name, p.Err(), p.LogPath, p.Tail(20))
		}
	}
	return nil
}

func (r *run) shutdown() {
	if r.memCtx != nil {
		r.memCtx()
	}
	for i := len(r.processes) - 1; i >= 0; i-- {
		r.processes[i].Stop(20 * time.Second)
	}
	if r.cp != nil {
		_ = r.cp.Stop()
	}
	_ = os.RemoveAll(filepath.Join(r.o.dir, "etcd"))
	_ = os.RemoveAll(filepath.Join(r.o.dir, "apiserver"))
}

func (r *run) setup(ctx context.Context) error {
	o := r.o
	step("%d authorizers over %d components; time compressed %gx: tokens live %s (7200 s), tickets every %s",
		r.n, r.comps, r.k, r.lifetime, r.scale(realPushEvery))
	if err := os.RemoveAll(o.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	var err error
	step("building manager, webhook-receiver and wechat-sim from %s", o.root)
	if r.bins, err = harness.Build(ctx, o.root, filepath.Join(o.dir, "bin")); err != nil {
		return err
	}
	step("starting etcd and kube-apiserver")
	if r.cp, err = harness.StartControlPlane(ctx, harness.ControlPlaneOptions{Root: o.root, Dir: o.dir, DieWithCaller: true}); err != nil {
		return err
	}
	getter, err := apiServerGetter(r.cp.Admin)
	if err != nil {
		return err
	}
	r.scrapeAPIs = func(ctx context.Context) ([]sample, error) { return scrape(ctx, getter) }
	if err := r.cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return err
	}
	if err := r.cp.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: credsName, Namespace: namespace,
			Annotations: map[string]string{wechatv1alpha1.AnnotationUsableBy: wechatv1alpha1.KindWeChatComponent + "/*"}},
		StringData: map[string]string{"appSecret": appSecret, "token": verifyToken, "encodingAESKey": encodingAESKey},
	}); err != nil {
		return err
	}
	if err := r.tokens.start(ctx, r.cp.Admin, namespace); err != nil {
		return err
	}

	step("starting the webhook receiver")
	if r.recv, err = harness.StartReceiver(ctx, r.bins.Receiver, "webhook-receiver", r.cp); err != nil {
		return err
	}
	r.processes = append(r.processes, r.recv.Process)

	seed := wxsim.SeedFile{}
	for i := range r.comps {
		seed.Components = append(seed.Components, wxsim.ComponentSeed{AppID: componentAppID(i), AppSecret: appSecret,
			Token: verifyToken, EncodingAESKey: encodingAESKey, ReceiverURL: r.recv.EventsURL(namespace, componentName(i))})
	}
	for i := range r.n {
		seed.Authorizers = append(seed.Authorizers, wxsim.AuthorizerSeed{ComponentAppID: componentAppID(i % r.comps),
			AppID: authorizerAppID(i), Authorized: true})
	}
	step("starting wechat-sim with %d authorized accounts", r.n)
	if r.sim, err = harness.StartSim(ctx, r.bins.Sim, "wechat-sim", r.cp.LogDir, seed,
		"--token-lifetime", r.lifetime.String(),
		"--token-overlap", r.scale(realOverlap).String(),
		"--push-interval", r.scale(realPushEvery).String(),
		"--ticket-lifetime", r.scale(realTicketValid).String(),
		"--push-retry-delay", r.scale(5*time.Second).String(),
		"--push-on-start=false", "--log-level", "warn"); err != nil {
		return err
	}
	r.processes = append(r.processes, r.sim.Process)

	// Compressed time multiplies every rate by k, so the client-side rate limits scale too.
	r.mgrFlags = []string{"--leader-elect",
		fmt.Sprintf("--wechat-api-rate=%g", realAPIRate*r.k),
		fmt.Sprintf("--wechat-api-burst=%d", int(realAPIBurst*r.k))}
	if r.managerHasFlag("kube-api-qps") {
		r.mgrFlags = append(r.mgrFlags, fmt.Sprintf("--kube-api-qps=%g", realKubeQPS*r.k), fmt.Sprintf("--kube-api-burst=%d", int(realKubeBurst*r.k)))
	}
	if r.managerHasFlag("min-refresh-margin") {
		r.mgrFlags = append(r.mgrFlags, "--min-refresh-margin="+r.scale(realMinMargin).String())
	} else {
		r.res.notes = append(r.res.notes, "this manager has no --min-refresh-margin: its 10-minute floor is not compressed, so it refreshes at half the compressed lifetime and calls per day are about twice the real figure")
	}
	r.mgrFlags = append(r.mgrFlags, r.o.managerFlags...)
	r.res.managerFlags = strings.Join(r.mgrFlags, " ")
	if r.o.shards > 0 {
		r.res.notes = append(r.res.notes, fmt.Sprintf("sharded: %d manager processes, each with --shard=s<i> besides the flags above (config/sharded)", r.o.shards))
	}
	if r.o.memoryLimitMiB > 0 {
		r.res.goMemLimit = fmt.Sprintf("%dMiB", int(float64(r.o.memoryLimitMiB)*memlimit.DefaultFraction))
		r.res.memoryLimitMiB = r.o.memoryLimitMiB
	}
	return r.startManagers(ctx, "manager")
}

// managerHasFlag reports whether the built manager knows --name (older builds, measured
// for before/after figures, may not).
func (r *run) managerHasFlag(name string) bool {
	out, _ := exec.Command(r.bins.Manager, "--help").CombinedOutput()
	return strings.Contains(string(out), "-"+name+" ")
}

// startManagers starts the manager, or with --shards one manager process per shard (named
// s0, s1, …, as config/sharded names them after their pods), each with a memory sampler.
func (r *run) startManagers(ctx context.Context, name string) error {
	if r.memCtx != nil {
		r.memCtx()
	}
	var memCtx context.Context
	memCtx, r.memCtx = context.WithCancel(ctx)
	r.mgrs, r.mems, r.pprofURLs = nil, nil, nil
	profile := r.o.profile && r.managerHasFlag("pprof-bind-address")
	for i := range max(r.o.shards, 1) {
		procName, flags := name, slices.Clone(r.mgrFlags)
		if r.o.shards > 0 {
			procName = fmt.Sprintf("%s-s%d", name, i)
			flags = append(flags, fmt.Sprintf("--shard=s%d", i))
		}
		if profile {
			// A port of its own for every process: the shards run side by side.
			port, err := harness.FreePort()
			if err != nil {
				return err
			}
			r.pprofURLs = append(r.pprofURLs, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", port))
			flags = append(flags, fmt.Sprintf("--pprof-bind-address=127.0.0.1:%d", port))
		}
		step("starting the %s (%s)", procName, strings.Join(flags, " "))
		// No cgroup limit here: set what the manager would set itself in a pod with this limit.
		if r.o.memoryLimitMiB > 0 {
			os.Setenv("GOMEMLIMIT", r.res.goMemLimit)
		}
		m, err := harness.StartManager(ctx, r.bins.Manager, procName, r.cp, r.sim.URL, flags...)
		os.Unsetenv("GOMEMLIMIT")
		if err != nil {
			return err
		}
		r.processes = append(r.processes, m.Process)
		mem := &memorySampler{}
		go mem.run(memCtx, m.Process)
		r.mgrs, r.mems = append(r.mgrs, m), append(r.mems, mem)
	}
	r.mgr, r.mem = r.mgrs[0], r.mems[0]
	return nil
}

// components creates the WeChatComponents and measures ticket push → component token Secret.
func (r *run) components(ctx context.Context) error {
	step("creating %d WeChatComponents; timing each from creation to its component token Secret", r.comps)
	created := make([]time.Time, r.comps)
	for i := range r.comps {
		created[i] = time.Now()
		c := &wechatv1alpha1.WeChatComponent{ObjectMeta: metav1.ObjectMeta{Name: componentName(i), Namespace: namespace},
			Spec: wechatv1alpha1.WeChatComponentSpec{AppID: componentAppID(i),
				CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: credsName}}}
		if err := r.cp.Client.Create(ctx, c); err != nil {
			return err
		}
	}
	ring := client.ObjectKey{Namespace: harness.OperatorNamespace, Name: keyring.DefaultSecretName}
	if err := r.poll(ctx, 2*time.Minute, 200*time.Millisecond, func() (bool, error) {
		var s corev1.Secret
		if err := r.cp.Client.Get(ctx, ring, &s); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		for i := range r.comps {
			if _, ok := s.Data[keyring.TokenKey(namespace, componentName(i))]; !ok {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return fmt.Errorf("the manager never projected the keys into the keyring: %w", err)
	}
	// The manager asks WeChat for a ticket (api_start_push_ticket) as soon as a component has
	// none; the simulator pushes it through the receiver at once.
	for i := range r.comps {
		secret := componentName(i) + "-component-token"
		if err := r.poll(ctx, time.Minute, 2*time.Millisecond, func() (bool, error) {
			_, ok := r.tokens.seen(secret)
			return ok, nil
		}); err != nil {
			return fmt.Errorf("no component token in Secret %s: %w", secret, err)
		}
		seen, _ := r.tokens.seen(secret)
		r.res.componentToSecret = append(r.res.componentToSecret, seen.Sub(created[i]))
	}
	return nil
}

// authorizers creates every WeChatAuthorizer as a GitOps tool would (no refresh token: the
// operator recovers it from api_get_authorizer_list) and waits until all are Ready.
func (r *run) authorizers(ctx context.Context) error {
	if err := r.sim.ResetCounters(ctx); err != nil {
		return err
	}
	step("creating %d WeChatAuthorizers (as kubectl apply / GitOps would, with no refresh token)", r.n)
	start := time.Now()
	jobs := make(chan int)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				a := &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{Name: authorizerName(i), Namespace: namespace},
					Spec: wechatv1alpha1.WeChatAuthorizerSpec{ComponentRef: wechatv1alpha1.LocalObjectReference{Name: componentName(i % r.comps)},
						AppID: authorizerAppID(i)}}
				if err := r.cp.Client.Create(ctx, a); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	for i := range r.n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	r.res.createTime = time.Since(start)
	step("created in %s; waiting until every authorizer's token is in its Secret", r.res.createTime.Round(100*time.Millisecond))
	if err := r.poll(ctx, 60*time.Minute, time.Second, func() (bool, error) {
		_, _, _, served := r.tokens.result(time.Now())
		return served >= r.n+r.comps, r.alive()
	}); err != nil {
		return err
	}
	r.res.importTime = time.Since(start)
	counters, err := r.sim.Counters(ctx)
	if err != nil {
		return err
	}
	r.res.importCalls = r.totalCalls(counters)
	r.res.importByAPI = r.callsByAPI(counters)
	step("all %d authorizer tokens issued %s after the first create (%s)", r.n, r.res.importTime.Round(time.Second), r.res.importByAPI)
	_, err = r.waitReady(ctx, 10*time.Minute)
	return err
}

// waitReady waits until every custom resource says Ready=True. It returns when the read that
// showed it was sent: the API server answers a list with the objects as they were when it
// received it, so they were all Ready by then; the answer itself takes seconds at 100,000
// (it reads and evaluates every object), which is the benchmark's own time, not the
// operator's.
func (r *run) waitReady(ctx context.Context, timeout time.Duration) (time.Time, error) {
	var sent time.Time
	err := r.poll(ctx, timeout, time.Second, func() (bool, error) {
		sent = time.Now()
		notReady, err := r.countNotReady(ctx)
		return notReady == 0, err
	})
	return sent, err
}

// countNotReady counts the authorizers and components that are missing or whose Ready
// condition is not True, from the CRDs' Ready column in a server-side Table, as `kubectl get`
// shows them, rather than from the objects: decoding 100,000 whole authorizers took the
// benchmark seconds of the 2 cores a restart is measured on (the API server still reads every
// object and evaluates the printer columns, but sends only the cells).
func (r *run) countNotReady(ctx context.Context) (int, error) {
	hc, err := rest.HTTPClientFor(r.cp.Admin)
	if err != nil {
		return 0, err
	}
	notReady := r.n + r.comps
	for _, resource := range []string{"wechatauthorizers", "wechatcomponents"} {
		u := fmt.Sprintf("%s/apis/%s/namespaces/%s/%s?includeObject=None", strings.TrimSuffix(r.cp.Admin.Host, "/"),
			wechatv1alpha1.GroupVersion, namespace, resource)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		var table metav1.Table
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", u, resp.Status)
		} else {
			err = json.NewDecoder(resp.Body).Decode(&table)
		}
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		ready := slices.IndexFunc(table.ColumnDefinitions, func(c metav1.TableColumnDefinition) bool { return c.Name == "Ready" })
		if ready < 0 {
			return 0, fmt.Errorf("%s: the Table has no Ready column", resource)
		}
		for _, row := range table.Rows {
			if ready < len(row.Cells) && row.Cells[ready] == string(metav1.ConditionTrue) {
				notReady--
			}
		}
	}
	return notReady, nil
}

// steady measures a window of whole refresh cycles.
func (r *run) steady(ctx context.Context) error {
	// One cycle: refreshed at 90 % of the lifetime less a mean jitter of 2.5 %.
	window := time.Duration(r.o.cycles * 0.875 * float64(r.lifetime)).Round(time.Second)
	step("steady state for %s (%g refresh cycles); checking served tokens against WeChat meanwhile", window, r.o.cycles)
	before, err := r.scrapeAPIs(ctx)
	if err != nil {
		return err
	}
	if err := r.sim.ResetCounters(ctx); err != nil {
		return err
	}
	marks := make([]int, len(r.mems))
	for i, m := range r.mems {
		marks[i] = m.mark()
	}
	startMetrics, err := r.scrapeManagers(ctx)
	if err != nil {
		return err
	}
	cpuBefore, err := r.managerCPU()
	if err != nil {
		return err
	}
	start := time.Now()
	r.tokens.startWindow(start)
	checkCtx, stopChecks := context.WithCancel(ctx)
	checks := &tokenChecks{}
	go checks.run(checkCtx, r)
	select {
	case <-ctx.Done():
		stopChecks()
		return ctx.Err()
	case <-time.After(window):
	}
	stopChecks()
	end := time.Now()
	cpuAfter, err := r.managerCPU()
	if err != nil {
		return err
	}
	counters, after, err := r.snapshot(ctx)
	if err != nil {
		return err
	}
	endMetrics, err := r.scrapeManagers(ctx)
	if err != nil {
		return err
	}
	mgrMetrics := endMetrics[0]
	res := r.res
	res.windowCPU = cpuAfter - cpuBefore
	gcs := func(metrics []sample) float64 { return sum(metrics, "go_gc_duration_seconds_count", nil) }
	for i := range endMetrics {
		res.windowGCs += int(gcs(endMetrics[i]) - gcs(startMetrics[i]))
	}
	res.window = end.Sub(start)
	res.expired, res.expiredTokens, res.refreshes, _ = r.tokens.result(end)
	res.authorizerCalls = r.calls(counters, "api_authorizer_token")
	res.componentCalls = r.calls(counters, "api_component_token")
	res.steadyCalls = r.totalCalls(counters)
	res.steadyByAPI = r.callsByAPI(counters)
	res.writes = apiWrites(after).minus(apiWrites(before))
	// Sharded, the row shows the largest shard; each shard's figures are listed too.
	res.shardRSS = nil
	for i, m := range r.mems {
		steady, peak := m.meanSince(marks[i]), m.peakRSS()
		res.steadyRSS, res.peakRSS = max(res.steadyRSS, steady), max(res.peakRSS, peak)
		if r.o.shards > 0 {
			res.shardRSS = append(res.shardRSS, [2]uint64{peak, steady})
		}
	}
	res.heapInuse = sum(mgrMetrics, "go_memstats_heap_inuse_bytes", nil)
	res.checked, res.rejected = checks.result()
	if res.etcd, err = measureEtcd(ctx, r.cp.Env.ControlPlane.Etcd.URL, namespace); err != nil {
		return err
	}
	for i, url := range r.pprofURLs {
		path, err := r.saveProfile(ctx, url+"heap", "heap", i)
		if err != nil {
			return err
		}
		step("manager heap profile: go tool pprof -sample_index=inuse_space %s", path)
	}
	// The memory figures too: a run that fails later (at the restart) still leaves them.
	step("window done: %d refreshes, %d api_authorizer_token calls, expired-token-seconds %.1f; manager RSS peak %d MiB, steady %d MiB, Go heap in use %d MiB, file-backed (mostly the binary) %d MiB; CPU %s",
		res.refreshes, res.authorizerCalls, res.expired.Seconds(), res.peakRSS>>20, res.steadyRSS>>20, uint64(res.heapInuse)>>20, r.mem.fileRSS()>>20, res.cpuFigure())
	return nil
}

// scrapeManagers reads every manager's (every shard's) metrics.
func (r *run) scrapeManagers(ctx context.Context) ([][]sample, error) {
	var each [][]sample
	for _, m := range r.mgrs {
		metrics, err := scrape(ctx, httpGetter(m.MetricsURL))
		if err != nil {
			return nil, err
		}
		each = append(each, metrics)
	}
	return each, nil
}

// managerCPU is the CPU time the managers have used so far (all shards).
func (r *run) managerCPU() (time.Duration, error) {
	var cpu time.Duration
	for _, m := range r.mgrs {
		used, err := m.CPU()
		if err != nil {
			return 0, err
		}
		cpu += used
	}
	return cpu, nil
}

// saveProfile writes the profile at url, of the i-th manager process, to the run directory as
// manager-<kind>-<n>.pprof (go tool pprof); sharded, its name ends in the shard's.
func (r *run) saveProfile(ctx context.Context, url, kind string, i int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	name := fmt.Sprintf("manager-%s-%d.pprof", kind, r.n)
	if r.o.shards > 0 {
		name = fmt.Sprintf("manager-%s-%d-s%d.pprof", kind, r.n, i)
	}
	path := filepath.Join(r.o.dir, name)
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		return "", err
	}
	return path, nil
}

// tokenChecks uses served tokens the way an app would, a few at random every second.
type tokenChecks struct {
	checked, rejected atomic.Int64
}

func (t *tokenChecks) result() (int64, int64) { return t.checked.Load(), t.rejected.Load() }

func (t *tokenChecks) run(ctx context.Context, r *run) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for range 10 {
			name := authorizerName(rand.IntN(r.n)) + "-token"
			var s corev1.Secret
			if err := r.cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
				continue
			}
			answer, err := harness.VerifyAuthorizerToken(ctx, r.sim.URL, string(s.Data[wechatv1alpha1.SecretKeyAccessToken]))
			if err != nil {
				continue
			}
			t.checked.Add(1)
			if !answer.OK() {
				t.rejected.Add(1)
			}
		}
	}
}

// restart stops the manager and starts a new one while every token is fresh: it should make
// no WeChat call that was not due anyway, and be back in control quickly.
func (r *run) restart(ctx context.Context) error {
	var auths wechatv1alpha1.WeChatAuthorizerList
	if err := r.cp.Client.List(ctx, &auths, client.InNamespace(namespace)); err != nil {
		return err
	}
	refreshAt := map[string]time.Time{}
	for _, a := range auths.Items {
		if a.Status.RefreshAt != nil {
			refreshAt[a.Spec.AppID] = a.Status.RefreshAt.Time
		}
	}
	// Restart where no refresh falls due for a while, so that what the restart does is not
	// mixed with refreshes that were due anyway.
	// Wait at most two minutes for one: refreshes due anyway are counted apart.
	if at, ok := quietMoment(refreshAt, time.Now(), min(r.lifetime, 2*time.Minute), 30*time.Second); ok {
		step("waiting %s for a moment when no refresh is due for 30 s", time.Until(at).Round(time.Second))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(at)):
		}
	}
	before, err := r.scrapeAPIs(ctx)
	if err != nil {
		return err
	}
	held, err := r.leaseHolders(ctx)
	if err != nil {
		return err
	}
	step("stopping the manager (SIGTERM; every shard, sharded) and starting anew")
	for _, m := range r.mgrs {
		m.Stop(30 * time.Second)
		r.processes = slices.DeleteFunc(r.processes, func(p *harness.Process) bool { return p == m.Process })
	}
	if err := r.sim.ResetCounters(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := r.startManagers(ctx, "manager-restarted"); err != nil {
		return err
	}
	profiled := r.profileRestart(ctx)
	// A manager takes its Lease once every informer of its cache has synced, and starts its
	// workers right after: until then nothing is reconciled, and the Lease costs it nothing
	// to watch. The metrics are scraped only from then on.
	err = r.poll(ctx, 10*time.Minute, 100*time.Millisecond, func() (bool, error) {
		now, err := r.leaseHolders(ctx)
		if err != nil {
			return false, nil //nolint:nilerr // the API server is busy with the lists: look again
		}
		for name, holder := range held {
			if now[name] == "" || now[name] == holder {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("the restarted manager never took its Lease: %w", err)
	}
	r.res.restartLeased = time.Since(start)
	if err := r.heapProfiles(ctx, "restart-heap-leased"); err != nil {
		return err
	}
	// Back in control: every object reconciled once and nothing left in the queues (summed
	// over the shards: each reconciles its own authorizers, one of them the components).
	// Each scrape still collects the series per authorizer and so costs the manager work that
	// grows with n (at n/100 ms from the start, a sixth of what the restarted manager
	// allocated): polled no more often than n/50 ms (2 s at 100,000; the figure is late by up
	// to that), and only the two families read are sent (client_golang's name[]; the whole
	// text was 11 % of the restarted manager's CPU at 10,000), so that polling is not what
	// the restart is measured doing.
	every := max(100*time.Millisecond, time.Duration(r.n/50)*time.Millisecond)
	families := url.Values{"name[]": {"workqueue_depth", "controller_runtime_reconcile_total"}}.Encode()
	err = r.poll(ctx, 10*time.Minute, every, func() (bool, error) {
		reconciled := map[string]float64{}
		for _, mgr := range r.mgrs {
			m, err := scrape(ctx, httpGetter(mgr.MetricsURL+"?"+families))
			if err != nil {
				return false, nil //nolint:nilerr // a scrape missed under load: poll again
			}
			for _, controller := range []string{"wechatauthorizer", "wechatcomponent"} {
				if sum(m, "workqueue_depth", map[string]string{"name": controller}) != 0 {
					return false, nil
				}
				reconciled[controller] += sum(m, "controller_runtime_reconcile_total", map[string]string{"controller": controller})
			}
		}
		return reconciled["wechatauthorizer"] >= float64(r.n) && reconciled["wechatcomponent"] >= float64(r.comps), nil
	})
	if err != nil {
		return fmt.Errorf("the restarted manager never reconciled every object: %w", err)
	}
	r.res.restartReconciled = time.Since(start)
	readyAt, err := r.waitReady(ctx, 5*time.Minute)
	if err != nil {
		return err
	}
	done := time.Now()
	r.res.restartReady, r.res.restartReadyRead = readyAt.Sub(start), done.Sub(readyAt)
	for _, m := range r.mems {
		r.res.restartPhasePeakRSS = max(r.res.restartPhasePeakRSS, m.maxBetween(0, m.mark()))
	}
	if err := r.heapProfiles(ctx, "restart-heap-ready"); err != nil {
		return err
	}
	counters, after, err := r.snapshot(ctx)
	if err != nil {
		return err
	}
	r.res.restartWrites = apiWrites(after).minus(apiWrites(before))
	// A call for an account whose refresh was not due yet is one the restart caused.
	for appID, cc := range counters["api_authorizer_token"] {
		if at, ok := refreshAt[appID]; ok && at.After(done) {
			r.res.restartSpurious += cc.Calls
		} else {
			r.res.restartDue += cc.Calls
		}
	}
	r.res.restartComponentCalls = r.calls(counters, "api_component_token")
	r.res.restartByAPI = r.callsByAPI(counters)
	step("restarted manager reconciled everything in %s; %d calls not due, %d due refreshes meanwhile",
		r.res.restartReconciled.Round(10*time.Millisecond), r.res.restartSpurious, r.res.restartDue)
	return profiled()
}

// leaseHolders returns the holder of each held Lease in the operator namespace, where the
// manager's and the shards' Leases are.
func (r *run) leaseHolders(ctx context.Context) (map[string]string, error) {
	var leases coordinationv1.LeaseList
	if err := r.cp.Client.List(ctx, &leases, client.InNamespace(harness.OperatorNamespace)); err != nil {
		return nil, err
	}
	held := map[string]string{}
	for _, l := range leases.Items {
		if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != "" {
			held[l.Name] = h
		}
	}
	return held, nil
}

// profileRestart takes a CPU profile of each restarted manager process (with --profile) from
// its start, for about as long as a restart of n authorizers takes here (5 s at 10,000, 50 s
// at 100,000), then its allocations so far, to show where a restart's time goes. The
// returned func waits for them.
func (r *run) profileRestart(ctx context.Context) func() error {
	seconds := max(5, r.n/2000)
	var g errgroup.Group
	for i, url := range r.pprofURLs {
		g.Go(func() error {
			path, err := r.saveProfile(ctx, fmt.Sprintf("%sprofile?seconds=%d", url, seconds), "restart-cpu", i)
			if err != nil {
				return fmt.Errorf("the restart's CPU profile: %w", err)
			}
			step("restarted manager's CPU profile, its first %d s: go tool pprof -top %s", seconds, path)
			// What it allocated since its start: the garbage its collector was working on.
			if path, err = r.saveProfile(ctx, url+"allocs", "restart-allocs", i); err != nil {
				return fmt.Errorf("the restart's allocation profile: %w", err)
			}
			step("restarted manager's allocations since its start: go tool pprof -sample_index=alloc_space -top %s", path)
			return nil
		})
	}
	return g.Wait
}

// heapProfiles saves each manager's heap profile (with --profile) as it is, without the
// collection ?gc=1 would force: what the last collection found live, which is what the
// collector's target, and so the RSS, follows.
func (r *run) heapProfiles(ctx context.Context, kind string) error {
	if !r.o.profile {
		return nil
	}
	for i, url := range r.pprofURLs {
		path, err := r.saveProfile(ctx, url+"heap", kind, i)
		if err != nil {
			return fmt.Errorf("the %s profile: %w", kind, err)
		}
		step("heap profile (%s): go tool pprof -sample_index=inuse_space -top %s", kind, path)
	}
	return nil
}

// snapshot reads the simulator's call counters and the API server's metrics.
func (r *run) snapshot(ctx context.Context) (harness.Counters, []sample, error) {
	counters, err := r.sim.Counters(ctx)
	if err != nil {
		return nil, nil, err
	}
	apis, err := r.scrapeAPIs(ctx)
	return counters, apis, err
}

// quietMoment finds the first time from now, within horizon, followed by quiet seconds in
// which no refresh is due.
func quietMoment(refreshAt map[string]time.Time, now time.Time, horizon, quiet time.Duration) (time.Time, bool) {
	times := make([]time.Time, 0, len(refreshAt))
	for _, t := range refreshAt {
		if t.After(now) {
			times = append(times, t)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	from := now
	for _, t := range times {
		if t.Sub(from) >= quiet {
			return from, true
		}
		from = t.Add(time.Second)
		if from.Sub(now) > horizon {
			return time.Time{}, false
		}
	}
	return from, from.Sub(now) <= horizon
}

func (r *run) poll(ctx context.Context, timeout, every time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// calls counts the calls of api: every call names its component appid exactly once (the
// simulator counts an account call under the account's appid too, so a sum over every appid
// would count it twice).
func (r *run) calls(c harness.Counters, api string) int {
	n := 0
	for i := range r.comps {
		n += c.CallsFor(api, componentAppID(i))
	}
	return n
}

// totalCalls counts every call that named one of the components.
func (r *run) totalCalls(c harness.Counters) int {
	n := 0
	for api := range c {
		n += r.calls(c, api)
	}
	return n
}

// callsByAPI lists the non-zero call counts, e.g. "api_authorizer_token 1000, ...".
func (r *run) callsByAPI(c harness.Counters) string {
	apis := make([]string, 0, len(c))
	for api := range c {
		if r.calls(c, api) > 0 {
			apis = append(apis, api)
		}
	}
	slices.Sort(apis)
	parts := make([]string, 0, len(apis))
	for _, api := range apis {
		parts = append(parts, fmt.Sprintf("%s %d", api, r.calls(c, api)))
	}
	return strings.Join(parts, ", ")
}
