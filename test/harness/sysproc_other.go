//go:build !linux

/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import "syscall"

// childSysProcAttr puts a child in its own process group, so that a terminal's Ctrl-C
// reaches only the parent, which then stops its children in order.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// SetParentDeathSignal is Linux-only; elsewhere a later run stops leftovers.
func SetParentDeathSignal() error { return nil }
