/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Command wechat-sim runs the WeChat Open Platform simulator (internal/wxsim)
// as a standalone HTTP server for the local demo and end-to-end tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

const usageHeader = `wechat-sim simulates the WeChat Open Platform third-party platform API
(api.weixin.qq.com/cgi-bin/component/...) with real state and rules: tickets
pushed encrypted and signed to the receiver, expiring tokens, single-use codes,
refresh-token rotation, quotas, scripted faults and call counters. An admin API
under /admin/ drives it (see docs/simulator.md).

Usage:
  wechat-sim [flags]

Components come from --seed-file (JSON) and/or the --component-* flags.
Example:
  wechat-sim --listen 127.0.0.1:8090 \
    --component-appid wx0123456789abcdef --component-secret s3cr3t \
    --component-token tok --component-aes-key <43 letters and digits> \
    --receiver-url 'http://127.0.0.1:9443/wechat/default/demo'

Point the operator at it with its WeChat API base URL set to http://<listen>.

Flags:
`

// config is what the flags say.
type config struct {
	listen           string
	seedFile         string
	comp             wxsim.ComponentSeed
	authorizers      []string
	receiverTemplate string
	opts             wxsim.Options
	logLevel         slog.Level
	logJSON          bool
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("wechat-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = io.WriteString(stderr, usageHeader)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8090", "`address` to serve the WeChat API and the admin API on")
	fs.StringVar(&cfg.seedFile, "seed-file", "", "JSON `file` with components, authorizers and quotas (see docs/simulator.md)")
	fs.StringVar(&cfg.comp.AppID, "component-appid", "", "appid of a component to add (besides the seed file)")
	fs.StringVar(&cfg.comp.AppSecret, "component-secret", "", "appsecret of the --component-appid component")
	fs.StringVar(&cfg.comp.Token, "component-token", "", "message check token of the --component-appid component")
	fs.StringVar(&cfg.comp.EncodingAESKey, "component-aes-key", "", "EncodingAESKey (43 letters and digits) of the --component-appid component")
	fs.StringVar(&cfg.comp.ReceiverURL, "component-receiver-url", "", "授权事件接收URL of the --component-appid component (default: --receiver-url)")
	fs.Func("authorizer", "`appid` of an account profile (not yet authorized) of the --component-appid component; repeatable", func(v string) error {
		if v == "" {
			return errors.New("empty appid")
		}
		cfg.authorizers = append(cfg.authorizers, v)
		return nil
	})
	fs.StringVar(&cfg.receiverTemplate, "receiver-url", "", "receiver `URL` for components that have none; {appid} is replaced by the component appid")
	fs.DurationVar(&cfg.opts.TokenLifetime, "token-lifetime", wxsim.DefaultTokenLifetime, "lifetime of component and authorizer access tokens (expires_in)")
	fs.DurationVar(&cfg.opts.TokenOverlap, "token-overlap", wxsim.DefaultTokenOverlap, "how long the previous access token stays valid after a new one")
	fs.DurationVar(&cfg.opts.TicketInterval, "push-interval", wxsim.DefaultTicketInterval, "interval between component_verify_ticket pushes")
	fs.DurationVar(&cfg.opts.TicketLifetime, "ticket-lifetime", wxsim.DefaultTicketLifetime, "validity of a component_verify_ticket")
	fs.DurationVar(&cfg.opts.PreAuthCodeLifetime, "pre-auth-code-lifetime", wxsim.DefaultPreAuthCodeLifetime, "validity of a pre_auth_code")
	fs.DurationVar(&cfg.opts.AuthCodeLifetime, "auth-code-lifetime", wxsim.DefaultAuthCodeLifetime, "validity of an authorization code")
	fs.DurationVar(&cfg.opts.APITicketLifetime, "api-ticket-lifetime", wxsim.DefaultAPITicketLifetime, "lifetime of getticket's jsapi and wx_card tickets (expires_in)")
	fs.BoolVar(&cfg.opts.RotateRefreshTokens, "rotate-refresh-tokens", false, "return a new authorizer_refresh_token on every api_authorizer_token call (the old one then fails with 61023)")
	fs.Func("quota", "daily call limit per component as `api=N` (e.g. api_component_token=2000); repeatable", func(v string) error {
		api, n, ok := strings.Cut(v, "=")
		limit, err := strconv.Atoi(n)
		if !ok || api == "" || err != nil || limit < 0 {
			return errors.New("want api=N")
		}
		if cfg.opts.Quotas == nil {
			cfg.opts.Quotas = map[string]int{}
		}
		cfg.opts.Quotas[api] = limit
		return nil
	})
	fs.IntVar(&cfg.opts.ClearQuotaPerMonth, "clear-quota-per-month", wxsim.DefaultClearQuotaPerMonth, "clear_quota calls allowed per component and month (negative: unlimited)")
	pushOnStart := fs.Bool("push-on-start", true, "push a ticket to every component at start-up instead of after the first interval")
	fs.IntVar(&cfg.opts.PushRetries, "push-retries", wxsim.DefaultPushRetries, "retries of a push the receiver did not answer with \"success\" (0: none)")
	fs.DurationVar(&cfg.opts.PushRetryDelay, "push-retry-delay", wxsim.DefaultPushRetryDelay, "wait before the first push retry (doubles for each further retry)")
	fs.DurationVar(&cfg.opts.PushTimeout, "push-timeout", wxsim.DefaultPushTimeout, "how long the receiver has to answer a push")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	fs.BoolVar(&cfg.logJSON, "log-json", false, "log JSON lines instead of text")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg.opts.PushOnStart = *pushOnStart
	if cfg.opts.PushRetries == 0 {
		cfg.opts.PushRetries = -1 // wxsim reads 0 as "default"
	}
	if cfg.opts.ClearQuotaPerMonth == 0 {
		return nil, errors.New("--clear-quota-per-month must not be 0 (negative: unlimited)")
	}
	cfg.opts.ReceiverURLTemplate = cfg.receiverTemplate
	if cfg.seedFile != "" {
		sf, err := wxsim.LoadSeedFile(cfg.seedFile)
		if err != nil {
			return nil, err
		}
		cfg.opts.Components = append(cfg.opts.Components, sf.Components...)
		cfg.opts.Authorizers = append(cfg.opts.Authorizers, sf.Authorizers...)
		for api, n := range sf.Quotas {
			if _, set := cfg.opts.Quotas[api]; set {
				continue // flags win
			}
			if cfg.opts.Quotas == nil {
				cfg.opts.Quotas = map[string]int{}
			}
			cfg.opts.Quotas[api] = n
		}
	}
	if cfg.comp.AppID != "" {
		cfg.opts.Components = append(cfg.opts.Components, cfg.comp)
		for _, a := range cfg.authorizers {
			cfg.opts.Authorizers = append(cfg.opts.Authorizers, wxsim.AuthorizerSeed{ComponentAppID: cfg.comp.AppID, AppID: a})
		}
	} else if cfg.comp.AppSecret != "" || cfg.comp.Token != "" || cfg.comp.EncodingAESKey != "" || cfg.comp.ReceiverURL != "" || len(cfg.authorizers) > 0 {
		return nil, errors.New("--component-* and --authorizer flags need --component-appid")
	}
	if len(cfg.opts.Components) == 0 {
		return nil, errors.New("no component: give --seed-file or --component-appid (with --component-secret, --component-token and --component-aes-key)")
	}
	return cfg, nil
}

