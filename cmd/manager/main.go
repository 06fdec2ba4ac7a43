/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Command manager runs the wechat-operator controllers: it keeps component_access_token and
// authorizer_access_token fresh in Kubernetes Secrets. Run it with leader election so that
// exactly one replica talks to WeChat.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/controllers"
	"github.com/wechat-operator/wechat-operator/internal/eventrecorder"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/lazylog"
	"github.com/wechat-operator/wechat-operator/internal/managerdefaults"
	"github.com/wechat-operator/wechat-operator/internal/memlimit"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/watchdecode"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

func main() {
	var (
		metricsAddr   = flag.String("metrics-bind-address", ":8443", "address of the Prometheus /metrics endpoint (\"0\" disables it)")
		metricsSecure = flag.Bool("metrics-secure", true, "serve /metrics over HTTPS to callers the API server authenticates and authorizes (get on the non-resource URL /metrics, e.g. the metrics-reader ClusterRole); false serves plain HTTP to anyone, for local runs on loopback only")
		metricsCerts  = flag.String("metrics-cert-dir", "", "directory with tls.crt and tls.key for the HTTPS /metrics endpoint (default: a self-signed certificate)")
		watchNS       = flag.String("watch-namespaces", "", "comma-separated namespaces whose WeChatComponents and WeChatAuthorizers this manager serves (default: all). With it the manager needs Roles in those namespaces and the operator namespace only (config/namespaced)")
		probeAddr     = flag.String("health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
		pprofAddr     = flag.String("pprof-bind-address", "0", "address of Go's /debug/pprof endpoints for profiling (\"0\" disables them; never expose them outside the pod)")
		leaderElect   = flag.Bool("leader-elect", false, "elect a leader so that exactly one replica refreshes tokens (use it whenever more than one replica runs)")
		leaderElectNS = flag.String("leader-election-namespace", "", "namespace of the leader-election Lease (default: the operator namespace)")
		operatorNS    = flag.String("operator-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the receiver keyring Secret (default: $POD_NAMESPACE)")
		keyringName   = flag.String("keyring-secret", keyring.DefaultSecretName, "name of the receiver keyring Secret in the operator namespace")
		apiURL        = flag.String("wechat-api-url", wxapi.DefaultBaseURL, "base URL of the WeChat API (point it at wechat-sim for local runs)")
		apiRate       = flag.Float64("wechat-api-rate", managerdefaults.WeChatAPIRate, "largest sustained rate of WeChat API calls per second (100,000 authorizers need about 18/s)")
		apiBurst      = flag.Int("wechat-api-burst", managerdefaults.WeChatAPIBurst, "burst of WeChat API calls above the sustained rate")
		apiInFlight   = flag.Int("wechat-api-concurrency", managerdefaults.WeChatAPIConcurrency, "WeChat API requests in flight at once (at ~200 ms a call, 16 allow ~80 calls/s)")
		apiTimeout    = flag.Duration("wechat-api-timeout", managerdefaults.WeChatAPITimeout, "timeout of one WeChat API request")
		maxReconciles = flag.Int("max-concurrent-reconciles", managerdefaults.MaxConcurrentReconciles, "reconciles run at once per controller; a refresh mostly waits on WeChat, so as many as --wechat-api-concurrency")
		minMargin     = flag.Duration("min-refresh-margin", 0, "least time before expiry a token is refreshed (default 10m); lower it only to compress time in tests and benchmarks against wechat-sim with short tokens")
		backoffScale  = flag.Float64("backoff-scale", 1, "multiplies the failure backoffs (5s..5m for WeChat errors, 30s..10m for problems a human must fix); lower it only to compress time in tests against wechat-sim")
		kubeQPS       = flag.Float64("kube-api-qps", managerdefaults.KubeAPIQPS, "largest sustained rate of requests to the Kubernetes API server per second")
		kubeBurst     = flag.Int("kube-api-burst", managerdefaults.KubeAPIBurst, "burst of Kubernetes API requests above --kube-api-qps")
		shard         = flag.String("shard", "", "serve one shard of the WeChatAuthorizers (sharded managers, config/sharded): this process holds the Lease wechat-operator-shard-<shard>, caches and refreshes only the authorizers the sharder labelled for it, and takes its turn at the manager Lease, whose holder runs the WeChatComponent controller and the sharder. Each process needs its own name (the StatefulSet gives $POD_NAME). Implies --leader-elect")
		memFraction   = flag.Float64("memory-limit-fraction", memlimit.DefaultFraction, "fraction of the container's memory limit (cgroup) the Go heap keeps under, so the garbage collector works before the OOM killer does (0 disables it; $GOMEMLIMIT wins)")
		gcPercent     = flag.Int("gc-percent", memlimit.DefaultGCPercent, "garbage-collection target: the heap grows by this percentage of its live data before the next collection, like $GOGC (which wins when set); lower trades CPU for memory; 0 or less leaves Go's own default, 100")
		zapOptions    = zap.Options{}
	)
	zapOptions.BindFlags(flag.CommandLine)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n\n"+
			"Runs the wechat-operator manager: the WeChatComponent and WeChatAuthorizer controllers.\n"+
			"It needs a kubeconfig (--kubeconfig, $KUBECONFIG or the in-cluster config).\n\nFlags:\n", filepath.Base(os.Args[0]))
		flag.PrintDefaults()
	}
	flag.Parse()
	// With fields encoded only by loggers that write (a logger per reconcile mostly does not).
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOptions), zap.RawZapOpts(lazylog.Option())))
	setupLog := ctrl.Log.WithName("setup")

	if *operatorNS == "" {
		setupLog.Error(nil, "the operator namespace is unknown: set --operator-namespace or $POD_NAMESPACE")
		os.Exit(2)
	}
	if limit, soft := memlimit.Apply("/sys/fs/cgroup", *memFraction); soft > 0 {
		setupLog.Info("Go soft memory limit set from the container's", "containerLimitBytes", limit, "softLimitBytes", soft)
	}
	if memlimit.ApplyGCPercent(*gcPercent) {
		setupLog.Info("Go garbage-collection target set", "gcPercent", *gcPercent)
	} else if gogc := os.Getenv("GOGC"); gogc != "" {
		setupLog.Info("Go garbage-collection target from $GOGC; --gc-percent not applied", "GOGC", gogc)
	}
	if *leaderElectNS == "" {
		*leaderElectNS = *operatorNS
	}
	if *shard != "" {
		if errs := validation.IsDNS1123Label(*shard); len(errs) > 0 {
			setupLog.Error(nil, "--shard must be a DNS label (it names a Lease and is a label value)", "shard", *shard, "problems", errs)
			os.Exit(2)
		}
		// The shard Lease is what tells the sharder the shard is alive.
		*leaderElect = true
	}

	namespaces := splitList(*watchNS)

	scheme := runtime.NewScheme()
	must(clientgoscheme.AddToScheme(scheme))
	must(wechatv1alpha1.AddToScheme(scheme))

	restConfig := ctrl.GetConfigOrDie()
	// client-go's default (5/s, burst 10; controller-runtime: 20/30) would cap a manager with
	// thousands of authorizers at a few refreshes a second and make a restart take minutes.
	restConfig.QPS, restConfig.Burst = float32(*kubeQPS), *kubeBurst
	// The cache's watches of the custom resources decode their streams in one pass
	// (controllers.CacheOptions; a third of a 100,000-authorizer restart's CPU before).
	restConfig.Wrap(watchdecode.Transport)
	options := ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controllers.CacheOptions(*operatorNS, namespaces),
		Metrics:                 controllers.MetricsServerOptions(*metricsAddr, *metricsSecure, *metricsCerts),
		HealthProbeBindAddress:  *probeAddr,
		PprofBindAddress:        *pprofAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        managerLeaseName,
		LeaderElectionNamespace: *leaderElectNS,
		// Hand over at once on a clean shutdown, so a rolling update does not stall refreshes.
		LeaderElectionReleaseOnCancel: true,
	}
	// Unsharded, one manager runs both controllers. Sharded, a process has two: mgr (the
	// manager Lease: WeChatComponent controller and sharder) and shardMgr (its shard's Lease
	// and authorizers); they share the process's endpoints, which mgr serves.
	var (
		shardMgr ctrl.Manager
		err      error
	)
	if *shard != "" {
		options.Cache = controllers.SharedCacheOptions(*operatorNS, namespaces, *leaderElectNS)
		shardOptions := options
		shardOptions.Cache = controllers.ShardCacheOptions(*operatorNS, namespaces, *shard)
		shardOptions.Metrics.BindAddress, shardOptions.HealthProbeBindAddress, shardOptions.PprofBindAddress = "0", "0", "0"
		shardOptions.LeaderElectionID = controllers.ShardLeaseName(*shard)
		if shardMgr, err = ctrl.NewManager(restConfig, shardOptions); err != nil {
			setupLog.Error(err, "unable to create the shard manager")
			os.Exit(1)
		}
	}
	mgr, err := ctrl.NewManager(restConfig, options)
	if err != nil {
		setupLog.Error(err, "unable to create the manager")
		os.Exit(1)
	}
	authorizerMgr := mgr
	if shardMgr != nil {
		authorizerMgr = shardMgr
	}

	// One recorder for both managers, started beside them (startAll); client-go's, which
	// mgr.GetEventRecorder returns, keeps a copy of every Event for minutes.
	recorder, err := eventrecorder.New(restConfig, mgr.GetHTTPClient(), scheme, "wechat-operator", ctrl.Log.WithName("events"))
	if err != nil {
		setupLog.Error(err, "unable to create the Event recorder")
		os.Exit(1)
	}

	wechat := wxapi.New(wxapi.Options{
		BaseURL:   *apiURL,
		Timeout:   *apiTimeout,
		RateLimit: rate.Limit(*apiRate),
		Burst:     *apiBurst,
		// The reconcilers' workers share these slots.
		MaxConcurrency: *apiInFlight,
		Logger:         ctrl.Log.WithName("wechat-api"),
	})
	// One budget for the WeChat calls authorization codes cost, whichever controller makes them.
	codeBudget := controllers.NewCodeBudget(clock.RealClock{}, controllers.DefaultCodeBurst, controllers.DefaultCodeInterval,
		refresh.APIFailure.Scaled(*backoffScale), randomFloat)
	components := &controllers.WeChatComponentReconciler{
		Client:           mgr.GetClient(),
		APIReader:        mgr.GetAPIReader(),
		Scheme:           mgr.GetScheme(),
		Recorder:         recorder,
		WeChat:           wechat,
		Clock:            clock.RealClock{},
		Random:           randomFloat,
		KeyringNamespace: *operatorNS,
		KeyringName:      *keyringName,
		MinRefreshMargin: *minMargin,
		BackoffScale:     *backoffScale,
		CodeBudget:       codeBudget,
	}
	if err := components.SetupWithManager(mgr, *maxReconciles); err != nil {
		setupLog.Error(err, "unable to set up the WeChatComponent controller")
		os.Exit(1)
	}
	authorizers := &controllers.WeChatAuthorizerReconciler{
		Client:           authorizerMgr.GetClient(),
		APIReader:        authorizerMgr.GetAPIReader(),
		Scheme:           authorizerMgr.GetScheme(),
		Recorder:         recorder,
		WeChat:           wechat,
		Clock:            clock.RealClock{},
		Random:           randomFloat,
		MinRefreshMargin: *minMargin,
		BackoffScale:     *backoffScale,
		CodeBudget:       codeBudget,
		// The HMAC keys of spec.messages.forward go into the keyring too.
		KeyringNamespace: *operatorNS,
		KeyringName:      *keyringName,
		Shard:            *shard,
	}
	if shardMgr != nil {
		authorizers.Shared = mgr.GetClient()
		sharder := &controllers.Sharder{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
			LeaseNamespace: *leaderElectNS, Clock: clock.RealClock{}}
		if err := sharder.SetupWithManager(mgr); err != nil {
			setupLog.Error(err, "unable to set up the sharder")
			os.Exit(1)
		}
	}
	ctx := ctrl.SetupSignalHandler()
	if err := authorizers.SetupWithManager(ctx, authorizerMgr, *maxReconciles); err != nil {
		setupLog.Error(err, "unable to set up the WeChatAuthorizer controller")
		os.Exit(1)
	}
	// The authorizer manager's cache has every component and this process's authorizers.
	metrics.Registry.MustRegister(&controllers.TokenExpiryCollector{Reader: authorizerMgr.GetCache()})

	must(mgr.AddHealthzCheck("healthz", healthz.Ping))
	must(mgr.AddReadyzCheck("readyz", healthz.Ping))

	setupLog.Info("starting manager", "wechatAPI", *apiURL, "operatorNamespace", *operatorNS, "leaderElection", *leaderElect,
		"watchNamespaces", namespaces, "metricsSecure", *metricsSecure, "shard", *shard)
	if err := startAll(ctx, recorder, mgr, shardMgr); err != nil {
		setupLog.Error(err, "manager stopped with an error")
		os.Exit(1)
	}
}

