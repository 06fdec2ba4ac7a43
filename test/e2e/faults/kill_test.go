/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// WeChat rotates the refresh token on every refresh. The manager's api_authorizer_token is
// processed — the refresh token rotates — but its answer is held (hold_answer), as on a
// connection lost after WeChat acted, and the manager is killed with SIGKILL before it could
// write anything. The next manager only has the old refresh token.
var _ = Describe("Manager killed between WeChat's answer and the Secret write", Ordered, func() {
	var (
		s *stack
		t *tenant
		m *harness.Manager
	)

	BeforeAll(func() {
		s = newStack("kill", 1, tokenLifetime, "--rotate-refresh-tokens")
		m = s.startManager("manager", "")
		t = s.newTenant("kill")
		t.ready(nil)
	})

	It("recovers the rotated refresh token from api_get_authorizer_list", func() {
		before := stateRefreshToken(t)
		calls := s.counters().CallsFor(wxsim.APIAuthorizerToken, t.authorizerAppID)
		s.arm(harness.Fault{API: wxsim.APIAuthorizerToken, AppID: t.authorizerAppID, HoldAnswer: true, Count: 1})

		By("the manager's refresh reaches WeChat, which rotates the refresh token; the answer is held")
		Eventually(s.calls(wxsim.APIAuthorizerToken, t.authorizerAppID)).WithTimeout(tokenLifetime).
			WithPolling(20 * time.Millisecond).Should(BeNumerically(">", calls))
		m.Kill()
		killed := time.Now()
		Expect(harness.TokenHash(stateRefreshToken(t))).To(Equal(harness.TokenHash(before)),
			"the killed manager wrote a refresh token it cannot have received")
		Expect(refreshWith(t, before)).To(Equal(61023), "WeChat still accepts the refresh token it rotated away")

		By("a new manager: 61023 with the old refresh token, then the rotated one from api_get_authorizer_list")
		s.startManager("manager-2", "")
		Eventually(t.eventCount("RefreshTokenRecovered", killed)).WithTimeout(30 * time.Second).Should(BeNumerically(">=", 1))
		Eventually(func() string { return harness.TokenHash(stateRefreshToken(t)) }).WithTimeout(10 * time.Second).
			ShouldNot(Equal(harness.TokenHash(before)))
		Expect(s.counters().CallsFor(wxsim.APIGetAuthorizerList, t.componentAppID)).To(BeNumerically(">=", 1))
		Eventually(t.refreshedSince(t.authorizerSecret(), killed)).WithTimeout(20 * time.Second).Should(BeNumerically(">=", 1))

		By("the state Secret holds a refresh token WeChat accepts: refreshing goes on, and nothing expired")
		t.expectKeepsRefreshing(time.Now())
		t.expectHealthy(killed)
	})
})

// stateRefreshToken reads the refresh token the operator keeps in the state Secret.
func stateRefreshToken(t *tenant) string {
	GinkgoHelper()
	s := &corev1.Secret{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: t.ns, Name: t.stateSecret()}, s)).To(Succeed())
	return string(s.Data[wechatv1alpha1.SecretKeyRefreshToken])
}

// refreshWith calls api_authorizer_token with refreshToken and the component token the
// Secret serves, as another system sharing the account would, and returns the errcode. A
// successful call rotates the account's refresh token behind the operator's back.
func refreshWith(t *tenant, refreshToken string) int {
	GinkgoHelper()
	body, _ := json.Marshal(map[string]string{
		"component_appid": t.componentAppID, "authorizer_appid": t.authorizerAppID, "authorizer_refresh_token": refreshToken,
	})
	resp, err := http.Post(t.s.sim.URL+"/cgi-bin/component/api_authorizer_token?component_access_token="+
		url.QueryEscape(secretToken(t.ns, t.componentSecret())), "application/json", bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var answer struct {
		ErrCode int `json:"errcode"`
	}
	Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
	return answer.ErrCode
}
