/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// The platform every server serves: one component's keys, accounts wx…0001 to wx…1000 bound
// to their original ids gh_…0001 to gh_…1000.
const (
	benchNamespace = "bench"
	componentName  = "platform"
	platformAppID  = "wx00000000000000aa"
	token          = "messagebenchtoken2026"
	encodingAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	forwardKey     = "messagebench-hmac-key-0123456789"
)

func accountAppID(i int) string { return fmt.Sprintf("wx%016x", i+1) }
func originalID(i int) string   { return fmt.Sprintf("gh_%012x", i+1) }

// buildReceiver builds cmd/webhook-receiver from root.
func buildReceiver(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/webhook-receiver")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/webhook-receiver: %w\n%s", err, b)
	}
	return nil
}

// seed writes what the manager would have: the component forwarding to the stand-in, its
// keys and HMAC key in the keyring, and the accounts' WeChatAuthorizers with their original
// ids in status.info (the receiver forwards only messages bound to a known account).
func seed(ctx context.Context, cp *harness.ControlPlane, accounts int, standInURL string) error {
	c := cp.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}); err != nil {
		return err
	}
	if err := c.Create(ctx, &wechatv1alpha1.WeChatComponent{
		ObjectMeta: metav1.ObjectMeta{Name: componentName, Namespace: benchNamespace},
		Spec: wechatv1alpha1.WeChatComponentSpec{
			AppID:                platformAppID,
			CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: "creds"},
			Messages: wechatv1alpha1.ComponentMessages{Forward: &wechatv1alpha1.MessageForwarding{
				URL: standInURL, HMACKeySecretRef: wechatv1alpha1.HMACKeySecretReference{Name: "hmac"}}},
		},
	}); err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: keyring.DefaultSecretName, Namespace: harness.OperatorNamespace},
		Data: map[string][]byte{
			keyring.TokenKey(benchNamespace, componentName):      []byte(token),
			keyring.AESKeyKey(benchNamespace, componentName):     []byte(encodingAESKey),
			keyring.ForwardKeyKey(benchNamespace, componentName): []byte(forwardKey),
		},
	}); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range accounts {
		g.Go(func() error {
			a := &wechatv1alpha1.WeChatAuthorizer{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("account-%04d", i), Namespace: benchNamespace},
				Spec: wechatv1alpha1.WeChatAuthorizerSpec{
					ComponentRef: wechatv1alpha1.LocalObjectReference{Name: componentName}, AppID: accountAppID(i)},
			}
			if err := c.Create(gctx, a); err != nil {
				return err
			}
			a.Status.Info = &wechatv1alpha1.AuthorizerInfo{UserName: originalID(i)}
			return c.Status().Update(gctx, a)
		})
	}
	return g.Wait()
}

// standIn is the in-cluster app: it answers every forward at once, with an empty body or
// (reply mode) a passive text reply the server must encrypt and sign. It counts what it got.
type standIn struct {
	reply atomic.Bool
	hits  atomic.Int64
	srv   *http.Server
	URL   string
}

var standInReply = []byte("<xml><ToUserName><![CDATA[obenchuser]]></ToUserName><FromUserName><![CDATA[gh_000000000001]]></FromUserName>" +
	"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[pong]]></Content></xml>")

func startStandIn() (*standIn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &standIn{URL: "http://" + ln.Addr().String() + "/wechat/messages"}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("X-WeChat-Operator-Signature") == "" {
			http.Error(w, "unsigned", http.StatusBadRequest)
			return
		}
		s.hits.Add(1)
		if s.reply.Load() {
			w.Header().Set("Content-Type", "text/xml")
			_, _ = w.Write(standInReply)
		}
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// target is one server under test, a process whose CPU time is read from /proc.
type target struct {
	name string
	proc *harness.Process
	// url is the message URL of account i.
	url func(i int) string
}

// metricValue reads one unlabelled sample from a Prometheus text page.
func metricValue(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", url, name)
}

// startServe starts this program as a --serve process.
func startServe(self, mode, logDir, forwardURL string, accounts int) (*target, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := harness.Start(mode, self, filepath.Join(logDir, mode+".log"), "--serve", mode, "--listen", addr,
		"--forward-url", forwardURL, "--accounts-bound", strconv.Itoa(accounts))
	if err != nil {
		return nil, err
	}
	return &target{name: mode, proc: p, url: func(i int) string { return "http://" + addr + "/messages/" + accountAppID(i) }}, nil
}
