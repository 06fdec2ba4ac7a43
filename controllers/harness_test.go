/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

// Credentials of the simulated platform. The AppSecret, Token and key are test values;
// the key is the one of WeChat's published samples.
const (
	testComponentAppID = "wx0123456789abcdef"
	testAppSecret      = "test-app-secret-0123456789abcdef"
	testVerifyToken    = "test-verify-token"
	testEncodingAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	testKeyringName    = "wechat-receiver-keyring"
)

var simStart = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// world is one platform under test: a namespace on the real API server, the WeChat
// simulator, the receiver over real HTTP, and the component reconciler, all on one fake clock.
type world struct {
	ns         string
	clock      *clocktesting.FakeClock
	sim        *wxsim.Simulator
	simServer  *httptest.Server
	recv       *receiver.Server
	recvServer *httptest.Server
	reconciler *WeChatComponentReconciler
	authz      *WeChatAuthorizerReconciler
	wechat     *wxapi.Client
	recorder   *events.FakeRecorder
	registry   *prometheus.Registry
	logs       *syncBuffer
	logger     logr.Logger
	key        types.NamespacedName
}

type worldOption func(*worldConfig)

type worldConfig struct {
	simOptions    func(*wxsim.Options)
	receiverWrite client.Client
}

func newWorld(opts ...worldOption) *world {
	cfg := worldConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	w := &world{
		ns:       newNamespace(),
		clock:    clocktesting.NewFakeClock(simStart),
		recorder: events.NewFakeRecorder(1000),
		registry: prometheus.NewRegistry(),
		logs:     &syncBuffer{},
	}
	// Everything logs into one buffer, which tests search for secrets, at V(5): more than
	// anyone runs in production, below client-go's V(8) dumps of request and response bodies.
	w.logger = zap.New(zap.WriteTo(w.logs), zap.UseDevMode(true), zap.Level(zapcore.Level(-5)))
	w.key = types.NamespacedName{Namespace: w.ns, Name: "platform"}

	writer := cfg.receiverWrite
	if writer == nil {
		writer = k8sClient
	}
	w.recv = receiver.New(receiver.Options{
		Reader:   k8sClient,
		Client:   writer,
		Keyring:  types.NamespacedName{Namespace: w.ns, Name: testKeyringName},
		Clock:    w.clock,
		Metrics:  receiver.NewMetrics(w.registry),
		Recorder: w.recorder,
		Logger:   w.logger.WithName("receiver"),
		// The test apps are httptest servers on loopback, not in-cluster Services.
		ForwardAllowedHosts: []string{"127.0.0.1"},
	})
	w.recvServer = httptest.NewServer(w.recv.Handler())

	simOpts := wxsim.Options{
		Clock: w.clock,
		Components: []wxsim.ComponentSeed{{
			AppID: testComponentAppID, AppSecret: testAppSecret, Token: testVerifyToken,
			EncodingAESKey: testEncodingAESKey,
			ReceiverURL:    fmt.Sprintf("%s/wechat/%s/%s/events", w.recvServer.URL, w.ns, w.key.Name),
		}},
		PushRetries: -1,
	}
	if cfg.simOptions != nil {
		cfg.simOptions(&simOpts)
	}
	w.sim = wxsim.MustNew(simOpts)
	w.simServer = httptest.NewServer(w.sim)

	w.wechat = wxapi.New(wxapi.Options{
		BaseURL:   w.simServer.URL,
		RateLimit: rate.Inf,
		Retry:     wxapi.RetryPolicy{MaxAttempts: 1},
		Metrics:   wxapi.NewMetrics(),
		Logger:    w.logger.WithName("wechat-api"),
	})
	// One code budget for both reconcilers, as the manager has.
	budget := NewCodeBudget(w.clock, DefaultCodeBurst, DefaultCodeInterval, refresh.APIFailure, func() float64 { return 0.5 })
	w.authz = &WeChatAuthorizerReconciler{
		Client: k8sClient, APIReader: k8sClient, Scheme: scheme, Recorder: w.recorder,
		WeChat: w.wechat, Clock: w.clock, Random: func() float64 { return 0.5 }, CodeBudget: budget,
	}
	w.reconciler = &WeChatComponentReconciler{
		Client:           k8sClient,
		APIReader:        k8sClient,
		Scheme:           scheme,
		Recorder:         w.recorder,
		WeChat:           w.wechat,
		Clock:            w.clock,
		Random:           func() float64 { return 0.5 },
		KeyringNamespace: w.ns,
		KeyringName:      testKeyringName,
		CodeBudget:       budget,
	}
	return w
}

