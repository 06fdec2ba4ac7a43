/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

const (
	tNamespace      = "team-a"
	tComponent      = "platform"
	tComponentAppID = "wx0123456789abcdef"
	tToken          = "receiver-test-token"
	tAESKey         = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	tAccountAppID   = "wx1a2b3c4d5e6f7a8b"
	tAccountUser    = "gh_1a2b3c4d5e6f"
	tComponentKey   = "component-hmac-key-0123456789"
	tAuthorizerKey  = "authorizer-hmac-key-9876543210"
)

var tStart = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// lockedBuffer collects log lines from the handler goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) add(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s + "\n")
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// msgEnv is a receiver on a fake API server, reached over real HTTP by the simulator.
type msgEnv struct {
	t       *testing.T
	clock   *clocktesting.FakeClock
	client  client.Client
	server  *Server
	url     string
	sim     *wxsim.Simulator
	reg     *prometheus.Registry
	metrics *Metrics
	logs    *lockedBuffer
	// failStatusWrites makes the API server refuse status writes; apiLists counts the
	// uncached LISTs the receiver makes.
	failStatusWrites atomic.Bool
	apiLists         atomic.Int32
	recorder         *events.FakeRecorder
	// componentGets records, for each WeChatComponent read from the cache, whether the reader
	// was told not to deep-copy it (the object would then be the cache's own).
	componentGetsMu sync.Mutex
	componentGets   []bool
}

// componentGetRecorder is the receiver's cache reader in these tests: e.client, recording the
// options of WeChatComponent reads.
type componentGetRecorder struct {
	client.Reader
	e *msgEnv
}

func (r *componentGetRecorder) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*wechatv1alpha1.WeChatComponent); ok {
		var o client.GetOptions
		o.ApplyOptions(opts)
		r.e.componentGetsMu.Lock()
		r.e.componentGets = append(r.e.componentGets, o.UnsafeDisableDeepCopy != nil && *o.UnsafeDisableDeepCopy)
		r.e.componentGetsMu.Unlock()
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

func (e *msgEnv) recordedComponentGets() []bool {
	e.componentGetsMu.Lock()
	defer e.componentGetsMu.Unlock()
	return append([]bool(nil), e.componentGets...)
}

type envOption func(*wechatv1alpha1.WeChatComponent, *corev1.Secret, *Options)

func newMsgEnv(t *testing.T, opts ...envOption) *msgEnv {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := wechatv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	component := &wechatv1alpha1.WeChatComponent{
		ObjectMeta: metav1.ObjectMeta{Name: tComponent, Namespace: tNamespace},
		Spec: wechatv1alpha1.WeChatComponentSpec{
			AppID: tComponentAppID, CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: "creds"},
		},
	}
	keyringSecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: keyring.DefaultSecretName, Namespace: "operator"},
		Data: map[string][]byte{
			keyring.TokenKey(tNamespace, tComponent):  []byte(tToken),
			keyring.AESKeyKey(tNamespace, tComponent): []byte(tAESKey),
		},
	}
	e := &msgEnv{t: t, clock: clocktesting.NewFakeClock(tStart), reg: prometheus.NewRegistry(), logs: &lockedBuffer{}}
	e.metrics = NewMetrics(e.reg)
	o := Options{
		Keyring: types.NamespacedName{Namespace: "operator", Name: keyring.DefaultSecretName},
		Clock:   e.clock,
		Metrics: e.metrics,
		// The test apps are httptest servers on loopback, not in-cluster Services.
		ForwardAllowedHosts: []string{"127.0.0.1"},
		Logger: funcr.New(func(prefix, args string) { e.logs.add(prefix + " " + args) },
			funcr.Options{Verbosity: 5}),
	}
	for _, opt := range opts {
		opt(component, keyringSecret, &o)
	}
	e.client = fake.NewClientBuilder().WithScheme(s).WithObjects(component, keyringSecret).
		WithStatusSubresource(&wechatv1alpha1.WeChatComponent{}, &wechatv1alpha1.WeChatAuthorizer{}).
		WithIndex(&wechatv1alpha1.WeChatAuthorizer{}, AuthorizerIndex, authorizerIndexValues).Build()
	// As in production (cmd/webhook-receiver): messages find their account through the index.
	o.Reader = &componentGetRecorder{Reader: e.client, e: e}
	o.AuthorizersIndexed = true
	o.Client = interceptor.NewClient(e.client.(client.WithWatch), interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if e.failStatusWrites.Load() {
				return apierrors.NewServiceUnavailable("etcd is having a moment")
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	o.APIReader = interceptor.NewClient(e.client.(client.WithWatch), interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			e.apiLists.Add(1)
			return c.List(ctx, list, opts...)
		},
	})
	e.recorder = events.NewFakeRecorder(100)
	o.Recorder = e.recorder
	e.server = New(o)
	srv := httptest.NewServer(e.server.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL

	e.sim = wxsim.MustNew(wxsim.Options{
		Clock: e.clock,
		Components: []wxsim.ComponentSeed{{
			AppID: tComponentAppID, AppSecret: "secret", Token: tToken, EncodingAESKey: tAESKey,
			MessageURL: srv.URL + "/wechat/" + tNamespace + "/" + tComponent + "/messages/$APPID$",
		}},
		Authorizers: []wxsim.AuthorizerSeed{{ComponentAppID: tComponentAppID, AppID: tAccountAppID, UserName: tAccountUser, Authorized: true}},
	})
	t.Cleanup(e.sim.Close)
	return e
}

