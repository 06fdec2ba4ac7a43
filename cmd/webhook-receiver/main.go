/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Command webhook-receiver serves the 授权事件接收URL and the 消息与事件接收URL of WeChat
// third-party platforms: it verifies and decrypts pushes and records them on the custom
// resources' status, answers WeChat's 全网发布 test, and forwards messages to apps.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/eventrecorder"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/lazylog"
	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

func main() {
	var (
		listenAddr   = flag.String("listen-address", ":8080", "address of the push endpoint (/wechat/...), the one exposed to WeChat")
		internalAddr = flag.String("internal-address", ":9090", "address of /healthz, /readyz and /metrics; keep it off the internet")
		operatorNS   = flag.String("operator-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the keyring Secret (default: $POD_NAMESPACE)")
		keyringName  = flag.String("keyring-secret", keyring.DefaultSecretName, "name of the keyring Secret the manager writes")
		window       = flag.Duration("timestamp-window", receiver.DefaultTimestampWindow, "largest accepted difference between a push's timestamp and now (a component's spec.receiver.timestampWindow overrides it); at most 1h, which bounds the replay cache's memory")
		maxBody      = flag.Int64("max-body-bytes", receiver.DefaultMaxBodyBytes, "largest accepted push body; larger ones get 413")
		fwdTimeout   = flag.Duration("forward-timeout", receiver.DefaultForwardTimeout, "how long an app may take to answer a forwarded message before WeChat gets \"success\" (a target's spec.messages.forward.timeout may say less; at most 4s)")
		fwdHosts     = flag.String("forward-allowed-hosts", "", "comma-separated hosts that spec.messages.forward.url may name besides in-cluster Services (<service>.<namespace>.svc); an entry starting with \".\" allows a domain (\".apps.internal\"). Messages to other hosts are not forwarded")
		clusterDom   = flag.String("cluster-domain", receiver.DefaultClusterDomain, "the cluster's DNS domain: forwarding URLs may name <service>.<namespace>.svc.<cluster-domain>")
		startTimeout = flag.Duration("authorize-page-timeout", receiver.DefaultAuthorizePageTimeout, "how long the authorization start page (spec.authorizePage) waits for the manager's pre_auth_code before it answers 503 with Retry-After; at most 8s")
		clientIPHdr  = flag.String("client-ip-header", "", "request header the Ingress sets to the client's IP (X-Real-IP, or X-Forwarded-For whose last entry is used), for the start page's per-client rate limit; empty: the connection's peer address. Set it only behind a proxy that overwrites the header")
		zapOptions   = zap.Options{}
	)
	zapOptions.BindFlags(flag.CommandLine)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n\n"+
			"Serves WeChat's pushes to the 授权事件接收URL at POST /wechat/{namespace}/{component}/events,\n"+
			"and the authorized accounts' messages at POST /wechat/{namespace}/{component}/messages/{appid}.\n"+
			"Set the platform's 授权事件接收URL to https://<your host>/wechat/<namespace>/<WeChatComponent name>/events\n"+
			"and its 消息与事件接收URL to https://<your host>/wechat/<namespace>/<WeChatComponent name>/messages/$APPID$.\n"+
			"Authorization links may redirect to GET /wechat/{namespace}/{component}/authorized (a landing page\n"+
			"that records the authorization code and never shows it); it takes codes only from links whose\n"+
			"redirect_uri carries the signed state that `kubectl wechat auth-link` adds (docs/authorization.md).\n"+
			"With a component's spec.authorizePage.enabled it serves GET /wechat/{namespace}/{component}/authorize, an\n"+
			"authorization start page with a fresh single-use link that the manager makes (register the host as the\n"+
			"platform's 授权发起页域名); rate-limited per client and per component.\n"+
			"It needs a kubeconfig (--kubeconfig, $KUBECONFIG or the in-cluster config).\n\nFlags:\n", filepath.Base(os.Args[0]))
		flag.PrintDefaults()
	}
	flag.Parse()
	// With fields encoded only by loggers that write (a logger per push mostly does not).
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOptions), zap.RawZapOpts(lazylog.Option())))
	log := ctrl.Log.WithName("webhook-receiver")
	if *operatorNS == "" {
		log.Error(nil, "the operator namespace is unknown: set --operator-namespace or $POD_NAMESPACE")
		os.Exit(2)
	}
	if *startTimeout <= 0 || *startTimeout > 8*time.Second {
		log.Error(nil, "--authorize-page-timeout must be positive and at most 8s (the HTTP write timeout is 10s)")
		os.Exit(2)
	}
	if *window <= 0 || *window > receiver.MaxTimestampWindow {
		log.Error(nil, "--timestamp-window must be positive and at most "+receiver.MaxTimestampWindow.String())
		os.Exit(2)
	}

	scheme := runtime.NewScheme()
	must(clientgoscheme.AddToScheme(scheme))
	must(wechatv1alpha1.AddToScheme(scheme))
	keyringKey := types.NamespacedName{Namespace: *operatorNS, Name: *keyringName}
	c, err := cluster.New(ctrl.GetConfigOrDie(), func(o *cluster.Options) {
		o.Scheme = scheme
		// The receiver may read exactly one Secret, so its cache watches exactly that one.
		o.Cache = receiver.CacheOptions(keyringKey)
	})
	if err != nil {
		log.Error(err, "unable to create the Kubernetes client")
		os.Exit(1)
	}

	// Until the informer's initial list is in, messages look up their account's
	// WeChatAuthorizer by component and appid through this index.
	if err := receiver.IndexAuthorizers(context.Background(), c.GetFieldIndexer()); err != nil {
		log.Error(err, "unable to index WeChatAuthorizers")
		os.Exit(1)
	}
	// client-go's recorder (c.GetEventRecorder) keeps a copy of every Event for minutes and a
	// goroutine per burst; under a flood of pushes this one's memory stays bounded.
	recorder, err := eventrecorder.New(c.GetConfig(), c.GetHTTPClient(), scheme, "wechat-webhook-receiver", log.WithName("events"))
	if err != nil {
		log.Error(err, "unable to create the Event recorder")
		os.Exit(1)
	}
	srv := receiver.New(receiver.Options{
		Reader:               c.GetCache(),
		AuthorizersIndexed:   true,
		APIReader:            c.GetAPIReader(),
		Client:               c.GetClient(),
		Keyring:              keyringKey,
		TimestampWindow:      *window,
		MaxBodyBytes:         *maxBody,
		ForwardTimeout:       *fwdTimeout,
		ForwardAllowedHosts:  strings.Split(*fwdHosts, ","),
		ClusterDomain:        *clusterDom,
		Metrics:              receiver.DefaultMetrics(metrics.Registry),
		Recorder:             recorder,
		Logger:               log,
		AuthorizePageTimeout: *startTimeout,
		ClientIPHeader:       *clientIPHdr,
	})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The recorder writes until the servers have shut down (then drains what is queued for up
	// to 5 s), so the Events of the pushes answered before a stop are written if the pod's
	// grace period allows.
	recorderCtx, stopRecorder := context.WithCancel(context.Background())
	recorderDone := make(chan struct{})
	go func() {
		defer close(recorderDone)
		_ = recorder.Start(recorderCtx)
	}()
	go func() {
		if err := c.Start(ctx); err != nil {
			log.Error(err, "the Kubernetes cache stopped")
			stop()
		}
	}()
	// Warm the informers the handler reads, so the first push does not wait for them.
	for _, obj := range []client.Object{&wechatv1alpha1.WeChatComponent{}, &wechatv1alpha1.WeChatAuthorizer{}, &corev1.Secret{}} {
		if _, err := c.GetCache().GetInformer(ctx, obj); err != nil {
			log.Error(err, "unable to start an informer")
			os.Exit(1)
		}
	}

	// Pushes read the keyring from its informer's events rather than a Get each.
	secrets, err := c.GetCache().GetInformer(ctx, &corev1.Secret{})
	if err == nil {
		err = srv.WatchKeyring(secrets)
	}
	if err != nil {
		log.Error(err, "unable to watch the keyring")
		os.Exit(1)
	}
	// Messages find their account's WeChatAuthorizer in a map its informer's events keep.
	authorizers, err := c.GetCache().GetInformer(ctx, &wechatv1alpha1.WeChatAuthorizer{})
	if err == nil {
		err = srv.WatchAuthorizers(authorizers)
	}
	if err != nil {
		log.Error(err, "unable to watch WeChatAuthorizers")
		os.Exit(1)
	}
	// The start page's visits wake when the manager's answer arrives.
	components, err := c.GetCache().GetInformer(ctx, &wechatv1alpha1.WeChatComponent{})
	if err == nil {
		err = srv.WatchComponents(components)
	}
	if err != nil {
		log.Error(err, "unable to watch WeChatComponents")
		os.Exit(1)
	}

	var ready atomic.Bool
	internal := http.NewServeMux()
	internal.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	internal.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "informer cache not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	internal.Handle("GET /metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))

	servers := []*http.Server{
		receiver.NewHTTPServer(*listenAddr, srv.Handler()),
		receiver.NewHTTPServer(*internalAddr, internal),
	}
	for _, s := range servers {
		go func() {
			if err := s.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(err, "HTTP server failed", "address", s.Addr)
				stop()
			}
		}()
	}
	if c.GetCache().WaitForCacheSync(ctx) {
		ready.Store(true)
		log.Info("receiving pushes", "address", *listenAddr, "internal", *internalAddr)
	}

	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdown)
	}
	stopRecorder()
	<-recorderDone
}

func must(err error) {
	if err != nil {
		ctrl.Log.Error(err, "setup failed")
		os.Exit(1)
	}
}
