/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// shardProcess is one sharded manager process, as cmd/manager builds it: the manager that may
// win the manager Lease (WeChatComponent controller, sharder) and its shard's manager.
type shardProcess struct {
	shard    string
	shardMgr ctrl.Manager
	stop     context.CancelFunc
	stopped  sync.WaitGroup
}

func startShardProcess(ns, shard string, api *wxapi.Client) *shardProcess {
	GinkgoHelper()
	options := func(cacheOpts ctrl.Options) ctrl.Options {
		cacheOpts.Scheme = scheme
		cacheOpts.Metrics = metricsserver.Options{BindAddress: "0"}
		cacheOpts.LeaderElection, cacheOpts.LeaderElectionNamespace = true, ns
		cacheOpts.LeaderElectionReleaseOnCancel = true
		cacheOpts.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
		return cacheOpts
	}
	shared, err := ctrl.NewManager(cfg, options(ctrl.Options{
		Cache: SharedCacheOptions(ns, []string{ns}, ns), LeaderElectionID: "wechat-operator-manager",
	}))
	Expect(err).NotTo(HaveOccurred())
	shardMgr, err := ctrl.NewManager(cfg, options(ctrl.Options{
		Cache: ShardCacheOptions(ns, []string{ns}, shard), LeaderElectionID: ShardLeaseName(shard),
	}))
	Expect(err).NotTo(HaveOccurred())
	components := &WeChatComponentReconciler{
		Client: shared.GetClient(), APIReader: shared.GetAPIReader(), Scheme: scheme,
		Recorder: events.NewFakeRecorder(1000), WeChat: api, Clock: clock.RealClock{}, Random: func() float64 { return 0.5 },
		KeyringNamespace: ns, KeyringName: testKeyringName,
	}
	Expect(components.SetupWithManager(shared, 2)).To(Succeed())
	// A short grace: the stopped shard's authorizers move a few seconds after it let go.
	Expect((&Sharder{Client: shared.GetClient(), APIReader: shared.GetAPIReader(), LeaseNamespace: ns,
		Clock: clock.RealClock{}, Grace: 2 * time.Second}).SetupWithManager(shared)).To(Succeed())
	authorizers := &WeChatAuthorizerReconciler{
		Client: shardMgr.GetClient(), APIReader: shardMgr.GetAPIReader(), Scheme: scheme,
		Recorder: events.NewFakeRecorder(1000), WeChat: api, Clock: clock.RealClock{}, Random: func() float64 { return 0.5 },
		Shard: shard, Shared: shared.GetClient(),
	}
	Expect(authorizers.SetupWithManager(ctx, shardMgr, 2)).To(Succeed())
	mctx, cancel := context.WithCancel(ctx)
	p := &shardProcess{shard: shard, shardMgr: shardMgr, stop: cancel}
	for _, m := range []ctrl.Manager{shared, shardMgr} {
		p.stopped.Go(func() {
			defer GinkgoRecover()
			Expect(m.Start(mctx)).To(Succeed())
		})
	}
	return p
}

// labelHistory records, from a watch, each authorizer's shard labels every time they change.
type labelHistory struct {
	mu    sync.Mutex
	steps map[string][]string // name → "shard" or "shard,drain"
}

func (h *labelHistory) record(a *wechatv1alpha1.WeChatAuthorizer) {
	step := a.Labels[wechatv1alpha1.LabelShard]
	if _, draining := a.Labels[wechatv1alpha1.LabelShardDrain]; draining {
		step += ",drain"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.steps[a.Name]; len(s) == 0 || s[len(s)-1] != step {
		h.steps[a.Name] = append(s, step)
	}
}

func (h *labelHistory) snapshot() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string][]string, len(h.steps))
	for k, v := range h.steps {
		out[k] = append([]string(nil), v...)
	}
	return out
}