func withForward(target *wechatv1alpha1.MessageForwarding) envOption {
	return func(c *wechatv1alpha1.WeChatComponent, k *corev1.Secret, _ *Options) {
		c.Spec.Messages.Forward = target
		k.Data[keyring.ForwardKeyKey(tNamespace, tComponent)] = []byte(tComponentKey)
	}
}

// addAccount creates the WeChatAuthorizer name for appID, its original id userName in
// status.info as its controller writes it ("" leaves info unset), forwarding to fw (or not).
func (e *msgEnv) addAccount(name, appID, userName string, fw *wechatv1alpha1.MessageForwarding) {
	e.t.Helper()
	ctx := context.Background()
	a := &wechatv1alpha1.WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tNamespace},
		Spec: wechatv1alpha1.WeChatAuthorizerSpec{
			ComponentRef: wechatv1alpha1.LocalObjectReference{Name: tComponent}, AppID: appID,
			Messages: wechatv1alpha1.AuthorizerMessages{Forward: fw},
		},
	}
	if err := e.client.Create(ctx, a); err != nil {
		e.t.Fatal(err)
	}
	if userName == "" {
		return
	}
	a.Status.Info = &wechatv1alpha1.AuthorizerInfo{UserName: userName}
	if err := e.client.Status().Update(ctx, a); err != nil {
		e.t.Fatal(err)
	}
}

func (e *msgEnv) send(msgType, content, event string) wxsim.MessageReply {
	e.t.Helper()
	return e.sendAs(tAccountAppID, msgType, content, event)
}

func (e *msgEnv) sendAs(appID, msgType, content, event string) wxsim.MessageReply {
	e.t.Helper()
	reply, err := e.sim.SendMessage(context.Background(), wxsim.MessageRequest{ComponentAppID: tComponentAppID,
		AuthorizerAppID: appID, FromUser: "oUser_0123456789abcdefghijklm", MsgType: msgType, Content: content, Event: event})
	if err != nil {
		e.t.Fatalf("SendMessage: %v", err)
	}
	return reply
}

