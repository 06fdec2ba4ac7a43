/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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
