//go:build cluster

/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package cluster

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// consumerStats is what test/cluster/consumer serves on /stats.
type consumerStats struct {
	Calls      map[string]int `json:"calls"`
	Errors     int            `json:"errors"`
	Rejections []struct {
		Kind    string    `json:"kind"`
		Hash    string    `json:"hash"`
		ErrCode int       `json:"errcode"`
		At      time.Time `json:"at"`
	} `json:"rejections"`
	Tokens []struct {
		Kind      string    `json:"kind"`
		Hash      string    `json:"hash"`
		FirstSeen time.Time `json:"first_seen"`
	} `json:"tokens"`
}

func (s consumerStats) firstSeen(hash string) (time.Time, bool) {
	for _, v := range s.Tokens {
		if v.Hash == hash {
			return v.FirstSeen, true
		}
	}
	return time.Time{}, false
}

func readConsumer(t *testing.T, podIP string) consumerStats {
	t.Helper()
	var s consumerStats
	code, err := sim{base: "http://" + podIP + ":8080"}.do(suiteCtx, http.MethodGet, "/stats", nil, &s)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET consumer /stats: HTTP %d %v", code, err)
	}
	return s
}

// testConsumerOverRefreshes: issue 20 items 3 and 4. The consumer pod (config/samples'
// Deployment) has used the mounted tokens every second since step 2; it goes on through
// refresh cycles while the leader pod and a receiver pod are deleted.
func testConsumerOverRefreshes(t *testing.T) {
	waitFor(t, "the consumer Deployment ready", 2*time.Minute, func() (bool, string) {
		return deploymentReady(suiteCtx, appsNS, consumerDeploy, 1)
	})
	pods := podsOf(t, appsNS, consumerDeploy)
	if len(pods) != 1 || pods[0].Status.PodIP == "" {
		t.Fatalf("want one consumer pod with an IP, got %d", len(pods))
	}
	consumer := pods[0]
	started := consumer.Status.StartTime.Time
	initial := map[string]int{componentSecret: len(watch.Values(componentSecret)), authorizerSecret: len(watch.Values(authorizerSecret))}

	t.Run("4a the leader pod deleted: the other replica takes over", testLeaderLoss)
	waitForRefreshes(t, initial, 1)
	t.Run("4b a receiver pod deleted: pushes keep being accepted", testReceiverLoss)
	waitForRefreshes(t, initial, refreshCycles)

	// Every value must reach the pod's files; the last may still be on its way.
	var stats consumerStats
	waitFor(t, "the consumer pod reading the newest tokens", 3*time.Minute, func() (bool, string) {
		stats = readConsumer(t, consumer.Status.PodIP)
		for _, s := range []string{componentSecret, authorizerSecret} {
			if cur, ok := watch.Current(s); !ok {
				return false, s + " is empty"
			} else if _, seen := stats.firstSeen(cur.Hash); !seen {
				return false, fmt.Sprintf("%s value %s not in the pod's files yet", s, cur.Hash)
			}
		}
		return true, ""
	})

	if len(stats.Rejections) > 0 || stats.Errors > 0 {
		t.Errorf("the consumer's calls: %v, %d rejected by WeChat (%+v), %d unanswered; want 0 and 0", stats.Calls, len(stats.Rejections), stats.Rejections, stats.Errors)
	}
	// One call per token a second while the pod ran; a loaded node delays ticks (the ticker
	// drops them), so half of that still means "used continuously", and a consumer that
	// stopped or stalled falls short of it.
	ran := time.Since(started)
	if want := int(ran.Seconds() / 2); stats.Calls["component"] < want || stats.Calls["authorizer"] < want {
		t.Errorf("the consumer made only %v calls in %s (want at least %d each): it did not use the tokens continuously", stats.Calls, ran.Round(time.Second), want)
	}
	t.Logf("consumer: calls %v since %s, %d rejected, %d unanswered", stats.Calls, started.Format(time.TimeOnly), len(stats.Rejections), stats.Errors)
	reportPickup(t, stats, started)
	checkOneCallPerValue(t)
	for s, d := range watch.ExpiredServed() {
		if d > 0 {
			t.Errorf("Secret %s held an expired token for %s", s, d)
		}
	}
	if p := watch.Problems(); len(p) > 0 {
		t.Errorf("token values WeChat did not accept when they appeared: %s", strings.Join(p, "; "))
	}
}

// waitForRefreshes waits until both Secrets got n new values since initial.
func waitForRefreshes(t *testing.T, initial map[string]int, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d refreshes of both tokens", n), time.Duration(n)*3*time.Minute+time.Minute, func() (bool, string) {
		state := ""
		done := true
		for s, before := range initial {
			got := len(watch.Values(s)) - before
			state += fmt.Sprintf("%s: %d refreshes; ", s, got)
			done = done && got >= n
		}
		return done, state
	})
}