// managerLeaseName is the Lease of the manager that runs the WeChatComponent controller (and,
// sharded, the sharder).
const managerLeaseName = "wechat-operator-manager"

// startAll runs the managers until ctx ends or one of them stops; then all stop. A process
// that lost either Lease must not go on with the other half of its work. The recorder writes
// Events until both managers have stopped, so their controllers' last Events are written.
func startAll(ctx context.Context, recorder *eventrecorder.Recorder, managers ...ctrl.Manager) error {
	recorderCtx, stopRecorder := context.WithCancel(context.WithoutCancel(ctx))
	recorderDone := make(chan struct{})
	go func() {
		defer close(recorderDone)
		_ = recorder.Start(recorderCtx)
	}()
	defer func() {
		stopRecorder()
		<-recorderDone
	}()
	group, ctx := errgroup.WithContext(ctx)
	for _, m := range managers {
		if m == nil {
			continue
		}
		group.Go(func() error {
			if err := m.Start(ctx); err != nil {
				return err
			}
			return context.Canceled // a manager that ended stops the others
		})
	}
	if err := group.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// randomFloat returns a number in [0, 1) for refresh jitter, from crypto/rand so that
// replicas started together do not pick the same jitter.
func randomFloat() float64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0.5
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func must(err error) {
	if err != nil {
		ctrl.Log.Error(err, "setup failed")
		os.Exit(1)
	}
}
