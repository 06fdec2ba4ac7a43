/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"crypto/tls"

	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/wechat-operator/wechat-operator/internal/metricsauth"
)

// The manager's /metrics name every component and authorizer with its token's expiry, so
// they are served over HTTPS to callers the API server authenticates (TokenReview) and
// authorizes (SubjectAccessReview: "get" on the non-resource URL /metrics, which the
// metrics-reader ClusterRole grants), as kubebuilder's scaffold does with controller-runtime's
// metrics/filters; internal/metricsauth does the same without linking k8s.io/apiserver.

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// MetricsServerOptions serves metrics on bindAddress ("0" disables them): with secure, over
// HTTPS (certificates from certDir, tls.crt and tls.key, else self-signed) and only to
// authorized callers; without, plain HTTP to anyone (local runs on loopback only).
func MetricsServerOptions(bindAddress string, secure bool, certDir string) metricsserver.Options {
	o := metricsserver.Options{BindAddress: bindAddress}
	if !secure {
		return o
	}
	o.SecureServing = true
	o.FilterProvider = metricsauth.FilterProvider
	o.CertDir = certDir
	o.TLSOpts = []func(*tls.Config){func(c *tls.Config) {
		c.MinVersion = tls.VersionTLS12
		// HTTP/2's stream reset flood (CVE-2023-44487) costs a scraper nothing to mount.
		c.NextProtos = []string{"http/1.1"}
	}}
	return o
}
