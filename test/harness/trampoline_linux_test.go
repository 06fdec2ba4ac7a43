/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// envTrampolineCaller makes the test binary the program that starts an "etcd" through
// MakeTrampolines' symlinks (trampolineCaller) instead of running the tests.
const envTrampolineCaller = "WECHAT_HARNESS_TEST_TRAMPOLINE_CALLER"

func TestMain(m *testing.M) {
	Trampoline()
	if dir := os.Getenv(envTrampolineCaller); dir != "" {
		trampolineCaller(dir)
	}
	os.Exit(m.Run())
}

// trampolineCaller starts dir/real's etcd through a trampoline, as StartControlPlane's
// DieWithCaller has envtest do (without a parent-death signal of its own), prints its pid and
// waits to be killed.
func trampolineCaller(dir string) {
	paths, err := MakeTrampolines(filepath.Join(dir, "trampolines"), filepath.Join(dir, "real"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cmd := exec.Command(paths["etcd"], "--data-dir", dir)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(cmd.Process.Pid)
	select {}
}

// TestTrampolinedProcessDiesWithItsCaller: etcd started through a trampoline is killed by the
// kernel when the program that started it is killed with SIGKILL, which leaves it no chance
// to stop its children.
func TestTrampolinedProcessDiesWithItsCaller(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The "real" etcd says it runs (through a FIFO the test reads, so that the test knows the
	// trampoline has exec'd it) and then lives until it is killed.
	fifo := filepath.Join(dir, "started")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho started > " + fifo + "\nexec sleep 3600\n"
	if err := os.WriteFile(filepath.Join(dir, "real", "etcd"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	caller := exec.Command(self)
	caller.Env = append(os.Environ(), envTrampolineCaller+"="+dir)
	caller.Stderr = os.Stderr
	out, err := caller.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caller.Process.Kill(); _ = caller.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the caller printed no pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	t.Cleanup(func() { _ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0) })
	started, err := os.ReadFile(fifo) // returns once the script has written and closed it
	if err != nil || strings.TrimSpace(string(started)) != "started" {
		t.Fatalf("the real etcd did not start: %q, %v", started, err)
	}
	if exited(t, pidfd, 0) {
		t.Fatal("the trampolined etcd exited before its caller was killed")
	}

	if err := caller.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := caller.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the caller: %v, want killed", err)
	}
	if !exited(t, pidfd, 10_000) {
		t.Fatal("the trampolined etcd outlived its caller by 10 s")
	}
}

// exited waits up to timeoutMs for the process behind pidfd to exit.
func exited(t *testing.T, pidfd, timeoutMs int) bool {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, timeoutMs)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
}