// reportPickup measures, for every value that appeared while the consumer ran, the time from
// the Secret's update (as the API server's watch showed it) to the pod's files showing it. The
// refreshes (every value after a Secret's first) are reported on their own: a first value can
// arrive while the pod is still starting.
func reportPickup(t *testing.T, stats consumerStats, consumerStarted time.Time) {
	var all, refreshes []time.Duration
	for _, s := range []string{componentSecret, authorizerSecret} {
		for i, v := range watch.Values(s) {
			if v.SeenAt.Before(consumerStarted) {
				continue
			}
			at, ok := stats.firstSeen(v.Hash)
			if !ok {
				t.Errorf("%s value %s (updated %s) never reached the consumer pod's files", s, v.Hash, v.SeenAt.Format(time.TimeOnly))
				continue
			}
			all = append(all, at.Sub(v.SeenAt))
			if i > 0 {
				refreshes = append(refreshes, at.Sub(v.SeenAt))
			}
		}
	}
	if len(refreshes) < 2*refreshCycles {
		t.Fatalf("only %d refresh pickups measured, want at least %d", len(refreshes), 2*refreshCycles)
	}
	for _, m := range []struct {
		what string
		d    []time.Duration
	}{{"refreshes", refreshes}, {"all values", all}} {
		sorted := sortedCopy(m.d)
		t.Logf("PICKUP (%s): Secret update -> pod file, n=%d: p50 %s, max %s, min %s (all: %v)", m.what, len(sorted),
			percentile(sorted, 0.5).Round(100*time.Millisecond), sorted[len(sorted)-1].Round(100*time.Millisecond),
			sorted[0].Round(100*time.Millisecond), m.d)
	}
}

// checkOneCallPerValue: no double refresh, even across the leader change: WeChat issued
// exactly as many tokens as the Secrets held values.
func checkOneCallPerValue(t *testing.T) {
	c := wechat.counters(t)
	for _, x := range []struct{ api, appID, secret string }{
		{"api_component_token", componentAppID, componentSecret},
		{"api_authorizer_token", authorizerAppID, authorizerSecret},
	} {
		calls, values := c.CallsFor(x.api, x.appID), len(watch.Values(x.secret))
		if calls != values {
			t.Errorf("%s was called %d times for %s, but Secret %s held %d values: a double (or lost) refresh", x.api, calls, x.appID, x.secret, values)
		} else {
			t.Logf("%s: %d calls, %d values in %s", x.api, calls, values, x.secret)
		}
	}
}

// testLeaderLoss deletes the pod holding the leader Lease, as a node drain or a crash would.
func testLeaderLoss(t *testing.T) {
	holder, _ := leaseHolder(t)
	if holder == "" {
		t.Fatal("no leader")
	}
	podName, _, _ := strings.Cut(holder, "_")
	deleted := time.Now()
	if err := clientset.CoreV1().Pods(operatorNS).Delete(suiteCtx, podName, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting leader pod %s: %v", podName, err)
	}
	var newHolder string
	waitFor(t, "another manager pod holding the Lease", 90*time.Second, func() (bool, string) {
		newHolder, _ = leaseHolder(t)
		return newHolder != "" && !strings.HasPrefix(newHolder, podName+"_"), "holder " + newHolder
	})
	t.Logf("leader %s deleted; %s took over after %s", podName, newHolder, time.Since(deleted).Round(100*time.Millisecond))
	waitFor(t, "the manager Deployment back at 2 ready replicas", 2*time.Minute, func() (bool, string) {
		return deploymentReady(suiteCtx, operatorNS, managerDeploy, 2)
	})
}

// testReceiverLoss deletes a receiver pod and keeps pushing until its replacement is ready:
// every push must be accepted (with WeChat's retries, as the simulator does them).
func testReceiverLoss(t *testing.T) {
	pods := podsOf(t, operatorNS, receiverDeploy)
	if len(pods) != 2 {
		t.Fatalf("%d receiver pods, want 2", len(pods))
	}
	victim := pods[0].Name
	if err := clientset.CoreV1().Pods(operatorNS).Delete(suiteCtx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pushes := 0
	for {
		ctx, cancel := context.WithTimeout(suiteCtx, time.Minute)
		ok, state := wechat.pushTicket(ctx, componentAppID)
		cancel()
		if !ok {
			t.Fatalf("push %d after deleting receiver pod %s was not accepted: %s", pushes+1, victim, state)
		}
		pushes++
		if ready, _ := deploymentReady(suiteCtx, operatorNS, receiverDeploy, 2); ready && pushes >= 5 && !podExists(t, victim) {
			break
		}
		if pushes > 200 {
			t.Fatalf("the receiver Deployment did not recover after %d pushes", pushes)
		}
	}
	t.Logf("receiver pod %s deleted: %d pushes in a row accepted while it went and its replacement came", victim, pushes)
}

func podExists(t *testing.T, name string) bool {
	_, err := clientset.CoreV1().Pods(operatorNS).Get(suiteCtx, name, metav1.GetOptions{})
	return err == nil
}
