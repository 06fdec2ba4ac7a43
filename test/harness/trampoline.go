/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// envtest starts etcd and kube-apiserver itself, with no way to ask the kernel to kill them
// if the program that started them is killed (SIGKILL, a CI timeout): they would outlive it,
// holding their ports and data directories. So such a program points envtest at symlinks to
// its own binary named etcd and kube-apiserver (MakeTrampolines): started under those names,
// it sets the parent-death signal and execs the real binary, which keeps it (Trampoline).
const (
	envRealAssets = "WECHAT_HARNESS_REAL_ASSETS"
	envParentPID  = "WECHAT_HARNESS_PARENT_PID"
)

// trampolined are the programs started through the trampoline.
var trampolined = []string{"etcd", "kube-apiserver"}

// Trampoline execs the real etcd or kube-apiserver when this binary was started as one by
// MakeTrampolines' symlinks. Programs that call MakeTrampolines call it first thing in main;
// it returns only if the binary was started as itself.
func Trampoline() {
	name := filepath.Base(os.Args[0])
	assets := os.Getenv(envRealAssets)
	if assets == "" || !slices.Contains(trampolined, name) {
		return
	}
	if err := SetParentDeathSignal(); err != nil {
		fmt.Fprintf(os.Stderr, "trampoline: %v\n", err)
		os.Exit(1)
	}
	// If the parent died before the signal was set, there is nobody to serve.
	if want, err := strconv.Atoi(os.Getenv(envParentPID)); err == nil && os.Getppid() != want {
		os.Exit(1)
	}
	real := filepath.Join(assets, name)
	err := syscall.Exec(real, append([]string{real}, os.Args[1:]...), os.Environ())
	fmt.Fprintf(os.Stderr, "trampoline: exec %s: %v\n", real, err)
	os.Exit(1)
}

// MakeTrampolines creates dir/etcd and dir/kube-apiserver, symlinks to this program's binary,
// and sets the environment Trampoline reads (the real binaries are in assets). It returns the
// paths to give envtest.
func MakeTrampolines(dir, assets string) (map[string]string, error) {
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
	return paths, os.Setenv(envParentPID, strconv.Itoa(os.Getpid()))
}