// releasedTo is the annotation that releases a Secret to the resources entries name
// ("WeChatComponent/platform", "WeChatAuthorizer/*").
func releasedTo(entries ...string) map[string]string {
	return map[string]string{wechatv1alpha1.AnnotationUsableBy: strings.Join(entries, ", ")}
}

func (w *world) close() {
	w.sim.Close()
	w.simServer.Close()
	w.recvServer.Close()
}

// createComponent creates the credentials Secret and the WeChatComponent.
func (w *world) createComponent(mutate ...func(*wechatv1alpha1.WeChatComponent)) *wechatv1alpha1.WeChatComponent {
	Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: w.ns,
			Annotations: releasedTo(wechatv1alpha1.KindWeChatComponent + "/" + w.key.Name)},
		StringData: map[string]string{
			"appSecret": testAppSecret, "token": testVerifyToken, "encodingAESKey": testEncodingAESKey,
		},
	})).To(Succeed())
	c := &wechatv1alpha1.WeChatComponent{
		ObjectMeta: metav1.ObjectMeta{Name: w.key.Name, Namespace: w.ns},
		Spec: wechatv1alpha1.WeChatComponentSpec{
			AppID:                testComponentAppID,
			CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: "creds"},
		},
	}
	for _, m := range mutate {
		m(c)
	}
	Expect(k8sClient.Create(ctx, c)).To(Succeed())
	return c
}

// reconcile runs one reconcile of the component, as the workqueue would.
func (w *world) reconcile() reconcile.Result {
	result, err := w.reconciler.Reconcile(logr.NewContext(ctx, w.logger), reconcile.Request{NamespacedName: w.key})
	Expect(err).NotTo(HaveOccurred())
	Expect(result.RequeueAfter).To(BeNumerically(">=", 0))
	return result
}

// pushTicket makes the simulator push a new ticket to the receiver over HTTP.
func (w *world) pushTicket() string {
	ticket, err := w.sim.PushTicket(ctx, testComponentAppID)
	Expect(err).NotTo(HaveOccurred())
	return ticket
}

func (w *world) component() *wechatv1alpha1.WeChatComponent {
	c := &wechatv1alpha1.WeChatComponent{}
	Expect(k8sClient.Get(ctx, w.key, c)).To(Succeed())
	return c
}

// tokenSecret returns the component token Secret, or nil if it does not exist.
func (w *world) tokenSecret() *corev1.Secret {
	s := &corev1.Secret{}
	err := k8sClient.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: w.key.Name + "-component-token"}, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	return s
}

func (w *world) tokenCalls() int { return w.sim.Calls(wxapi.APIComponentToken, testComponentAppID) }

// post sends a raw push to the receiver.
func (w *world) post(path, query string, body []byte) *http.Response {
	resp, err := http.Post(w.recvServer.URL+path+"?"+query, "text/xml", bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	return resp
}

func condition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// failingStatusWriter is a client whose first n status patches fail as if the API server
// were unavailable.
func failingStatusWriter(n int) client.Client {
	inner, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	var mu sync.Mutex
	return interceptor.NewClient(inner, interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			mu.Lock()
			fail := n > 0
			n--
			mu.Unlock()
			if fail {
				return apierrors.NewServiceUnavailable("injected: the API server is unavailable")
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
}

// testutilCounter reads one series of a counter vector by its result label.
func testutilCounter(reg *prometheus.Registry, name, result string) float64 {
	families, err := reg.Gather()
	Expect(err).NotTo(HaveOccurred())
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

// reconcileAuthorizer runs one reconcile of a WeChatAuthorizer, as the workqueue would.
func (w *world) reconcileAuthorizer(name string) reconcile.Result {
	result, err := w.authz.Reconcile(logr.NewContext(ctx, w.logger), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: w.ns, Name: name}})
	Expect(err).NotTo(HaveOccurred())
	return result
}

func (w *world) authorizer(name string) *wechatv1alpha1.WeChatAuthorizer {
	a := &wechatv1alpha1.WeChatAuthorizer{}
	Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: name}, a)).To(Succeed())
	return a
}

// secret returns a Secret of the world's namespace, or nil.
// setAppSecret writes appSecret into the component's credentials Secret, as a user fixing or
// breaking it would.
func (w *world) setAppSecret(appSecret string) {
	creds := &corev1.Secret{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: "creds"}, creds)).To(Succeed())
	creds.Data["appSecret"] = []byte(appSecret)
	Expect(k8sClient.Update(ctx, creds)).To(Succeed())
}

func (w *world) secret(name string) *corev1.Secret {
	s := &corev1.Secret{}
	err := k8sClient.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	return s
}
