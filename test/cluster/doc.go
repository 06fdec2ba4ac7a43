/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package cluster is the suite that runs against real pods on the local one-node cluster of
// `make cluster` (hack/cluster.sh): the images of `make images`, deployed by `make deploy`
// (config/local), with wechat-sim as WeChat in a pod. Its tests carry the build tag
// "cluster", so `go test ./...` does not run them; `make test-cluster` brings the cluster up,
// runs them inside its network namespace, and tears it down.
package cluster
