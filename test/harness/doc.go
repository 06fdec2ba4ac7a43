/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package harness runs the whole wechat-operator as real processes on this machine: etcd and
// kube-apiserver (built by hack/setup-envtest.sh), the WeChat simulator, managers and webhook
// receivers, each authenticating as its ServiceAccount from config/default. The demo, the
// end-to-end fault tests (test/e2e) and the scale benchmark (make bench) are built on it.
//
// It starts, stops, kills and restarts processes, reads their memory from /proc, scrapes their
// Prometheus metrics and drives the simulator's admin API. It never prints a secret.
package harness