func (e *msgEnv) component() *wechatv1alpha1.WeChatComponent {
	e.t.Helper()
	c := &wechatv1alpha1.WeChatComponent{}
	if err := e.client.Get(context.Background(), types.NamespacedName{Namespace: tNamespace, Name: tComponent}, c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *msgEnv) messages(result string) float64 {
	total := 0.0
	for _, account := range []string{accountKnown, accountUnknown, accountUnbound, accountMismatch, accountUnverified} {
		for _, mt := range []string{"text", "event", "unknown", "other"} {
			total += counterValue(e.metrics.Messages.WithLabelValues(mt, account, result))
		}
	}
	return total
}

func (e *msgEnv) forwards(result string) float64 {
	return counterValue(e.metrics.Forwards.WithLabelValues(result))
}

// counterValue reads one counter series.
func counterValue(c prometheus.Counter) float64 {
	m := &dto.Metric{}
	if err := c.Write(m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// app is an in-cluster endpoint messages are forwarded to.
type app struct {
	mu       sync.Mutex
	requests []*forwarded
	answer   func(w http.ResponseWriter, r *http.Request, body []byte)
	srv      *httptest.Server
}

type forwarded struct {
	header http.Header
	body   []byte
}

func newApp(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body []byte)) *app {
	a := &app{answer: answer}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.requests = append(a.requests, &forwarded{header: r.Header.Clone(), body: body})
		a.mu.Unlock()
		a.answer(w, r, body)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) received() []*forwarded {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*forwarded(nil), a.requests...)
}

func TestReleaseTestResponderPassesEveryPublishedTestAccount(t *testing.T) {
	for _, account := range ReleaseTestAccounts {
		t.Run(account.UserName, func(t *testing.T) {
			e := newMsgEnv(t)
			appID := account.AppID
			if appID == "" {
				// Published without its appid: detected by its original id alone.
				appID = "wx00000000000000aa"
			}
			rt, err := e.sim.StartReleaseTest(context.Background(), tComponentAppID,
				wxsim.ReleaseTestAccount{AppID: appID, UserName: account.UserName})
			if err != nil {
				t.Fatalf("the 全网发布 test failed: %v", err)
			}
			if rt.Event.Content != "LOCATIONfrom_callback" || rt.Text.Content != "TESTCOMPONENT_MSG_TYPE_TEXT_callback" {
				t.Fatalf("replies = %q, %q", rt.Event.Content, rt.Text.Content)
			}
			if len(rt.QueryAuth.Body) != 0 {
				t.Fatalf("QUERY_AUTH_CODE answer = %q, want an empty body", rt.QueryAuth.Body)
			}
			pending := e.component().Status.PendingTestReplies
			if len(pending) != 1 {
				t.Fatalf("pendingTestReplies = %+v, want the one code", pending)
			}
			p := pending[0]
			if p.Code != rt.Code || p.ToUser != rt.User || p.AuthorizerAppID != appID {
				t.Fatalf("recorded %+v; want code of the test, user %s, account %s", p, rt.User, appID)
			}
			if !p.ReceivedAt.Time.Equal(tStart) || !p.ExpiresAt.Time.Equal(tStart.Add(time.Hour)) {
				t.Fatalf("recorded at %s, expiring %s", p.ReceivedAt, p.ExpiresAt)
			}
			if got := e.messages(msgTestReply); got != 2 {
				t.Errorf("test_reply messages = %v, want 2", got)
			}
			if got := e.messages(msgTestRecorded); got != 1 {
				t.Errorf("test_recorded messages = %v, want 1", got)
			}
			// Unknown to the cluster (no WeChatAuthorizer), yet verified and answered.
			if got := counterValue(e.metrics.Messages.WithLabelValues("text", accountUnknown, msgTestReply)); got != 1 {
				t.Errorf("text test replies counted for an unknown account = %v, want 1", got)
			}
			for _, secret := range []string{rt.Code, rt.User, tToken, tAESKey, "TESTCOMPONENT_MSG_TYPE_TEXT"} {
				if strings.Contains(e.logs.String(), secret) {
					t.Errorf("the logs contain %q", secret)
				}
			}
		})
	}
}

func TestQueryAuthCodeIsRecordedOnce(t *testing.T) {
	e := newMsgEnv(t)
	account := ReleaseTestAccounts[1]
	code := "queryauthcode@@@" + strings.Repeat("x", 40)
	for i := 0; i < 2; i++ {
		// Two deliveries of the same code (a retry with a new nonce).
		if r := e.sendAs(account.AppID, "text", "QUERY_AUTH_CODE:"+code, ""); r.StatusCode != 200 || len(r.Body) != 0 {
			t.Fatalf("answer %d: HTTP %d %q", i, r.StatusCode, r.Body)
		}
	}
	if got := len(e.component().Status.PendingTestReplies); got != 1 {
		t.Fatalf("pendingTestReplies has %d entries, want 1", got)
	}
	// A code of a shape WeChat never sends is answered but not recorded.
	if r := e.sendAs(account.AppID, "text", "QUERY_AUTH_CODE:<bad>", ""); r.StatusCode != 200 {
		t.Fatalf("HTTP %d", r.StatusCode)
	}
	if got := len(e.component().Status.PendingTestReplies); got != 1 {
		t.Fatalf("pendingTestReplies has %d entries after a malformed code, want 1", got)
	}
}

func TestPendingTestRepliesAreBounded(t *testing.T) {
	e := newMsgEnv(t)
	account := ReleaseTestAccounts[1]
	for i := 0; i < maxPendingReplies+3; i++ {
		e.sendAs(account.AppID, "text", "QUERY_AUTH_CODE:code-number-"+strconv.Itoa(i), "")
	}
	pending := e.component().Status.PendingTestReplies
	if len(pending) != maxPendingReplies {
		t.Fatalf("pendingTestReplies has %d entries, want %d", len(pending), maxPendingReplies)
	}
	if pending[len(pending)-1].Code != "code-number-"+strconv.Itoa(maxPendingReplies+2) || pending[0].Code != "code-number-3" {
		t.Fatalf("kept %s … %s, want the newest", pending[0].Code, pending[len(pending)-1].Code)
	}
}

func TestTestResponderIgnoresOtherAccountsAndCanBeTurnedOff(t *testing.T) {
	cases := map[string]struct {
		opt   envOption
		appID string
	}{
		"an ordinary account": {nil, tAccountAppID},
		"responder disabled": {func(c *wechatv1alpha1.WeChatComponent, _ *corev1.Secret, _ *Options) {
			c.Spec.Messages.TestResponder = wechatv1alpha1.TestResponderDisabled
		}, ReleaseTestAccounts[1].AppID},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var opts []envOption
			if tc.opt != nil {
				opts = append(opts, tc.opt)
			}
			e := newMsgEnv(t, opts...)
			for _, r := range []wxsim.MessageReply{
				e.sendAs(tc.appID, "text", "TESTCOMPONENT_MSG_TYPE_TEXT", ""),
				e.sendAs(tc.appID, "event", "", "LOCATION"),
				e.sendAs(tc.appID, "text", "QUERY_AUTH_CODE:queryauthcode@@@abcdefghijkl", ""),
			} {
				if r.StatusCode != 200 || strings.TrimSpace(string(r.Body)) != "success" {
					t.Fatalf("answer HTTP %d %q, want success without a reply", r.StatusCode, r.Body)
				}
			}
			if n := len(e.component().Status.PendingTestReplies); n != 0 {
				t.Fatalf("%d test replies recorded, want none", n)
			}
			if got := e.messages(msgAnswered); got != 3 {
				t.Fatalf("answered = %v, want 3", got)
			}
		})
	}
}

