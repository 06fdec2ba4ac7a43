/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package managerdefaults holds the manager's flag defaults (cmd/manager), so that what runs the
// manager with other numbers (test/scale compresses time and multiplies the rates) starts from
// these instead of copies.
package managerdefaults

import "time"

const (
	// WeChatAPIRate is --wechat-api-rate: the sustained WeChat API calls per second.
	WeChatAPIRate = 50
	// WeChatAPIBurst is --wechat-api-burst.
	WeChatAPIBurst = 100
	// WeChatAPIConcurrency is --wechat-api-concurrency: requests in flight at once.
	WeChatAPIConcurrency = 16
	// MaxConcurrentReconciles is --max-concurrent-reconciles: workers per controller, as many
	// as WeChat calls in flight. A refresh spends most of its time waiting on WeChat; with
	// fewer workers the calls in flight are capped below the concurrency, and the refreshes
	// that fall due hold every worker while the rest of the queue (a restart's initial list)
	// waits: at 100,000 authorizers, 4 workers with ~80 ms calls left the restart's backlog
	// under half a worker.
	MaxConcurrentReconciles = WeChatAPIConcurrency
	// WeChatAPITimeout is --wechat-api-timeout: the timeout of one request.
	WeChatAPITimeout = 10 * time.Second
	// KubeAPIQPS is --kube-api-qps: the sustained requests per second to the API server.
	KubeAPIQPS = 100
	// KubeAPIBurst is --kube-api-burst.
	KubeAPIBurst = 200
)
