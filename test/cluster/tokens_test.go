//go:build cluster

/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package cluster

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// watch follows the two token Secrets from before they exist to the end of the suite.
var watch *harness.TokenWatch

// startWatch starts watch for the whole of t (TestCluster, not one step).
func startWatch(t *testing.T) {
	var err error
	if watch, err = harness.WatchTokens(suiteCtx, restConfig, appsNS, simURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.Stop)
	watch.Track(componentSecret, harness.ComponentToken, componentAppID)
	watch.Track(authorizerSecret, harness.AuthorizerToken, componentAppID)
}

// testTicketsAndTokens: issue 20 item 2.
func testTicketsAndTokens(t *testing.T) {
	// config/samples, as a user applies them (with the consumer's app swapped, testdata/).
	kubectl(t, "apply", "--server-side", "-k", "test/cluster/testdata")

	// WeChat pushes the ticket; here the simulator pod pushes it to the receiver's Service.
	pushedAt := time.Now()
	waitFor(t, "a component_verify_ticket push accepted by the receiver Service", 2*time.Minute, func() (bool, string) {
		return wechat.pushTicket(suiteCtx, componentAppID)
	})
	var comp wechatv1alpha1.WeChatComponent
	waitFor(t, "the pushed ticket in WeChatComponent status", time.Minute, func() (bool, string) {
		if err := k8s.Get(suiteCtx, types.NamespacedName{Namespace: appsNS, Name: componentName}, &comp); err != nil {
			return false, err.Error()
		}
		vt := comp.Status.VerifyTicket
		if vt == nil || vt.Ticket == "" {
			return false, "status.verifyTicket is empty"
		}
		return !vt.ReceivedAt.Time.Before(pushedAt.Truncate(time.Second)) &&
			meta.IsStatusConditionTrue(comp.Status.Conditions, wechatv1alpha1.ConditionTicketReceived), fmt.Sprintf("received at %s", vt.ReceivedAt)
	})

	for _, obj := range []client.Object{&wechatv1alpha1.WeChatComponent{}, &wechatv1alpha1.WeChatAuthorizer{}} {
		name := componentName
		if _, ok := obj.(*wechatv1alpha1.WeChatAuthorizer); ok {
			name = authorizerName
		}
		waitFor(t, fmt.Sprintf("%T %s Ready", obj, name), 2*time.Minute, func() (bool, string) {
			if err := k8s.Get(suiteCtx, types.NamespacedName{Namespace: appsNS, Name: name}, obj); err != nil {
				return false, err.Error()
			}
			conds := conditionsOf(obj)
			return meta.IsStatusConditionTrue(conds, wechatv1alpha1.ConditionReady), fmt.Sprintf("%+v", conds)
		})
	}
	for _, s := range []string{componentSecret, authorizerSecret} {
		waitFor(t, "a token in Secret "+s+" that WeChat accepts", time.Minute, func() (bool, string) {
			v, ok := watch.Current(s)
			if !ok || !v.Verified {
				return false, "no verified value yet"
			}
			return v.Answer.OK(), v.Answer.String()
		})
	}
}

func conditionsOf(obj client.Object) []metav1.Condition {
	switch o := obj.(type) {
	case *wechatv1alpha1.WeChatComponent:
		return o.Status.Conditions
	case *wechatv1alpha1.WeChatAuthorizer:
		return o.Status.Conditions
	}
	return nil
}