func TestForwardingDeliversSignedPlaintextAndEncryptsTheReply(t *testing.T) {
	var e *msgEnv
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		var m message
		_ = xml.Unmarshal(body, &m)
		var b bytes.Buffer
		b.WriteString("<xml><ToUserName>")
		writeCDATA(&b, m.FromUserName)
		b.WriteString("</ToUserName><FromUserName>")
		writeCDATA(&b, m.ToUserName)
		b.WriteString("</FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>")
		writeCDATA(&b, "echo: "+m.Content)
		b.WriteString("</Content></xml>")
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write(b.Bytes())
	})
	e = newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: a.srv.URL + "/wechat", Timeout: "2s"}))
	e.addAccount("shop", tAccountAppID, tAccountUser, nil)

	reply := e.send("text", "hello ]]> world", "")
	if reply.StatusCode != 200 || reply.Empty {
		t.Fatalf("answer HTTP %d %q, want an encrypted reply", reply.StatusCode, reply.Body)
	}
	if reply.Content != "echo: hello ]]> world" || reply.ToUserName != "oUser_0123456789abcdefghijklm" || reply.FromUserName != tAccountUser {
		t.Fatalf("decrypted reply = %+v", reply)
	}
	got := a.received()
	if len(got) != 1 {
		t.Fatalf("the app got %d requests, want 1", len(got))
	}
	f := got[0]
	m, err := parseMessage(f.body)
	if err != nil || m.Content != "hello ]]> world" || m.ToUserName != tAccountUser || m.MsgType != "text" {
		t.Fatalf("the app got %q (%v), want the decrypted message", f.body, err)
	}
	ts := f.header.Get(HeaderTimestamp)
	if ts != strconv.FormatInt(tStart.Unix(), 10) {
		t.Errorf("timestamp header = %q", ts)
	}
	if f.header.Get(HeaderAuthorizerAppID) != tAccountAppID || f.header.Get(HeaderComponent) != tNamespace+"/"+tComponent {
		t.Errorf("headers = %v", f.header)
	}
	sig := f.header.Get(HeaderSignature)
	if !VerifyForwardSignature([]byte(tComponentKey), ts, tAccountAppID, f.body, sig) {
		t.Fatalf("signature %q does not verify with the component's key", sig)
	}
	if VerifyForwardSignature([]byte(tAuthorizerKey), ts, tAccountAppID, f.body, sig) ||
		VerifyForwardSignature([]byte(tComponentKey), ts, tAccountAppID, append(f.body, ' '), sig) ||
		VerifyForwardSignature([]byte(tComponentKey), ts, "wx0000000000000000", f.body, sig) {
		t.Fatal("the signature verifies with another key, body or appid")
	}
	if e.forwards(forwardReplied) != 1 || e.messages(msgForwarded) != 1 {
		t.Fatalf("forwards replied = %v, messages forwarded = %v", e.forwards(forwardReplied), e.messages(msgForwarded))
	}
	if strings.Contains(e.logs.String(), "hello") || strings.Contains(e.logs.String(), tComponentKey) {
		t.Fatal("the logs contain the message or the HMAC key")
	}
}

