/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package monitoring

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// TestDashboardQueriesAgainstLiveMetrics runs the operator as the demo does (kube-apiserver
// and etcd, wechat-sim, a webhook receiver and a manager as real processes, each as its
// ServiceAccount) with one platform that gets its token and one whose credentials Secret is
// missing (Stalled, failing), scrapes both /metrics, and checks every dashboard query's
// metric names and labels against what the processes export.
func TestDashboardQueriesAgainstLiveMetrics(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds the control plane")
	}
	logf.SetLogger(logr.Discard()) // envtest's own log lines; the processes log to files
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	bins, err := harness.Build(ctx, abs, filepath.Join(work, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := harness.StartControlPlane(ctx, harness.ControlPlaneOptions{Root: abs, Dir: filepath.Join(work, "cp")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cp.Stop() }()
	recv, err := harness.StartReceiver(ctx, bins.Receiver, "receiver", cp)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Stop(5 * time.Second)

	const ns, appID = "shop", "wx0123456789abcdef"
	seed := wxsim.ComponentSeed{AppID: appID, AppSecret: "live-app-secret-0123456789abcdef", Token: "live-token",
		EncodingAESKey: wxsim.GenerateEncodingAESKey(), ReceiverURL: recv.EventsURL(ns, "platform")}
	sim, err := harness.StartSim(ctx, bins.Sim, "sim", work, wxsim.SeedFile{Components: []wxsim.ComponentSeed{seed}},
		"--push-on-start=false")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Stop(5 * time.Second)
	mgr, err := harness.StartManager(ctx, bins.Manager, "manager", cp, sim.URL, "--leader-elect")
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Stop(5 * time.Second)

	k := cp.Client
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(k.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "credentials",
			Annotations: map[string]string{wechatv1alpha1.AnnotationUsableBy: wechatv1alpha1.KindWeChatComponent + "/platform"}},
		StringData: map[string]string{"appSecret": seed.AppSecret, "token": seed.Token, "encodingAESKey": seed.EncodingAESKey},
	}))
	for name, secret := range map[string]string{"platform": "credentials", "broken": "missing"} {
		must(k.Create(ctx, &wechatv1alpha1.WeChatComponent{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: wechatv1alpha1.WeChatComponentSpec{AppID: appID,
				CredentialsSecretRef: wechatv1alpha1.CredentialsSecretReference{Name: secret}},
		}))
	}
	// The manager asks WeChat for a ticket push (api_start_push_ticket) once the receiver
	// has the keys; the token follows.
	waitFor(t, ctx, "a token for shop/platform and Stalled on shop/broken", func() bool {
		ok := &wechatv1alpha1.WeChatComponent{}
		broken := &wechatv1alpha1.WeChatComponent{}
		if k.Get(ctx, client.ObjectKey{Namespace: ns, Name: "platform"}, ok) != nil ||
			k.Get(ctx, client.ObjectKey{Namespace: ns, Name: "broken"}, broken) != nil {
			return false
		}
		return ok.Status.ExpiresAt != nil && ok.Status.VerifyTicket != nil &&
			meta.IsStatusConditionTrue(broken.Status.Conditions, wechatv1alpha1.ConditionStalled)
	})

	scraped := exposition{}
	for _, url := range []string{mgr.MetricsURL, recv.MetricsURL} {
		parseExposition(scrape(t, ctx, url), scraped)
	}
	if problems := queryProblems(dashboardQueries(t), scraped); len(problems) > 0 {
		for _, p := range problems {
			t.Error(p)
		}
	}
	// The alert rules' metrics are exported too (leader_election_master_status included).
	for _, m := range []string{"wechat_token_expiration_timestamp_seconds", "wechat_verify_ticket_timestamp_seconds",
		"wechat_refresh_failures", "wechat_resource_stalled", "wechat_receiver_pushes_total", "wechat_api_requests_total",
		"leader_election_master_status"} {
		if scraped[m] == nil {
			t.Errorf("the alert rules use %s, which neither process exports", m)
		}
	}
}

func scrape(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %d", url, err, resp.StatusCode)
	}
	return string(body)
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