var _ = Describe("sharded managers (real managers, leader election, real clock)", func() {
	It("spreads authorizers over the live shards, each caching its own, and hands them over without a refresh or a gap", func() {
		ns := newNamespace()
		const n = 12
		// The shard key is namespace/name, and the namespace is random: one in 4,096 would put
		// all 12 accounts on shard a of a and b, leaving nothing to hand over. Pick a name
		// prefix that splits them.
		prefix := "account-"
		for try := 0; ; try++ {
			onB := 0
			for i := range n {
				if pickShard([]string{"a", "b"}, fmt.Sprintf("%s/%s%d", ns, prefix, i)) == "b" {
					onB++
				}
			}
			if onB > 0 && onB < n {
				break
			}
			prefix = fmt.Sprintf("account%d-", try)
		}
		var seeds []wxsim.AuthorizerSeed
		for i := range n {
			seeds = append(seeds, wxsim.AuthorizerSeed{ComponentAppID: testComponentAppID,
				AppID: fmt.Sprintf("wxa%015d", i), Authorized: true})
		}
		sim := wxsim.MustNew(wxsim.Options{
			Components: []wxsim.ComponentSeed{{AppID: testComponentAppID, AppSecret: testAppSecret,
				Token: testVerifyToken, EncodingAESKey: testEncodingAESKey}},
			Authorizers: seeds,
			PushRetries: -1,
		})
		defer sim.Close()
		simServer := httptest.NewServer(sim)
		defer simServer.Close()
		api := wxapi.New(wxapi.Options{BaseURL: simServer.URL, RateLimit: rate.Inf, Metrics: wxapi.NewMetrics()})
		tokenCalls := func() int {
			total := 0
			for _, s := range seeds {
				total += sim.Calls(wxapi.APIAuthorizerToken, s.AppID)
			}
			return total
		}

		By("watching every label change of the authorizers")
		watching, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		watcher, err := watching.Watch(ctx, &wechatv1alpha1.WeChatAuthorizerList{}, client.InNamespace(ns))
		Expect(err).NotTo(HaveOccurred())
		defer watcher.Stop()
		history := &labelHistory{steps: map[string][]string{}}
		go func() {
			for e := range watcher.ResultChan() {
				if a, ok := e.Object.(*wechatv1alpha1.WeChatAuthorizer); ok {
					history.record(a)
				}
			}
		}()

		By("one process, shard a: it wins the manager Lease and serves every authorizer")
		a := startShardProcess(ns, "a", api)
		aStopped := false
		defer func() {
			if !aStopped {
				a.stop()
				a.stopped.Wait()
			}
		}()
		w := &world{ns: ns, key: types.NamespacedName{Namespace: ns, Name: "platform"}}
		c := w.createComponent()
		ticket, err := sim.IssueTicket(testComponentAppID)
		Expect(err).NotTo(HaveOccurred())
		c.Status.VerifyTicket = &wechatv1alpha1.VerifyTicket{Ticket: ticket, CreateTime: metav1.Now(), ReceivedAt: metav1.Now()}
		Expect(k8sClient.Status().Update(ctx, c)).To(Succeed())
		for i, s := range seeds {
			name := fmt.Sprintf("%s%d", prefix, i)
			rt, ok := sim.RefreshToken(testComponentAppID, s.AppID)
			Expect(ok).To(BeTrue())
			Expect(k8sClient.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-import", Namespace: ns,
					Annotations: releasedTo(wechatv1alpha1.KindWeChatAuthorizer + "/" + name)},
				StringData: map[string]string{wechatv1alpha1.DefaultRefreshTokenKey: rt},
			})).To(Succeed())
			Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: wechatv1alpha1.WeChatAuthorizerSpec{
					ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: s.AppID,
					RefreshTokenSecretRef: &wechatv1alpha1.SecretKeyReference{Name: name + "-import"},
				},
			})).To(Succeed())
		}
		placed := func(want func(key string) string) func(g Gomega) {
			return func(g Gomega) {
				list := &wechatv1alpha1.WeChatAuthorizerList{}
				g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
				g.Expect(list.Items).To(HaveLen(n))
				for _, item := range list.Items {
					shard := want(ns + "/" + item.Name)
					g.Expect(item.Labels).To(HaveKeyWithValue(wechatv1alpha1.LabelShard, shard), item.Name)
					g.Expect(item.Labels).NotTo(HaveKey(wechatv1alpha1.LabelShardDrain), item.Name)
					g.Expect(condition(item.Status.Conditions, wechatv1alpha1.ConditionReady)).To(
						HaveField("Status", metav1.ConditionTrue), item.Name)
					for _, secret := range []string{item.Name + "-state", item.Name + "-token"} {
						s := &corev1.Secret{}
						g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: secret}, s)).To(Succeed())
						g.Expect(s.Labels).To(HaveKeyWithValue(wechatv1alpha1.LabelShard, shard), secret)
					}
				}
			}
		}
		Eventually(placed(func(string) string { return "a" })).Should(Succeed())
		Expect(tokenCalls()).To(Equal(n), "one refresh per authorizer")

		By("a second process, shard b: about half the authorizers move to it, through the drain")
		b := startShardProcess(ns, "b", api)
		defer func() { b.stop(); b.stopped.Wait() }()
		both := func(key string) string { return pickShard([]string{"a", "b"}, key) }
		Eventually(placed(both)).Should(Succeed())
		var moved []string
		for i := range n {
			if name := fmt.Sprintf("%s%d", prefix, i); both(ns+"/"+name) == "b" {
				moved = append(moved, name)
			}
		}
		Expect(moved).NotTo(BeEmpty())
		Expect(len(moved)).To(BeNumerically("<", n))
		Expect(tokenCalls()).To(Equal(n), "the new shard serves the tokens it was handed; nobody refreshed")
		for name, steps := range history.snapshot() {
			for i := 1; i < len(steps); i++ {
				from, to := steps[i-1], steps[i]
				Expect(from != "" && to != "" && from[:1] != to[:1]).To(BeFalse(),
					"%s went from shard %q straight to %q while both were live: %v", name, from, to, steps)
			}
		}

		By("each shard caching only its own authorizers and their Secrets")
		for _, p := range []*shardProcess{a, b} {
			cached := &wechatv1alpha1.WeChatAuthorizerList{}
			Expect(p.shardMgr.GetCache().List(ctx, cached, client.InNamespace(ns))).To(Succeed())
			secrets := &corev1.SecretList{}
			Expect(p.shardMgr.GetCache().List(ctx, secrets, client.InNamespace(ns))).To(Succeed())
			var names []string
			for _, item := range cached.Items {
				names = append(names, item.Name)
				Expect(item.Labels[wechatv1alpha1.LabelShard]).To(Equal(p.shard))
			}
			if p.shard == "b" {
				Expect(names).To(ConsistOf(moved))
			} else {
				Expect(names).To(HaveLen(n - len(moved)))
			}
			Expect(secrets.Items).To(HaveLen(2*len(names)), "the state and token Secret of each")
		}

		By("the new shard serving what it was handed: a deleted token Secret is put back by shard b alone, with one refresh")
		victim := moved[0]
		Expect(k8sClient.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: victim + "-token", Namespace: ns}})).To(Succeed())
		Eventually(func() map[string]string {
			s := &corev1.Secret{}
			_ = k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: victim + "-token"}, s)
			return s.Labels
		}).Should(HaveKeyWithValue(wechatv1alpha1.LabelShard, "b"))
		// The state Secret keeps the refresh token, not every access token (refreshToken):
		// a lost token Secret costs one refresh, by the one shard that serves the account.
		Expect(tokenCalls()).To(Equal(n + 1))

		By("shard a's process stopping: b takes the manager Lease, and a's authorizers, without waiting for a drain")
		a.stop()
		a.stopped.Wait()
		aStopped = true
		Eventually(placed(func(string) string { return "b" })).Should(Succeed())
		Expect(tokenCalls()).To(Equal(n+1), "no refresh: every token handed over was valid")
	})
})