func TestAnAuthorizersTargetOverridesTheComponents(t *testing.T) {
	componentApp := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, "success") })
	authorizerApp := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, "success") })
	e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: componentApp.srv.URL}),
		func(_ *wechatv1alpha1.WeChatComponent, k *corev1.Secret, _ *Options) {
			k.Data[keyring.AuthorizerForwardKeyKey(tNamespace, "shop")] = []byte(tAuthorizerKey)
		})
	e.addAccount("shop", tAccountAppID, tAccountUser, &wechatv1alpha1.MessageForwarding{URL: authorizerApp.srv.URL})
	const otherAppID = "wx00000000000000bb"
	e.addAccount("cafe", otherAppID, "gh_000000000000", nil) // the simulator's original id of otherAppID
	if r := e.send("event", "", "subscribe"); !r.Empty {
		t.Fatalf("answer %q, want success", r.Body)
	}
	if len(componentApp.received()) != 0 || len(authorizerApp.received()) != 1 {
		t.Fatalf("component app got %d, authorizer app %d; want 0 and 1", len(componentApp.received()), len(authorizerApp.received()))
	}
	f := authorizerApp.received()[0]
	if !VerifyForwardSignature([]byte(tAuthorizerKey), f.header.Get(HeaderTimestamp), tAccountAppID, f.body, f.header.Get(HeaderSignature)) {
		t.Fatal("not signed with the authorizer's key")
	}
	if got := counterValue(e.metrics.Messages.WithLabelValues("event", accountKnown, msgForwarded)); got != 1 {
		t.Fatalf("forwarded events of a known account = %v", got)
	}

	// Another account of the platform whose WeChatAuthorizer names no target: the component's default.
	if r := e.sendAs(otherAppID, "text", "hi", ""); !r.Empty {
		t.Fatalf("answer %q, want success", r.Body)
	}
	if len(componentApp.received()) != 1 {
		t.Fatalf("component app got %d messages, want 1", len(componentApp.received()))
	}
	if got := counterValue(e.metrics.Messages.WithLabelValues("text", accountKnown, msgForwarded)); got != 1 {
		t.Fatalf("forwarded texts of a known account = %v", got)
	}

	// An account with no WeChatAuthorizer: answered, forwarded nowhere.
	if r := e.sendAs("wx00000000000000cc", "text", "hi", ""); !r.Empty {
		t.Fatalf("answer %q, want success", r.Body)
	}
	if len(componentApp.received()) != 1 || len(authorizerApp.received()) != 1 {
		t.Fatalf("a message of an account the cluster does not know was forwarded")
	}
	if got := counterValue(e.metrics.Messages.WithLabelValues("text", accountUnknown, msgAnswered)); got != 1 {
		t.Fatalf("answered texts of an unknown account = %v", got)
	}
}

func TestSlowAndFailingAppsDoNotHoldWeChat(t *testing.T) {
	release := make(chan struct{})
	slowStarted := make(chan struct{}, 1)
	slow := newApp(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		slowStarted <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "<xml><Content>too late</Content></xml>")
	})
	// Let the slow handler go before its server closes (cleanups run last-in first-out).
	t.Cleanup(func() { close(release) })
	failing := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	garbage := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, "not a reply") })

	cases := map[string]struct {
		url    string
		result string
	}{
		"an app that does not answer in time": {slow.srv.URL, forwardTimeout},
		"an app that answers 500":             {failing.srv.URL, forwardError},
		"an app that answers garbage":         {garbage.srv.URL, forwardBadReply},
		"an app that is not there":            {"http://127.0.0.1:1/none", forwardError},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: tc.url, Timeout: "300ms"}))
			e.addAccount("shop", tAccountAppID, tAccountUser, nil)
			start := time.Now()
			r := e.send("text", "hello", "")
			elapsed := time.Since(start)
			if r.StatusCode != 200 || !r.Empty || strings.TrimSpace(string(r.Body)) != "success" {
				t.Fatalf("answer HTTP %d %q, want success", r.StatusCode, r.Body)
			}
			if elapsed > 2*time.Second {
				t.Fatalf("WeChat waited %s; the forward deadline is 300ms", elapsed)
			}
			if tc.result == forwardTimeout {
				select {
				case <-slowStarted:
				default:
					t.Fatal("the slow app never got the message")
				}
				if elapsed < 300*time.Millisecond {
					t.Fatalf("answered after %s, before the deadline: the app was not waited for", elapsed)
				}
			}
			if got := e.forwards(tc.result); got != 1 {
				t.Fatalf("forwards{result=%q} = %v, want 1", tc.result, got)
			}
		})
	}
}

func TestTheForwardDeadlineIsCapped(t *testing.T) {
	e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: "http://app", Timeout: "30s"}))
	target := e.server.forwardTargetFor(e.component(), nil)
	if target.timeout != MaxForwardTimeout {
		t.Fatalf("timeout = %s, want the %s cap", target.timeout, MaxForwardTimeout)
	}
	e2 := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: "http://app"}))
	if got := e2.server.forwardTargetFor(e2.component(), nil).timeout; got != DefaultForwardTimeout {
		t.Fatalf("default timeout = %s, want %s", got, DefaultForwardTimeout)
	}
}

