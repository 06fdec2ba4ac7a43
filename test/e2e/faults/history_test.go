/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/gomega"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// observation is one state of a custom resource's status, as a watch saw it.
type observation struct {
	at             time.Time
	kind, name     string
	ready          string // "<status>/<reason>" of Ready
	lastFailure    string
	failedAttempts int32
	ticketCreated  time.Time // WeChatComponent: status.verifyTicket.createTime
	ticketHash     string
	lastQuotaReset time.Time
	annotations    map[string]string
}

func (o observation) String() string {
	return fmt.Sprintf("%s %s/%s ready=%s lastFailure=%q failedAttempts=%d",
		o.at.Format("15:04:05.000"), o.kind, o.name, o.ready, o.lastFailure, o.failedAttempts)
}

// history records every status the WeChatComponents and WeChatAuthorizers of a namespace go
// through, so that a scenario can tell what the conditions said while a fault lasted, even
// a state that lasted only a second.
type history struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	obs    []observation
}

func watchHistory(namespace string) *history {
	c, err := cache.New(cp.Admin, cache.Options{Scheme: cp.Scheme, DefaultNamespaces: map[string]cache.Config{namespace: {}}})
	Expect(err).NotTo(HaveOccurred())
	hctx, cancel := context.WithCancel(ctx)
	h := &history{cancel: cancel}
	for _, obj := range []client.Object{&wechatv1alpha1.WeChatComponent{}, &wechatv1alpha1.WeChatAuthorizer{}} {
		inf, err := c.GetInformer(hctx, obj)
		Expect(err).NotTo(HaveOccurred())
		_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { h.record(o) },
			UpdateFunc: func(_, o any) { h.record(o) },
		})
		Expect(err).NotTo(HaveOccurred())
	}
	go func() { _ = c.Start(hctx) }()
	Expect(c.WaitForCacheSync(hctx)).To(BeTrue())
	return h
}

func (h *history) record(obj any) {
	o := observation{at: time.Now()}
	switch x := obj.(type) {
	case *wechatv1alpha1.WeChatComponent:
		o.kind, o.name = "WeChatComponent", x.Name
		o.ready, o.lastFailure, o.failedAttempts = readyReason(x.Status.Conditions), x.Status.LastFailureReason, x.Status.FailedAttempts
		if t := x.Status.VerifyTicket; t != nil {
			o.ticketCreated, o.ticketHash = t.CreateTime.Time, harness.TokenHash(t.Ticket)
		}
		if r := x.Status.LastQuotaResetTime; r != nil {
			o.lastQuotaReset = r.Time
		}
		o.annotations = x.Annotations
	case *wechatv1alpha1.WeChatAuthorizer:
		o.kind, o.name = "WeChatAuthorizer", x.Name
		o.ready, o.lastFailure, o.failedAttempts = readyReason(x.Status.Conditions), x.Status.LastFailureReason, x.Status.FailedAttempts
		o.annotations = x.Annotations
	default:
		return
	}
	h.mu.Lock()
	h.obs = append(h.obs, o)
	h.mu.Unlock()
}

// find returns the observations of kind since t that match.
func (h *history) find(kind string, since time.Time, match func(observation) bool) []observation {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []observation
	for _, o := range h.obs {
		if o.kind == kind && !o.at.Before(since) && match(o) {
			out = append(out, o)
		}
	}
	return out
}

// sawFailure is a function for Eventually: whether kind recorded reason as its last failure,
// with failedAttempts > 0, and Ready carried it (True while the old token is still valid).
func (h *history) sawFailure(kind, reason string, since time.Time) func() bool {
	return func() bool {
		return len(h.find(kind, since, func(o observation) bool {
			return o.lastFailure == reason && o.failedAttempts > 0 && strings.HasSuffix(o.ready, "/"+reason)
		})) > 0
	}
}

// failures lists the failure observations of kind since t.
func (h *history) failures(kind string, since time.Time) []observation {
	return h.find(kind, since, func(o observation) bool { return o.failedAttempts > 0 })
}

// dump is every observation, for a failure message.
func (h *history) dump() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, o := range h.obs {
		b.WriteString(o.String() + "\n")
	}
	return b.String()
}

func (h *history) stop() { h.cancel() }
