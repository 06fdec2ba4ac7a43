/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/controllers"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

const (
	appSecret      = "bench-app-secret"
	verifyToken    = "bench-verify-token"
	encodingAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	keyringName    = "wechat-receiver-keyring"
)

// stack is one namespace with the receiver, the simulator and (optionally) a manager.
type stack struct {
	ns         string
	recvServer *httptest.Server
	sim        *wxsim.Simulator
	simServer  *httptest.Server
	cancel     context.CancelFunc
}

func newStack(b *testing.B, components int, withManager bool) *stack {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stack{cancel: cancel}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	must(k8sClient.Create(ctx, ns))
	s.ns = ns.Name

	// The receiver reads through an informer cache, as in production.
	recvCluster, err := newReceiverCache(ctx, s.ns)
	must(err)
	recv := receiver.New(receiver.Options{
		Reader: recvCluster, APIReader: k8sClient, Client: k8sClient,
		Keyring: types.NamespacedName{Namespace: s.ns, Name: keyringName},
		Metrics: receiver.NewMetrics(prometheus.NewRegistry()),
	})
	s.recvServer = httptest.NewServer(recv.Handler())

	var seeds []wxsim.ComponentSeed
	must(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: s.ns,
			Annotations: map[string]string{wechatv1alpha1.AnnotationUsableBy: wechatv1alpha1.KindWeChatComponent + "/*"}},
		StringData: map[string]string{"appSecret": appSecret, "token": verifyToken, "encodingAESKey": encodingAESKey},
	}))
	for i := range components {
		name, appID := componentName(i), componentAppID(i)
		seeds = append(seeds, wxsim.ComponentSeed{AppID: appID, AppSecret: appSecret, Token: verifyToken,
			EncodingAESKey: encodingAESKey, ReceiverURL: fmt.Sprintf("%s/wechat/%s/%s/events", s.recvServer.URL, s.ns, name)})
		must(k8sClient.Create(ctx, &wechatv1alpha1.WeChatComponent{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
			Spec: wechatv1alpha1.WeChatComponentSpec{AppID: appID,
				CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: "creds"}},
		}))
	}
	waitFor(b, "the receiver's cache to see every component", time.Minute, func() bool {
		list := &wechatv1alpha1.WeChatComponentList{}
		return recvCluster.List(ctx, list, client.InNamespace(s.ns)) == nil && len(list.Items) == components
	})
	s.sim = wxsim.MustNew(wxsim.Options{Components: seeds, PushRetries: -1})
	s.simServer = httptest.NewServer(s.sim)

	if withManager {
		cacheOptions := controllers.CacheOptions("", nil)
		cacheOptions.DefaultNamespaces = map[string]cache.Config{s.ns: {}}
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme: scheme, Cache: cacheOptions,
			Metrics:    metricsserver.Options{BindAddress: "0"},
			Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		})
		must(err)
		r := &controllers.WeChatComponentReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: scheme,
			Recorder: events.NewFakeRecorder(10000),
			WeChat:   wxapi.New(wxapi.Options{BaseURL: s.simServer.URL, RateLimit: rate.Inf, MaxConcurrency: 16, Metrics: wxapi.NewMetrics()}),
			Clock:    clock.RealClock{}, Random: func() float64 { return 0.5 },
			KeyringNamespace: s.ns, KeyringName: keyringName,
		}
		must(r.SetupWithManager(mgr, 4))
		go func() { _ = mgr.Start(ctx) }()
	} else {
		// Without a manager, write the keyring as the manager would.
		data := map[string][]byte{}
		for i := range components {
			data[s.ns+"."+componentName(i)+".token"] = []byte(verifyToken)
			data[s.ns+"."+componentName(i)+".encodingAESKey"] = []byte(encodingAESKey)
		}
		must(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: keyringName, Namespace: s.ns}, Data: data}))
		waitFor(b, "the receiver's cache to see the keyring", time.Minute, func() bool {
			return recvCluster.Get(ctx, types.NamespacedName{Namespace: s.ns, Name: keyringName}, &corev1.Secret{}) == nil
		})
	}
	return s
}