// Concurrent forwards to one app keep their connections alive: a second burst as large as
// the first dials (almost) nothing new. Go's default pool keeps 2 idle connections per host,
// which made every burst dial again (2 kept, 6 dialled for 8).
func TestConcurrentForwardsReuseTheirConnections(t *testing.T) {
	const burst = 8
	arrived := make(chan struct{}, burst)
	var gate atomic.Pointer[chan struct{}]
	var mu sync.Mutex
	conns := map[string]bool{}
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		g := *gate.Load()
		arrived <- struct{}{}
		<-g // every forward of the burst is in flight at once, each on its own connection
		_, _ = io.WriteString(w, "success")
	})
	e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: a.srv.URL, Timeout: "4s"}))
	e.addAccount("shop", tAccountAppID, tAccountUser, nil)
	for round := range 2 {
		g := make(chan struct{})
		gate.Store(&g)
		errs := make(chan error, burst)
		for i := range burst {
			go func() {
				_, err := e.sim.SendMessage(context.Background(), wxsim.MessageRequest{ComponentAppID: tComponentAppID,
					AuthorizerAppID: tAccountAppID, FromUser: "oUser_0123456789abcdefghijklm", MsgType: "text",
					Content: fmt.Sprintf("burst %d message %d", round, i)})
				errs <- err
			}()
		}
		for range burst {
			<-arrived
		}
		close(g)
		for range burst {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	if e.forwards(forwardNoReply) != 2*burst {
		t.Fatalf("forwards answered = %v, want %d", e.forwards(forwardNoReply), 2*burst)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) > burst+2 {
		t.Fatalf("%d forwards in two bursts of %d used %d connections; the second burst should reuse the first's", 2*burst, burst, len(conns))
	}
}

func TestNoKeyNoForward(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, "success") })
	e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: a.srv.URL}),
		func(_ *wechatv1alpha1.WeChatComponent, k *corev1.Secret, _ *Options) {
			delete(k.Data, keyring.ForwardKeyKey(tNamespace, tComponent))
		})
	e.addAccount("shop", tAccountAppID, tAccountUser, nil)
	if r := e.send("text", "hello", ""); !r.Empty {
		t.Fatalf("answer %q, want success", r.Body)
	}
	if len(a.received()) != 0 || e.forwards(forwardNoKey) != 1 {
		t.Fatalf("the app got %d messages without a signing key; no_key = %v", len(a.received()), e.forwards(forwardNoKey))
	}
}

func TestARepeatedMessageIsForwardedOnce(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, "success") })
	e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: a.srv.URL}))
	e.addAccount("shop", tAccountAppID, tAccountUser, nil)
	path, query, body := e.sealed(tAccountAppID, wxMessage(tAccountUser, "text", "hello"), tComponentAppID)
	for i := 0; i < 2; i++ {
		resp := e.post(path, query, body)
		if resp.code != 200 || resp.body != "success" {
			t.Fatalf("attempt %d: HTTP %d %q", i, resp.code, resp.body)
		}
	}
	if len(a.received()) != 1 || e.messages(resultDuplicate) != 1 {
		t.Fatalf("the app got %d copies; duplicates = %v", len(a.received()), e.messages(resultDuplicate))
	}
}

// --- bad pushes ---------------------------------------------------------------

type answer struct {
	code int
	body string
}

func (e *msgEnv) post(path, query string, body []byte) answer {
	e.t.Helper()
	resp, err := http.Post(e.url+path+"?"+query, "text/xml", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, strings.TrimSpace(string(b))}
}

func wxMessage(toUser, msgType, content string) []byte {
	return []byte("<xml><ToUserName><![CDATA[" + toUser + "]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName>" +
		"<CreateTime>1</CreateTime><MsgType><![CDATA[" + msgType + "]]></MsgType><Content><![CDATA[" + content + "]]></Content></xml>")
}