// testRedeploy: issue 20 item 6, right after the tokens were issued, so that none is due
// while the operator is away and comes back.
func testRedeploy(t *testing.T) {
	before := snapshot(t)
	due := before.earliestRefresh()
	calls := tokenCalls(wechat.counters(t))
	t.Logf("tokens due from %s (in %s); token calls so far %v", due.Format(time.TimeOnly), time.Until(due).Round(time.Second), calls)

	run(t, "make", "--no-print-directory", "undeploy", "DEPLOY_TARGET=local")
	waitFor(t, "namespace "+operatorNS+" deleted by make undeploy", 3*time.Minute, func() (bool, string) {
		_, err := clientset.CoreV1().Namespaces().Get(suiteCtx, operatorNS, metav1.GetOptions{})
		return err != nil, fmt.Sprintf("%v", err)
	})
	run(t, "make", "--no-print-directory", "deploy", "DEPLOY_TARGET=local")
	for _, d := range []string{managerDeploy, receiverDeploy} {
		waitFor(t, "Deployment "+d+" Available again", 3*time.Minute, func() (bool, string) {
			return deploymentReady(suiteCtx, operatorNS, d, 2)
		})
	}
	var leaderSince time.Time
	waitFor(t, "a new manager pod holding the leader Lease", 2*time.Minute, func() (bool, string) {
		holder, at := leaseHolder(t)
		leaderSince = at
		return holder != "", "holder " + holder
	})

	// The new leader has reconciled everything within this window; none of it was due, so
	// WeChat must not have been asked for any token.
	end := leaderSince.Add(30 * time.Second)
	if limit := due.Add(-3 * time.Second); limit.Before(end) {
		end = limit
	}
	if time.Until(end) < 10*time.Second {
		t.Fatalf("the redeploy took until %s, too close to the tokens' refresh at %s to tell a due refresh from an undue one",
			time.Now().Format(time.TimeOnly), due.Format(time.TimeOnly))
	}
	// The observation window: a call at any time in it fails the test.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ; time.Now().Before(end); <-tick.C {
		if now := tokenCalls(wechat.counters(t)); !maps.Equal(now, calls) {
			t.Fatalf("the redeployed managers asked WeChat for tokens that were not due (due from %s): calls %v, before %v", due.Format(time.TimeOnly), now, calls)
		}
	}
	after := snapshot(t)
	if err := before.sameAs(after); err != nil {
		t.Fatal(err)
	}
	t.Logf("custom resources and Secrets kept their UIDs and tokens; 0 token calls in the %s after the new leader took over",
		time.Since(leaderSince).Round(time.Second))
}

// leaseHolder is the manager pod holding the leader Lease (empty if none) and since when.
func leaseHolder(t *testing.T) (string, time.Time) {
	t.Helper()
	l, err := clientset.CoordinationV1().Leases(operatorNS).Get(suiteCtx, leaseName, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return "", time.Time{}
	}
	at := time.Now()
	if l.Spec.AcquireTime != nil {
		at = l.Spec.AcquireTime.Time
	}
	return *l.Spec.HolderIdentity, at
}

// state is what must survive a redeploy.
type state struct {
	uids      map[string]types.UID
	tokens    map[string]string // Secret -> token hash
	refreshAt []time.Time
}

func snapshot(t *testing.T) state {
	t.Helper()
	s := state{uids: map[string]types.UID{}, tokens: map[string]string{}}
	var comp wechatv1alpha1.WeChatComponent
	var auth wechatv1alpha1.WeChatAuthorizer
	for _, o := range []struct {
		name string
		obj  client.Object
	}{{componentName, &comp}, {authorizerName, &auth}} {
		if err := k8s.Get(suiteCtx, types.NamespacedName{Namespace: appsNS, Name: o.name}, o.obj); err != nil {
			t.Fatal(err)
		}
		s.uids[fmt.Sprintf("%T/%s", o.obj, o.name)] = o.obj.GetUID()
	}
	for _, at := range []*metav1.Time{comp.Status.RefreshAt, auth.Status.RefreshAt} {
		if at == nil {
			t.Fatal("status.refreshAt is not set")
		}
		s.refreshAt = append(s.refreshAt, at.Time)
	}
	for _, name := range []string{componentSecret, authorizerSecret} {
		sec, err := clientset.CoreV1().Secrets(appsNS).Get(suiteCtx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.uids["Secret/"+name] = sec.UID
		s.tokens[name] = harness.TokenHash(string(sec.Data[wechatv1alpha1.SecretKeyAccessToken]))
	}
	return s
}

func (s state) earliestRefresh() time.Time {
	if s.refreshAt[1].Before(s.refreshAt[0]) {
		return s.refreshAt[1]
	}
	return s.refreshAt[0]
}

func (s state) sameAs(o state) error {
	if !maps.Equal(s.uids, o.uids) {
		return fmt.Errorf("objects were recreated by the redeploy: UIDs before %v, after %v", s.uids, o.uids)
	}
	if !maps.Equal(s.tokens, o.tokens) {
		return fmt.Errorf("tokens changed across the redeploy although none was due: before %v, after %v", s.tokens, o.tokens)
	}
	return nil
}
