/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import "syscall"

// childSysProcAttr puts a child in its own process group (a terminal's Ctrl-C reaches only
// the parent, which stops children in order) and kills it if the parent dies without cleaning up.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// SetParentDeathSignal has the kernel kill this process when its parent dies;
// the setting survives the exec into etcd or kube-apiserver.
func SetParentDeathSignal() error {
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
