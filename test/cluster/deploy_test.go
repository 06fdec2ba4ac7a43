//go:build cluster

/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wechat-operator/wechat-operator/internal/memlimit"
)

// testDeployments: issue 20 item 1.
func testDeployments(t *testing.T) {
	for _, d := range []string{managerDeploy, receiverDeploy} {
		waitFor(t, "Deployment "+d+" Available with 2 ready replicas", 4*time.Minute, func() (bool, string) {
			return deploymentReady(suiteCtx, operatorNS, d, 2)
		})
	}

	ns, err := clientset.CoreV1().Namespaces().Get(suiteCtx, operatorNS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Fatalf("namespace %s enforces Pod Security %q, want restricted", operatorNS, got)
	}
	// Enforced, not only labelled: the API server refuses a pod that breaks the profile.
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "psa-probe", Namespace: operatorNS},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "localhost/wechat-operator/manager:local"}}},
	}
	_, err = clientset.CoreV1().Pods(operatorNS).Create(suiteCtx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity \"restricted") {
		t.Fatalf("a pod without the restricted securityContext was not refused by Pod Security admission: %v", err)
	}

	for _, d := range []string{managerDeploy, receiverDeploy} {
		pods := podsOf(t, operatorNS, d)
		if len(pods) != 2 {
			t.Fatalf("%s: %d running pods, want 2", d, len(pods))
		}
		for _, p := range pods {
			checkPod(t, p)
		}
	}
}

// checkPod: the probes are set and pass, and the container's process really runs as
// 65532:65532 on a read-only root filesystem (read from the node's /proc, not the spec).
func checkPod(t *testing.T, p corev1.Pod) {
	t.Helper()
	if len(p.Spec.Containers) != 1 || len(p.Status.ContainerStatuses) != 1 {
		t.Fatalf("pod %s: want one container", p.Name)
	}
	c, st := p.Spec.Containers[0], p.Status.ContainerStatuses[0]
	if c.ReadinessProbe == nil || c.LivenessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet == nil {
		t.Fatalf("pod %s: want HTTP readiness and liveness probes", p.Name)
	}
	if !st.Ready || st.RestartCount != 0 || st.State.Running == nil {
		t.Fatalf("pod %s: ready=%v restarts=%d state=%+v: readiness must pass and liveness never fail", p.Name, st.Ready, st.RestartCount, st.State)
	}
	pid := containerProcess(t, st)
	for _, field := range []string{"Uid", "Gid"} {
		if got := procStatusField(t, pid, field); !slices.Equal(got, []string{"65532", "65532", "65532", "65532"}) {
			t.Errorf("pod %s: process %d %s %v, want 65532 (real, effective, saved, fs)", p.Name, pid, field, got)
		}
	}
	if caps := procStatusField(t, pid, "CapEff"); len(caps) != 1 || strings.Trim(caps[0], "0") != "" {
		t.Errorf("pod %s: effective capabilities %v, want none", p.Name, caps)
	}
	if opts := rootMountOptions(t, pid); !slices.Contains(opts, "ro") {
		t.Errorf("pod %s: root filesystem mounted %v, want read-only", p.Name, opts)
	}
	t.Logf("pod %s: ready, 0 restarts, process %d runs as 65532:65532 without capabilities on a read-only root", p.Name, pid)
}

// testMemoryLimit: issue 20 item 5. Each manager logs the limit it read from its cgroup (v1
// on this host; internal/memlimit's tests cover v2) and the soft limit it set; both must
// match the Deployment's limit and the limit the kubelet really put on the container.
func testMemoryLimit(t *testing.T) {
	pods := podsOf(t, operatorNS, managerDeploy)
	if len(pods) == 0 {
		t.Fatal("no manager pod")
	}
	for _, p := range pods {
		want := p.Spec.Containers[0].Resources.Limits.Memory().Value()
		pid := containerProcess(t, p.Status.ContainerStatuses[0])
		if cg := cgroupMemoryLimit(t, pid); cg != want {
			t.Fatalf("pod %s: the container's cgroup limit is %d, the spec says %d", p.Name, cg, want)
		}
		limit, soft := loggedMemoryLimit(t, p)
		if limit != want || soft != memlimit.SoftLimit(want, memlimit.DefaultFraction) {
			t.Fatalf("pod %s logged containerLimitBytes=%d softLimitBytes=%d; want %d and %d (%.0f%%)", p.Name, limit, soft,
				want, memlimit.SoftLimit(want, memlimit.DefaultFraction), memlimit.DefaultFraction*100)
		}
		t.Logf("pod %s: limit %d read from its cgroup, soft limit %d", p.Name, limit, soft)
	}
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup from the node (v1 or v2).
func cgroupMemoryLimit(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		var file string
		switch {
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			file = filepath.Join("/sys/fs/cgroup/memory", f[2], "memory.limit_in_bytes")
		case f[0] == "0" && f[1] == "":
			file = filepath.Join("/sys/fs/cgroup", f[2], "memory.max")
		default:
			continue
		}
		v, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		if err != nil {
			t.Fatalf("%s: %q", file, v)
		}
		return n
	}
	t.Fatalf("process %d: no memory cgroup in /proc/%d/cgroup", pid, pid)
	return 0
}

// loggedMemoryLimit finds cmd/manager's start-up line about the soft memory limit.
func loggedMemoryLimit(t *testing.T, p corev1.Pod) (limit, soft int64) {
	t.Helper()
	rc, err := clientset.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).Stream(suiteCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg   string `json:"msg"`
			Limit int64  `json:"containerLimitBytes"`
			Soft  int64  `json:"softLimitBytes"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && strings.HasPrefix(line.Msg, "Go soft memory limit set") {
			return line.Limit, line.Soft
		}
	}
	t.Fatalf("pod %s never logged \"Go soft memory limit set ...\" (err %v)", p.Name, sc.Err())
	return 0, 0
}
