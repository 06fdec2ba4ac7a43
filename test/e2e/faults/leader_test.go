/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

const leaseName = "wechat-operator-manager"

// Two managers with leader election; the leader is killed with SIGKILL (no Lease release):
// the other takes over once the Lease expires, and refreshes exactly once per cycle.
var _ = Describe("Two managers, the leader killed", Ordered, func() {
	var (
		s        *stack
		t        *tenant
		managers []*harness.Manager
	)

	BeforeAll(func() {
		s = newStack("leader", 1, tokenLifetime)
		for _, name := range []string{"manager-a", "manager-b"} {
			managers = append(managers, s.startManager(name, "", "--leader-elect"))
		}
		t = s.newTenant("leader")
		t.ready(nil)
	})

	It("the other manager takes over, tokens stay fresh, no double refresh", func() {
		leader := func() int {
			for i, m := range managers {
				if !m.Exited() && isLeader(m) {
					return i
				}
			}
			return -1
		}
		Eventually(leader).WithTimeout(30 * time.Second).ShouldNot(Equal(-1))
		old := leader()
		holder := leaseHolder()
		Expect(holder).NotTo(BeEmpty())
		for i, m := range managers {
			if i != old {
				Expect(isLeader(m)).To(BeFalse(), "two leaders")
			}
		}

		By("killing the leader right after a refresh, so that no refresh is in flight")
		from := time.Now()
		Eventually(t.refreshedSince(t.authorizerSecret(), from)).WithTimeout(tokenLifetime).Should(BeNumerically(">=", 1))
		managers[old].Kill()
		killed := time.Now()

		By("the other manager holds the Lease once it expired, and refreshes")
		Eventually(leaseHolder).WithTimeout(30 * time.Second).ShouldNot(Equal(holder))
		Eventually(func() bool { return isLeader(managers[1-old]) }).WithTimeout(10 * time.Second).Should(BeTrue())
		GinkgoWriter.Printf("the Lease changed hands %s after the kill\n", time.Since(killed).Round(100*time.Millisecond))
		Eventually(t.refreshedSince(t.authorizerSecret(), killed)).WithTimeout(tokenLifetime).Should(BeNumerically(">=", 1))
		Eventually(t.refreshedSince(t.componentSecret(), killed)).WithTimeout(tokenLifetime).Should(BeNumerically(">=", 1))
		// The new leader's refresh used the refresh token kept in the state Secret.
		t.expectHealthy(killed)

		By("one WeChat call per token and refresh cycle, over the whole scenario")
		c := s.counters()
		// The first authorizer token came from the code exchange (api_query_auth); every other
		// value of each Secret is one token call, and every token call is one value.
		Expect(c.CallsFor(wxsim.APIAuthorizerToken, t.authorizerAppID)).To(Equal(len(t.tokens.Values(t.authorizerSecret()))-1),
			"api_authorizer_token calls != authorizer token refreshes")
		Expect(c.CallsFor(wxsim.APIComponentToken, t.componentAppID)).To(Equal(len(t.tokens.Values(t.componentSecret()))),
			"api_component_token calls != component tokens")
		Expect(c.ErrorsFor(wxsim.APIAuthorizerToken, t.authorizerAppID)).To(BeZero())
		Expect(c.ErrorsFor(wxsim.APIComponentToken, t.componentAppID)).To(BeZero())
	})
})

var leaderMetric = regexp.MustCompile(`(?m)^leader_election_master_status\{[^}]*name="` + leaseName + `"[^}]*\} 1$`)

// isLeader reads the manager's leader_election_master_status gauge.
func isLeader(m *harness.Manager) bool {
	return leaderMetric.MatchString(scrape(m.MetricsURL))
}

// leaseHolder is the holderIdentity of the managers' Lease ("" if there is none).
func leaseHolder() string {
	l := &coordinationv1.Lease{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: harness.OperatorNamespace, Name: leaseName}, l); err != nil {
		return ""
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