func (s *stack) close() {
	s.cancel()
	s.sim.Close()
	s.simServer.Close()
	s.recvServer.Close()
}

func componentName(i int) string  { return fmt.Sprintf("platform-%03d", i) }
func componentAppID(i int) string { return fmt.Sprintf("wx%016x", 0xb000+i) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(b *testing.B, what string, timeout time.Duration, cond func() bool) {
	deadline := time.Now().Add(timeout)
	poll := time.NewTicker(2 * time.Millisecond)
	defer poll.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		<-poll.C
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// BenchmarkTicketPushToSecret measures, for 100 components waiting for their first ticket,
// the time from the simulator starting a push until the component token Secret exists:
// receiver verify + status patch, watch event, reconcile, api_component_token, Secret write.
func BenchmarkTicketPushToSecret(b *testing.B) {
	const n = 100
	s := newStack(b, n, true)
	defer s.close()
	ctx := context.Background()
	// Wait until the manager has projected every component's keys.
	waitFor(b, "the keyring", time.Minute, func() bool {
		ring := &corev1.Secret{}
		return k8sClient.Get(ctx, types.NamespacedName{Namespace: s.ns, Name: keyringName}, ring) == nil && len(ring.Data) == 2*n
	})
	b.ResetTimer()
	for range b.N {
		var latencies []time.Duration
		for i := range n {
			start := time.Now()
			if _, err := s.sim.PushTicket(ctx, componentAppID(i)); err != nil {
				b.Fatal(err)
			}
			waitFor(b, "a token Secret", 30*time.Second, func() bool {
				secret := &corev1.Secret{}
				err := k8sClient.Get(ctx, types.NamespacedName{Namespace: s.ns, Name: componentName(i) + "-component-token"}, secret)
				return err == nil && len(secret.Data[wechatv1alpha1.SecretKeyAccessToken]) > 0
			})
			latencies = append(latencies, time.Since(start))
		}
		slices.Sort(latencies)
		b.ReportMetric(float64(percentile(latencies, 0.50).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(latencies, 0.99).Microseconds())/1000, "p99-ms")
		b.Logf("ticket push → component token Secret over %d pushes: p50 %v, p99 %v (target p99 ≤ 1s)",
			n, percentile(latencies, 0.50), percentile(latencies, 0.99))
	}
}

// BenchmarkReceiverThroughput sends valid, signed and encrypted ticket pushes to 500
// components from 4 and from 16 concurrent senders; every push carries a newer ticket, so
// every push is verified, decrypted and written to status. Latency grows with concurrency
// once the API server's write rate is reached (see BenchmarkStatusPatchCeiling).
func BenchmarkReceiverThroughput(b *testing.B) {
	for _, senders := range []int{4, 16} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) { benchmarkReceiver(b, senders) })
	}
}

