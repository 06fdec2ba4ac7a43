/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// The manager reaches WeChat through a TCP proxy that the scenario switches to refuse every
// connection, then to swallow every request (the manager's own 3 s timeout ends them).
var _ = Describe("WeChat unreachable and slow", Ordered, func() {
	var (
		s     *stack
		t     *tenant
		proxy *harness.Proxy
		m     *harness.Manager
	)

	BeforeAll(func() {
		s = newStack("unreachable", 1, tokenLifetime)
		var err error
		proxy, err = harness.StartProxy(strings.TrimPrefix(s.sim.URL, "http://"))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(proxy.Close)
		m = s.startManager("manager", proxy.URL, "--wechat-api-timeout", "3s")
		t = s.newTenant("unreachable")
		t.ready(nil)
	})

	// outage cuts WeChat off when the authorizer's refresh is due and asks for a component
	// refresh at the same moment, so that both run into it; it lasts until both said so.
	outage := func(mode harness.ProxyMode, metricErrcodes ...string) {
		waitUntilRefreshDue(t, 2*time.Second)
		start := time.Now()
		proxy.SetMode(mode)
		requestComponentRefresh(t, start.Add(time.Second))

		By("both report WeChatUnreachable while it lasts, and keep serving the old tokens")
		for _, kind := range []string{"WeChatComponent", "WeChatAuthorizer"} {
			Eventually(t.hist.sawFailure(kind, wechatv1alpha1.ReasonWeChatUnreachable, start)).
				WithTimeout(30*time.Second).Should(BeTrue(), func() string {
				return fmt.Sprintf("%s never reported WeChatUnreachable; history:\n%s", kind, t.hist.dump())
			})
		}
		// The tokens served during the outage: a scheduled refresh that passed the proxy just
		// before it switched may have landed before the first failure (an object's reconciles
		// run one at a time), so they are taken once the watch holds what the API server does.
		old := map[string]harness.TokenValue{}
		for _, name := range []string{t.componentSecret(), t.authorizerSecret()} {
			Eventually(t.currentToken(name)).Should(Equal(harness.TokenHash(secretToken(t.ns, name))),
				"the token watch of %s does not catch up with the API server", name)
			old[name], _ = t.tokens.Current(name)
		}
		for name, v := range old {
			Expect(v.ExpiresAt).To(BeTemporally(">", time.Now()), "%s expired during the outage", name)
		}
		expectServedTokensWork(t)
		Expect(proxy.Accepted(mode)).To(BeNumerically(">", 0))
		Eventually(func() string { return scrape(m.MetricsURL) }).Should(ContainSubstring(`errcode="`), "no WeChat metrics")
		metrics := scrape(m.MetricsURL)
		Expect(metricErrcodes).To(ContainElement(Satisfy(func(code string) bool {
			return strings.Contains(metrics, `errcode="`+code+`"`)
		})), "wechat_api_requests_total has none of the errcodes %v", metricErrcodes)

		for name, v := range old {
			Expect(t.currentToken(name)()).To(Equal(v.Hash), "%s changed while WeChat was unreachable", name)
		}

		By("recovery once WeChat answers again")
		proxy.SetMode(harness.ProxyPass)
		t.expectHealthy(start)
		// Refreshed with the refresh token kept in the state Secret: nothing was lost.
		for name, v := range old {
			Eventually(t.currentToken(name)).WithTimeout(20*time.Second).ShouldNot(Equal(v.Hash), "%s was not refreshed after the outage", name)
		}
	}

	It("connection refused: WeChatUnreachable, the old tokens served, recovery", func() {
		outage(harness.ProxyRefuse, "network", "dial")
	})

	It("requests time out: WeChatUnreachable, the old tokens served, recovery", func() {
		outage(harness.ProxyBlackhole, "timeout")
	})
})

// waitUntilRefreshDue waits until the authorizer's next refresh is at most within away.
func waitUntilRefreshDue(t *tenant, within time.Duration) {
	GinkgoHelper()
	Eventually(func() time.Duration {
		a := t.getAuthorizer()
		if a.Status.RefreshAt == nil {
			return time.Hour
		}
		return time.Until(a.Status.RefreshAt.Time)
	}).WithTimeout(tokenLifetime).WithPolling(100 * time.Millisecond).Should(BeNumerically("<", within))
}

// requestComponentRefresh asks for a component token refresh, as an operator would
// (docs/operations.md: refresh-requested-at): of any token issued before at (whole
// seconds), so also of one the manager happened to issue in the second before.
func requestComponentRefresh(t *tenant, at time.Time) {
	GinkgoHelper()
	c := t.getComponent()
	patch := client.MergeFrom(c.DeepCopy())
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[annotationRefreshRequestedAt] = at.UTC().Format(time.RFC3339)
	Expect(k8s.Patch(ctx, c, patch)).To(Succeed())
}

// expectServedTokensWork uses the tokens the Secrets hold now the way an app does, directly
// against the simulator: they still work.
func expectServedTokensWork(t *tenant) {
	GinkgoHelper()
	for _, kind := range []harness.TokenKind{harness.ComponentToken, harness.AuthorizerToken} {
		name := map[harness.TokenKind]string{harness.ComponentToken: t.componentSecret(), harness.AuthorizerToken: t.authorizerSecret()}[kind]
		token := secretToken(t.ns, name)
		answer, err := harness.VerifyToken(ctx, t.s.sim.URL, kind, t.componentAppID, token)
		Expect(err).NotTo(HaveOccurred())
		Expect(answer.OK()).To(BeTrue(), "the token in %s does not work: %s", name, answer)
	}
}

// scrape reads a Prometheus endpoint.
func scrape(u string) string {
	resp, err := http.Get(u)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return string(data)
}
