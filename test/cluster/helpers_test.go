//go:build cluster

/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wechat-operator/wechat-operator/test/harness"
)

// waitFor polls check every interval until it returns true, and fails the test with what
// the last check said once timeout has passed.
func waitFor(t *testing.T, what string, timeout time.Duration, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := check()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen: %s", what, timeout, last)
		}
		select {
		case <-suiteCtx.Done():
			t.Fatalf("%s: %v (last seen: %s)", what, suiteCtx.Err(), last)
		case <-time.After(time.Second):
		}
	}
}

// run runs a command from the repository root and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(suiteCtx, name, args...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
}

// deploymentReady says whether d runs want replicas, all updated, ready and available.
func deploymentReady(ctx context.Context, ns, name string, want int32) (bool, string) {
	d, err := clientset.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	s := d.Status
	state := fmt.Sprintf("%s: spec %d, updated %d, ready %d, available %d", name, ptrOr(d.Spec.Replicas, 1), s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas)
	if ptrOr(d.Spec.Replicas, 1) != want || s.ObservedGeneration < d.Generation {
		return false, state
	}
	available := false
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
			available = true
		}
	}
	return available && s.UpdatedReplicas == want && s.ReadyReplicas == want && s.AvailableReplicas == want && s.Replicas == want, state
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// podsOf lists the running pods of a Deployment's selector that are not being deleted.
func podsOf(t *testing.T, ns, deployment string) []corev1.Pod {
	t.Helper()
	d, err := clientset.AppsV1().Deployments(ns).Get(suiteCtx, deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel := metav1.FormatLabelSelector(d.Spec.Selector)
	list, err := clientset.CoreV1().Pods(ns).List(suiteCtx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out = append(out, p)
		}
	}
	return out
}

// containerProcess is the host pid of a container's first process: containerd's runc shim
// writes it to <state>/io.containerd.runtime.v2.task/k8s.io/<id>/init.pid.
func containerProcess(t *testing.T, status corev1.ContainerStatus) int {
	t.Helper()
	id, ok := strings.CutPrefix(status.ContainerID, "containerd://")
	if !ok {
		t.Fatalf("container %s: unexpected container ID %q", status.Name, status.ContainerID)
	}
	data, err := os.ReadFile(filepath.Join(containerdState, "io.containerd.runtime.v2.task", "k8s.io", id, "init.pid"))
	if err != nil {
		t.Fatalf("container %s: %v", status.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// procStatusField is a field of /proc/<pid>/status, such as "Uid".
func procStatusField(t *testing.T, pid int, field string) []string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return nil
}

// rootMountOptions are the mount options of the process's root filesystem.
func rootMountOptions(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/" {
			return strings.Split(f[5], ",")
		}
	}
	t.Fatalf("/proc/%d/mountinfo has no root mount", pid)
	return nil
}

// sim is wechat-sim's admin API (docs/simulator.md).
type sim struct{ base string }

var simHTTP = &http.Client{Timeout: 2 * time.Minute}

func (s sim) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return 0, err
	}
	resp, err := simHTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, nil
}

func (s sim) counters(t *testing.T) harness.Counters {
	t.Helper()
	var out struct {
		Counters harness.Counters `json:"counters"`
	}
	if code, err := s.do(suiteCtx, http.MethodGet, "/admin/counters", nil, &out); err != nil || code != http.StatusOK {
		t.Fatalf("GET /admin/counters: HTTP %d %v", code, err)
	}
	return out.Counters
}

// pushTicket has the simulator push a component_verify_ticket to the receiver (through its
// Service) and says whether the receiver accepted it, with the simulator's retries.
func (s sim) pushTicket(ctx context.Context, componentAppID string) (bool, string) {
	var out struct {
		Delivered bool   `json:"delivered"`
		Error     string `json:"error"`
	}
	code, err := s.do(ctx, http.MethodPost, "/admin/push-ticket", map[string]string{"component_appid": componentAppID}, &out)
	if err != nil {
		return false, err.Error()
	}
	return code == http.StatusOK && out.Delivered, fmt.Sprintf("HTTP %d delivered=%v %s", code, out.Delivered, out.Error)
}

// tokenCalls are the calls that obtain tokens (what a manager makes when a token is due).
var tokenAPIs = []string{"api_component_token", "api_authorizer_token", "api_get_authorizer_list", "api_query_auth"}

func tokenCalls(c harness.Counters) map[string]int {
	out := map[string]int{}
	for _, api := range tokenAPIs {
		out[api] = c.Calls(api)
	}
	return out
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func sortedCopy(d []time.Duration) []time.Duration {
	out := slices.Clone(d)
	slices.Sort(out)
	return out
}