// sealed encrypts msg as WeChat does, with the crypter of appID (the component's for a good
// message), and returns the path, query and body of the request.
func (e *msgEnv) sealed(accountAppID string, msg []byte, cryptAppID string) (string, string, []byte) {
	e.t.Helper()
	c, err := wxcrypto.NewCrypter(tToken, tAESKey, cryptAppID)
	if err != nil {
		e.t.Fatal(err)
	}
	enc, err := c.Encrypt(msg)
	if err != nil {
		e.t.Fatal(err)
	}
	ts, nonce := strconv.FormatInt(e.clock.Now().Unix(), 10), "1234567890"
	body := []byte("<xml><ToUserName><![CDATA[" + tAccountUser + "]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
	query := "timestamp=" + ts + "&nonce=" + nonce + "&encrypt_type=aes&msg_signature=" + wxcrypto.Signature(tToken, ts, nonce, enc)
	return "/wechat/" + tNamespace + "/" + tComponent + "/messages/" + accountAppID, query, body
}

func TestBadMessagesAreRejected(t *testing.T) {
	e := newMsgEnv(t)
	good := wxMessage(tAccountUser, "text", "hello")
	path, query, body := e.sealed(tAccountAppID, good, tComponentAppID)

	otherPath, otherQuery, otherBody := e.sealed(tAccountAppID, good, "wx9999999999999999")
	_, _, mismatched := e.sealed(tAccountAppID, wxMessage("gh_someoneelse00", "text", "hello"), tComponentAppID)
	_, _, notAMessage := e.sealed(tAccountAppID, []byte("<xml><Nothing/></xml>"), tComponentAppID)
	stale := strings.Replace(query, "timestamp="+strconv.FormatInt(tStart.Unix(), 10),
		"timestamp="+strconv.FormatInt(tStart.Add(-time.Hour).Unix(), 10), 1)
	badSig := query[:len(query)-4] + "0000"
	// Same signature, ciphertext one block short: padding and length checks fail.
	enc := body[strings.Index(string(body), "<Encrypt><![CDATA[")+18 : strings.Index(string(body), "]]></Encrypt>")]
	truncEnc := string(enc[:len(enc)-44])
	truncBody := []byte("<xml><ToUserName><![CDATA[" + tAccountUser + "]]></ToUserName><Encrypt><![CDATA[" + truncEnc + "]]></Encrypt></xml>")
	q := strings.Split(query, "&")
	truncQuery := strings.Join(q[:3], "&") + "&msg_signature=" + wxcrypto.Signature(tToken, strconv.FormatInt(tStart.Unix(), 10), "1234567890", truncEnc)

	cases := map[string]struct {
		path, query string
		body        []byte
		status      int
		result      string
	}{
		"a wrong signature":                      {path, badSig, body, http.StatusForbidden, resultRejected},
		"a stale timestamp":                      {path, stale, body, http.StatusBadRequest, resultRejected},
		"another platform's appid":               {otherPath, otherQuery, otherBody, http.StatusBadRequest, resultRejected},
		"a truncated ciphertext":                 {path, truncQuery, truncBody, http.StatusBadRequest, resultRejected},
		"an envelope for another account":        {path, mismatchedQuery(e, mismatched), mismatched, http.StatusBadRequest, resultRejected},
		"a plaintext that is not a message":      {path, mismatchedQuery(e, notAMessage), notAMessage, http.StatusBadRequest, resultRejected},
		"a malformed appid in the path":          {"/wechat/" + tNamespace + "/" + tComponent + "/messages/gh_x", query, body, http.StatusNotFound, resultRejected},
		"an unknown component":                   {"/wechat/" + tNamespace + "/nope/messages/" + tAccountAppID, query, body, http.StatusNotFound, resultUnknown},
		"a body over the cap":                    {path, query, bytes.Repeat([]byte("x"), DefaultMaxBodyBytes+1), http.StatusRequestEntityTooLarge, resultTooLarge},
		"no Encrypt at all":                      {path, query, []byte("<xml><ToUserName>gh</ToUserName></xml>"), http.StatusBadRequest, resultRejected},
		"the good message, for the record":       {path, query, body, http.StatusOK, msgAnswered},
		"the good message again is a duplicate!": {path, query, body, http.StatusOK, resultDuplicate},
	}
	// The good message must go before its duplicate.
	order := []string{
		"a wrong signature", "a stale timestamp", "another platform's appid", "a truncated ciphertext",
		"an envelope for another account", "a plaintext that is not a message", "a malformed appid in the path",
		"an unknown component", "a body over the cap", "no Encrypt at all",
		"the good message, for the record", "the good message again is a duplicate!",
	}
	if len(order) != len(cases) {
		t.Fatal("every case must be in order")
	}
	for _, name := range order {
		tc := cases[name]
		before := e.messages(tc.result)
		got := e.post(tc.path, tc.query, tc.body)
		if got.code != tc.status {
			t.Errorf("%s: HTTP %d %q, want %d", name, got.code, got.body, tc.status)
		}
		if e.messages(tc.result) != before+1 {
			t.Errorf("%s: not counted as %q", name, tc.result)
		}
	}
	if strings.Contains(e.logs.String(), "hello") || strings.Contains(e.logs.String(), tToken) || strings.Contains(e.logs.String(), tAESKey) {
		t.Fatal("the logs contain message content or a key")
	}
}

// mismatchedQuery signs the Encrypt of an envelope built by sealed.
func mismatchedQuery(e *msgEnv, body []byte) string {
	s := string(body)
	enc := s[strings.Index(s, "<Encrypt><![CDATA[")+18 : strings.Index(s, "]]></Encrypt>")]
	ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
	return "timestamp=" + ts + "&nonce=1234567890&encrypt_type=aes&msg_signature=" + wxcrypto.Signature(tToken, ts, "1234567890", enc)
}

func FuzzParseMessage(f *testing.F) {
	f.Add(wxMessage(tAccountUser, "text", "hello"))
	f.Add([]byte("<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>event</MsgType><Event>LOCATION</Event></xml>"))
	f.Add([]byte("<xml>"))
	f.Add([]byte("<xml><ToUserName><![CDATA[gh_1]]></ToUserName>\n<FromUserName>o&amp;1</FromUserName><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[a]]]]><![CDATA[>b]]></Content></xml>"))
	f.Add([]byte("<xml><ToUserName>a</ToUserName><ToUserName>b</ToUserName><FromUserName>c\r\nd</FromUserName><MsgType>x</MsgType><Extra><Nested>1</Nested></Extra></xml>"))
	// An XML name does not start with a digit: encoding/xml refuses the document.
	f.Add([]byte("<xml><1a>x</1a><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType></xml>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The fast scanner, where it answers, reads what encoding/xml reads.
		var fast, slow message
		if scanFlatMessage(data, &fast) {
			if err := xml.Unmarshal(data, &slow); err != nil {
				t.Fatalf("the scanner read %q, which encoding/xml refuses: %v", data, err)
			}
			slow.XMLName = xml.Name{}
			if fast != slow {
				t.Fatalf("%q: scanner %+v, encoding/xml %+v", data, fast, slow)
			}
		}
		m, err := parseMessage(data)
		if err == nil && (m.ToUserName == "" || m.FromUserName == "" || m.MsgType == "") {
			t.Fatalf("accepted a message without its required fields: %+v", m)
		}
		if err == nil {
			action, content := releaseTestAnswer(m)
			if action == testReply && content == "" {
				t.Fatal("a test reply without content")
			}
		}
	})
}

// With WatchKeyring, pushes read the keyring from the informer's events, not the reader:
// a message verifies and is forwarded from the watched keyring alone, and a watched deletion
// makes the component unknown.
func TestTheWatchedKeyringIsWhatMessagesRead(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, "success") })
	e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: a.srv.URL}))
	e.addAccount("shop", tAccountAppID, tAccountUser, nil)
	ctx := context.Background()
	ring := &corev1.Secret{}
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: "operator", Name: keyring.DefaultSecretName}, ring); err != nil {
		t.Fatal(err)
	}
	e.server.keys.observe(ring.DeepCopy(), true)
	e.server.keys.observe(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "operator", Name: "another"}}, false) // not the keyring: ignored
	if err := e.client.Delete(ctx, ring); err != nil {
		t.Fatal(err)
	}
	if r := e.send("text", "hi", ""); r.StatusCode != http.StatusOK || len(a.received()) != 1 {
		t.Fatalf("HTTP %d, %d forwarded; want the message verified and forwarded with the watched keyring", r.StatusCode, len(a.received()))
	}
	e.server.keys.observe(ring, false)
	if r := e.send("text", "hi again", ""); r.StatusCode != http.StatusNotFound {
		t.Fatalf("after the keyring's deletion: HTTP %d, want 404", r.StatusCode)
	}
}