func benchmarkReceiver(b *testing.B, senders int) {
	const (
		components = 500
		pushes     = 3000
	)
	s := newStack(b, components, false)
	defer s.close()
	crypters := make([]*wxcrypto.Crypter, components)
	for i := range components {
		c, err := wxcrypto.NewCrypter(verifyToken, encodingAESKey, componentAppID(i))
		must(err)
		crypters[i] = c
	}
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	b.ResetTimer()
	for range b.N {
		base := time.Now().Add(-time.Hour).Unix()
		type job struct{ component, seq int }
		jobs := make(chan job)
		latencies := make([]time.Duration, 0, pushes)
		var mu sync.Mutex
		var wg sync.WaitGroup
		failures := map[string]int{}
		start := time.Now()
		for range senders {
			wg.Go(func() {
				for j := range jobs {
					ts := strconv.FormatInt(time.Now().Unix(), 10)
					nonce := strconv.Itoa(j.seq)
					msg := fmt.Sprintf("<xml><AppId><![CDATA[%s]]></AppId><CreateTime>%d</CreateTime>"+
						"<InfoType><![CDATA[component_verify_ticket]]></InfoType>"+
						"<ComponentVerifyTicket><![CDATA[ticket-%d]]></ComponentVerifyTicket></xml>",
						componentAppID(j.component), base+int64(j.seq), j.seq)
					body, sig, err := crypters[j.component].SealPush([]byte(msg), ts, nonce)
					must(err)
					q := url.Values{"timestamp": {ts}, "nonce": {nonce}, "msg_signature": {sig}}
					target := fmt.Sprintf("%s/wechat/%s/%s/events?%s", s.recvServer.URL, s.ns, componentName(j.component), q.Encode())
					t0 := time.Now()
					resp, err := httpClient.Post(target, "text/xml", bytes.NewReader(body))
					elapsed := time.Since(t0)
					outcome := "ok"
					if err != nil {
						outcome = err.Error()
					} else if resp.StatusCode != http.StatusOK {
						outcome = resp.Status
					}
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					mu.Lock()
					latencies = append(latencies, elapsed)
					if outcome != "ok" {
						failures[outcome]++
					}
					mu.Unlock()
				}
			})
		}
		for seq := range pushes {
			jobs <- job{component: seq % components, seq: seq}
		}
		close(jobs)
		wg.Wait()
		total := time.Since(start)
		if len(failures) > 0 {
			b.Fatalf("of %d pushes, these were not answered success: %v", pushes, failures)
		}
		slices.Sort(latencies)
		throughput := float64(pushes) / total.Seconds()
		b.ReportMetric(throughput, "pushes/s")
		b.ReportMetric(float64(percentile(latencies, 0.50).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(latencies, 0.99).Microseconds())/1000, "p99-ms")
		b.Logf("receiver: %d pushes from %d senders in %v: %.0f pushes/s, p50 %v, p99 %v (target ≥ 500/s, p99 ≤ 20ms)",
			pushes, senders, total.Round(time.Millisecond), throughput, percentile(latencies, 0.50), percentile(latencies, 0.99))
	}
}

// BenchmarkStatusPatchCeiling is the floor the receiver cannot beat: the same number of
// status patches from the same 16 concurrent writers, straight to the API server, with no
// HTTP push, no crypto and no reads. Compare its pushes/s with BenchmarkReceiverThroughput.
func BenchmarkStatusPatchCeiling(b *testing.B) {
	const (
		components = 500
		patches    = 3000
		writers    = 16
	)
	s := newStack(b, components, false)
	defer s.close()
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		base := time.Now().Add(-time.Hour).Unix()
		jobs := make(chan int)
		var wg sync.WaitGroup
		var failed atomic.Int32
		start := time.Now()
		for range writers {
			wg.Go(func() {
				for seq := range jobs {
					c := &wechatv1alpha1.WeChatComponent{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: componentName(seq % components)}}
					patch := fmt.Sprintf(`{"status":{"verifyTicket":{"ticket":"ticket-%d","createTime":%q,"receivedAt":%q}}}`,
						seq, time.Unix(base+int64(seq), 0).UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
					if err := k8sClient.Status().Patch(ctx, c, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
						failed.Add(1)
					}
				}
			})
		}
		for seq := range patches {
			jobs <- seq
		}
		close(jobs)
		wg.Wait()
		total := time.Since(start)
		if failed.Load() > 0 {
			b.Fatalf("%d status patches failed", failed.Load())
		}
		b.ReportMetric(float64(patches)/total.Seconds(), "patches/s")
		b.Logf("API server ceiling: %d status patches from %d writers in %v: %.0f patches/s",
			patches, writers, total.Round(time.Millisecond), float64(patches)/total.Seconds())
	}
}