// run is main without the process: it returns the exit code. onListen, if
// set, receives the bound address (tests listen on port 0).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, onListen func(net.Addr)) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "wechat-sim: %v\nRun wechat-sim --help for usage.\n", err)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: cfg.logLevel}
	var h slog.Handler = slog.NewTextHandler(stderr, hopts)
	if cfg.logJSON {
		h = slog.NewJSONHandler(stderr, hopts)
	}
	log := slog.New(h)
	cfg.opts.Logger = log

	sim, err := wxsim.New(cfg.opts)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "wechat-sim: %v\n", err)
		return 2
	}
	defer sim.Close()

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "wechat-sim: %v\n", err)
		return 1
	}
	srv := &http.Server{
		Handler:           sim,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No write timeout: scripted timeouts and latency hold requests on purpose.
	}
	_, _ = fmt.Fprintf(stdout, "wechat-sim listening on http://%s\n", ln.Addr())
	if onListen != nil {
		onListen(ln.Addr())
	}
	for _, c := range sim.State() {
		log.Info("component", "appid", c.AppID, "receiverURL", c.ReceiverURL, "authorizers", len(c.Authorizers))
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	runDone := make(chan error, 1)
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	go func() { runDone <- sim.Run(runCtx) }()

	code := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		log.Error("server failed", "error", err.Error())
		code = 1
	}
	sim.Close() // releases requests held by scripted timeouts
	cancelRun()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	if err := <-runDone; err != nil && !errors.Is(err, context.Canceled) {
		log.Error("push scheduler failed", "error", err.Error())
		code = 1
	}
	return code
}
