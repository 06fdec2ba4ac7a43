/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/wechat-operator/wechat-operator/test/harness"
)

// envtest starts etcd and kube-apiserver itself, with no way to ask the kernel to kill them
// if the demo is killed (SIGKILL, a CI timeout). So the demo points envtest at symlinks to
// its own binary named etcd and kube-apiserver: started under those names, the demo sets
// the parent-death signal and execs the real binary, which keeps it.
const (
	envRealAssets = "WECHAT_DEMO_REAL_ASSETS"
	envDemoPID    = "WECHAT_DEMO_PID"
)

// trampolined are the programs started through the trampoline.
var trampolined = []string{"etcd", "kube-apiserver"}

// maybeTrampoline execs the real binary when the demo was started as one of trampolined.
// It returns only if the demo was started as itself.
func maybeTrampoline() {
	name := filepath.Base(os.Args[0])
	assets := os.Getenv(envRealAssets)
	if assets == "" || (name != "etcd" && name != "kube-apiserver") {
		return
	}
	if err := harness.SetParentDeathSignal(); err != nil {
		fmt.Fprintf(os.Stderr, "demo trampoline: %v\n", err)
		os.Exit(1)
	}
	// If the demo died before the signal was set, there is nobody to serve.
	if want, err := strconv.Atoi(os.Getenv(envDemoPID)); err == nil && os.Getppid() != want {
		os.Exit(1)
	}
	real := filepath.Join(assets, name)
	args := append([]string{real}, os.Args[1:]...)
	err := syscall.Exec(real, args, os.Environ())
	fmt.Fprintf(os.Stderr, "demo trampoline: exec %s: %v\n", real, err)
	os.Exit(1)
}

// makeTrampolines creates dir/<name> symlinks to the demo's binary and sets the environment
// the trampoline reads.
func makeTrampolines(dir, assets string) (map[string]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, name := range trampolined {
		p := filepath.Join(dir, name)
		_ = os.Remove(p)
		if err := os.Symlink(self, p); err != nil {
			return nil, err
		}
		paths[name] = p
	}
	if err := os.Setenv(envRealAssets, assets); err != nil {
		return nil, err
	}
	return paths, os.Setenv(envDemoPID, strconv.Itoa(os.Getpid()))
}