// The messages WeChat sends take the scanner's path; anything it does not read exactly as
// encoding/xml would goes to encoding/xml, with the same result.
func TestMessagesOfWeChatsShapeAreScanned(t *testing.T) {
	var m message
	if !scanFlatMessage(wxMessage(tAccountUser, "text", "hello world"), &m) ||
		m.ToUserName != tAccountUser || m.MsgType != "text" || m.Content != "hello world" || m.FromUserName == "" {
		t.Fatalf("a plain text message was not scanned: %+v", m)
	}
	for name, doc := range map[string]string{
		"a split CDATA section": "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType><Content><![CDATA[x]]]]><![CDATA[>y]]></Content></xml>",
		"an entity":             "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType><Content>x &amp; y</Content></xml>",
		"a nested element":      "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>event</MsgType><ScanCodeInfo><ScanType>qrcode</ScanType></ScanCodeInfo></xml>",
	} {
		if scanFlatMessage([]byte(doc), &message{}) {
			t.Errorf("%s was scanned, not left to encoding/xml", name)
		}
		if m, err := parseMessage([]byte(doc)); err != nil || m.ToUserName != "a" || m.FromUserName != "b" {
			t.Errorf("%s: parseMessage = %+v, %v", name, m, err)
		}
	}
	if m, _ := parseMessage([]byte("<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType><Content><![CDATA[x]]]]><![CDATA[>y]]></Content></xml>")); m.Content != "x]]>y" {
		t.Errorf("split CDATA content = %q", m.Content)
	}
}

// The message path only reads its WeChatComponent, so it takes the cache's object without a
// deep copy; every other lookup (pushes and the landing page write the component's status)
// gets a copy of its own.
func TestOnlyTheMessagePathSharesTheCachedComponent(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {})
	e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: a.srv.URL + "/wechat", Timeout: "2s"}))
	e.addAccount("shop", tAccountAppID, tAccountUser, nil)
	if reply := e.send("text", "hello", ""); reply.StatusCode != 200 || len(a.received()) != 1 {
		t.Fatalf("answer HTTP %d, app got %d messages; want 200 and 1", reply.StatusCode, len(a.received()))
	}
	if got := e.recordedComponentGets(); len(got) != 1 || !got[0] {
		t.Fatalf("component reads of a message (shared?) = %v, want one, shared", got)
	}
	if _, err := e.server.keys.lookup(context.Background(), tNamespace, tComponent); err != nil {
		t.Fatal(err)
	}
	if got := e.recordedComponentGets(); len(got) != 2 || got[1] {
		t.Fatalf("component reads (shared?) = %v, want lookup's to be a copy", got)
	}
}
