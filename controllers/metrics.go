/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// tokenExpiryDesc is computed at scrape time from the cached resources, so the series of a
// deleted resource disappears with it and no bookkeeping can go stale.
var tokenExpiryDesc = prometheus.NewDesc(
	"wechat_token_expiration_timestamp_seconds",
	"Unix time at which the access token currently in the resource's token Secret expires.",
	[]string{"kind", "namespace", "name"}, nil,
)

// TokenExpiryCollector exports wechat_token_expiration_timestamp_seconds.
type TokenExpiryCollector struct {
	Reader client.Reader
}

var _ prometheus.Collector = &TokenExpiryCollector{}

// Describe implements prometheus.Collector.
func (c *TokenExpiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- tokenExpiryDesc }

// Collect implements prometheus.Collector.
func (c *TokenExpiryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	components := &wechatv1alpha1.WeChatComponentList{}
	if err := c.Reader.List(ctx, components); err == nil {
		for i := range components.Items {
			item := &components.Items[i]
			if item.Status.ExpiresAt != nil {
				ch <- prometheus.MustNewConstMetric(tokenExpiryDesc, prometheus.GaugeValue,
					float64(item.Status.ExpiresAt.Unix()), "WeChatComponent", item.Namespace, item.Name)
			}
		}
	}
	authorizers := &wechatv1alpha1.WeChatAuthorizerList{}
	if err := c.Reader.List(ctx, authorizers); err == nil {
		for i := range authorizers.Items {
			item := &authorizers.Items[i]
			if item.Status.ExpiresAt != nil {
				ch <- prometheus.MustNewConstMetric(tokenExpiryDesc, prometheus.GaugeValue,
					float64(item.Status.ExpiresAt.Unix()), "WeChatAuthorizer", item.Namespace, item.Name)
			}
		}
	}
}
