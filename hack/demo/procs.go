/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is one process the demo started, in its own process group so that a terminal's
// Ctrl-C reaches only the demo, which then stops its children in order.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// startChild starts bin with args, its stdout and stderr appended to logPath.
func startChild(name, bin, logPath string, args ...string) (*child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		_ = logFile.Close()
		close(c.done)
	}()
	return c, nil
}

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's process group, waits up to grace, then kills the group.
func (c *child) stop(grace time.Duration) {
	if c.exited() {
		return
	}
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
	}
	// Anything the child itself started went with its group; make sure.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// tail returns the last n lines of the child's log.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers 200 or ctx ends; it fails early if c exits.
func waitHTTP(ctx context.Context, c *child, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if c != nil && c.exited() {
			return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", c.name, c.err, c.logPath, tail(c.logPath, 20))
		}
		select {
		case <-ctx.Done():
			if c != nil {
				return fmt.Errorf("%s did not answer %s in time; last lines of %s:\n%s", c.name, url, c.logPath, tail(c.logPath, 20))
			}
			return fmt.Errorf("%s did not answer in time", url)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// lockDir takes an exclusive lock on dir/lock for the life of the process, so two demos
// never share (and never clean up) the same directory.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := io.ReadAll(f)
		_ = f.Close()
		return nil, fmt.Errorf("another demo is using %s (pid %s); stop it first", dir, strings.TrimSpace(string(owner)))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// demoProcesses returns the pids of running processes whose command line mentions dir: the
// control plane (its data and certificate directories are under dir) and the demo's
// children (their kubeconfigs and seed file are). Called with dir locked, every such
// process is a leftover of a demo that was killed without a chance to clean up.
func demoProcesses(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
		if len(args) == 0 || !isDemoBinary(string(args[0])) {
			continue
		}
		if bytes.Contains(cmdline, []byte(dir+string(filepath.Separator))) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isDemoBinary(path string) bool {
	switch filepath.Base(path) {
	case "etcd", "kube-apiserver", "manager", "webhook-receiver", "wechat-sim":
		return true
	}
	return false
}

// killLeftovers ends the processes of an earlier demo in dir that did not get to clean up
// (the demo was killed with SIGKILL), waiting until they are gone.
func killLeftovers(dir string) error {
	pids := demoProcesses(dir)
	if len(pids) == 0 {
		return nil
	}
	fmt.Printf("    stopping %d process(es) left over from an earlier demo in %s: %v\n", len(pids), dir, pids)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if len(demoProcesses(dir)) == 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, pid := range demoProcesses(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	time.Sleep(500 * time.Millisecond)
	if left := demoProcesses(dir); len(left) > 0 {
		return fmt.Errorf("processes %v of an earlier demo would not stop", left)
	}
	return nil
}

// errExited is returned when a child stops while the demo runs.
var errExited = errors.New("a demo process exited")
