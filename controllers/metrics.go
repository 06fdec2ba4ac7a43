/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
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

// Series the alert rules of config/prometheus need, read from status at scrape time like the
// token expiry. Label values are object names and condition reasons (a fixed set of
// constants), never a token, ticket or code.
var (
	ticketCreatedDesc = prometheus.NewDesc(
		"wechat_verify_ticket_timestamp_seconds",
		"Unix time WeChat created the newest component_verify_ticket in the WeChatComponent's status (pushed every 10 minutes).",
		[]string{"namespace", "name"}, nil,
	)
	refreshFailuresDesc = prometheus.NewDesc(
		"wechat_refresh_failures",
		"Consecutive failed attempts of the resource (status.failedAttempts), by status.lastFailureReason; absent while the last attempt succeeded.",
		[]string{"kind", "namespace", "name", "reason"}, nil,
	)
	stalledDesc = prometheus.NewDesc(
		"wechat_resource_stalled",
		"1 while the resource's Stalled condition is True (a human must act), by its reason; absent otherwise.",
		[]string{"kind", "namespace", "name", "reason"}, nil,
	)
)

// collectStatus sends the status series of one resource.
func collectStatus(ch chan<- prometheus.Metric, kind, namespace, name string, failedAttempts int32, lastFailureReason string, conds []metav1.Condition) {
	if failedAttempts > 0 {
		ch <- prometheus.MustNewConstMetric(refreshFailuresDesc, prometheus.GaugeValue, float64(failedAttempts),
			kind, namespace, name, lastFailureReason)
	}
	if c := meta.FindStatusCondition(conds, wechatv1alpha1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		ch <- prometheus.MustNewConstMetric(stalledDesc, prometheus.GaugeValue, 1, kind, namespace, name, c.Reason)
	}
}

// TokenExpiryCollector exports wechat_token_expiration_timestamp_seconds and the status
// series above.
type TokenExpiryCollector struct {
	Reader client.Reader
}

var _ prometheus.Collector = &TokenExpiryCollector{}

// Describe implements prometheus.Collector.
func (c *TokenExpiryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tokenExpiryDesc
	ch <- ticketCreatedDesc
	ch <- refreshFailuresDesc
	ch <- stalledDesc
}

// Collect implements prometheus.Collector.
func (c *TokenExpiryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	eachCached(ctx, c.Reader, &wechatv1alpha1.WeChatComponentList{}, func(l *wechatv1alpha1.WeChatComponentList) []wechatv1alpha1.WeChatComponent { return l.Items },
		func(item *wechatv1alpha1.WeChatComponent) {
			if item.Status.ExpiresAt != nil {
				ch <- prometheus.MustNewConstMetric(tokenExpiryDesc, prometheus.GaugeValue,
					float64(item.Status.ExpiresAt.Unix()), "WeChatComponent", item.Namespace, item.Name)
			}
			if t := item.Status.VerifyTicket; t != nil && !t.CreateTime.IsZero() {
				ch <- prometheus.MustNewConstMetric(ticketCreatedDesc, prometheus.GaugeValue,
					float64(t.CreateTime.Unix()), item.Namespace, item.Name)
			}
			collectStatus(ch, "WeChatComponent", item.Namespace, item.Name, item.Status.FailedAttempts, item.Status.LastFailureReason, item.Status.Conditions)
		})
	eachCached(ctx, c.Reader, &wechatv1alpha1.WeChatAuthorizerList{}, func(l *wechatv1alpha1.WeChatAuthorizerList) []wechatv1alpha1.WeChatAuthorizer { return l.Items },
		func(item *wechatv1alpha1.WeChatAuthorizer) {
			if item.Status.ExpiresAt != nil {
				ch <- prometheus.MustNewConstMetric(tokenExpiryDesc, prometheus.GaugeValue,
					float64(item.Status.ExpiresAt.Unix()), "WeChatAuthorizer", item.Namespace, item.Name)
			}
			collectStatus(ch, "WeChatAuthorizer", item.Namespace, item.Name, item.Status.FailedAttempts, item.Status.LastFailureReason, item.Status.Conditions)
		})
}

// eachCached calls f with every object of the list's kind that r holds, read only. From a
// cache with one informer for the kind, its store is walked: the cache's own objects, one
// pointer each. A list, even without deep copies, is a slice of every object's struct: 58 MB
// allocated per scrape at 100,000 authorizers. Any other reader is listed. Nothing is
// collected if the kind cannot be read.
func eachCached[L client.ObjectList, T any, P interface {
	*T
	client.Object
}](ctx context.Context, r client.Reader, list L, items func(L) []T, f func(P)) {
	if informers, ok := r.(cache.Informers); ok {
		informer, err := informers.GetInformer(ctx, P(new(T)))
		if err != nil {
			return
		}
		if store, ok := informer.(interface{ GetStore() toolscache.Store }); ok {
			for _, o := range store.GetStore().List() {
				if obj, ok := o.(P); ok {
					f(obj)
				}
			}
			return
		}
	}
	if err := r.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	all := items(list)
	for i := range all {
		f(&all[i])
	}
}
