/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Command token-consumer is the app of config/samples/consumer_deployment.yaml made to prove
// something (test/cluster): it reads the mounted token Secrets' files before every call, as
// docs/consuming-tokens.md tells apps to, uses each token against WeChat (the simulator) once a
// --interval, and serves on --listen what it saw as JSON (GET /stats): its calls, every call
// WeChat rejected, and when each token value first appeared in its files. It never prints or
// serves a token, only short hashes.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// It uses the standard library only, like a small app would, and to stay well inside the
// sample's 32 MiB memory limit.

// The token Secrets' keys (api/v1alpha1: SecretKeyAccessToken, SecretKeyAppID).
const (
	keyAccessToken = "access_token"
	keyAppID       = "appid"
)

// Stats is what GET /stats answers; test/cluster decodes it.
type Stats struct {
	Calls      map[string]int `json:"calls"`
	Rejections []Rejection    `json:"rejections"`
	// Tokens are the values seen, in order, per kind.
	Tokens []Seen `json:"tokens"`
	// Errors are calls that got no WeChat answer at all (the simulator unreachable).
	Errors int `json:"errors"`
}

// Rejection is a call WeChat answered with a non-zero errcode.
type Rejection struct {
	Kind    string    `json:"kind"`
	Hash    string    `json:"hash"`
	ErrCode int       `json:"errcode"`
	At      time.Time `json:"at"`
}

// Seen is a token value's first appearance in the mounted files.
type Seen struct {
	Kind      string    `json:"kind"`
	Hash      string    `json:"hash"`
	FirstSeen time.Time `json:"first_seen"`
}

type consumer struct {
	wechatURL string
	mu        sync.Mutex
	stats     Stats
	last      map[string]string // kind -> hash of the value in use
}

func main() {
	var (
		listen       = flag.String("listen", ":8080", "address of GET /stats and /healthz")
		wechatURL    = flag.String("wechat-api-url", "http://198.18.0.100:8090", "WeChat's API (the simulator)")
		interval     = flag.Duration("interval", time.Second, "time between two uses of each token")
		componentDir = flag.String("component-dir", "/var/run/secrets/wechat/component", "mounted component token Secret (empty: none)")
		authorizer   = flag.String("authorizer-dir", "/var/run/secrets/wechat/authorizer", "mounted authorizer token Secret (empty: none)")
	)
	flag.Parse()
	c := &consumer{wechatURL: *wechatURL, last: map[string]string{},
		stats: Stats{Calls: map[string]int{}, Rejections: []Rejection{}, Tokens: []Seen{}}}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.stats)
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Fatalf("listen: %v", err)
		}
	}()

	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		if *componentDir != "" {
			c.use(ctx, "component", *componentDir)
		}
		if *authorizer != "" {
			c.use(ctx, "authorizer", *authorizer)
		}
		select {
		case <-ctx.Done():
			shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
			return
		case <-tick.C:
		}
	}
}

// use reads the token of kind from dir (as an app must: every time) and calls WeChat with it.
func (c *consumer) use(ctx context.Context, kind, dir string) {
	token, err := os.ReadFile(filepath.Join(dir, keyAccessToken))
	if err != nil || len(token) == 0 {
		return // not issued yet
	}
	appID, _ := os.ReadFile(filepath.Join(dir, keyAppID))
	hash := tokenHash(string(token))
	now := time.Now()
	c.mu.Lock()
	if c.last[kind] != hash {
		c.last[kind] = hash
		c.stats.Tokens = append(c.stats.Tokens, Seen{Kind: kind, Hash: hash, FirstSeen: now})
		log.Printf("%s token changed: now %s", kind, hash)
	}
	c.mu.Unlock()

	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	errcode, err := c.call(callCtx, kind, strings.TrimSpace(string(appID)), string(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Calls[kind]++
	switch {
	case err != nil:
		c.stats.Errors++
		log.Printf("%s token %s: no answer: %v", kind, hash, err)
	case errcode != 0:
		c.stats.Rejections = append(c.stats.Rejections, Rejection{Kind: kind, Hash: hash, ErrCode: errcode, At: now})
		log.Printf("%s token %s REJECTED: errcode %d", kind, hash, errcode)
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// call uses a token the way an app does: a component_access_token creates a pre_auth_code,
// an authorizer_access_token calls one of the account's APIs (get_api_domain_ip). It returns
// WeChat's errcode.
func (c *consumer) call(ctx context.Context, kind, appID, token string) (int, error) {
	method, u, body := http.MethodGet, c.wechatURL+"/cgi-bin/get_api_domain_ip?access_token="+url.QueryEscape(token), []byte(nil)
	if kind == "component" {
		method = http.MethodPost
		u = c.wechatURL + "/cgi-bin/component/api_create_preauthcode?component_access_token=" + url.QueryEscape(token)
		body, _ = json.Marshal(map[string]string{"component_appid": appID})
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("building the request failed")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		// A url.Error quotes the URL, which carries the token: keep only its cause.
		if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
			err = uerr.Err
		}
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	var answer struct {
		ErrCode int `json:"errcode"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &answer) != nil {
		return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return answer.ErrCode, nil
}

// tokenHash is a short hash of a token, safe to print (test/harness.TokenHash, the same).
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}
