/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// Event reasons and messages of the WeChatComponent controller. None carries a secret.
const (
	msgTokenIssued      = "component_access_token is in Secret %q, valid until %s, next refresh at %s"
	msgTokenStillValid  = "%s; the current token in Secret %q stays valid until %s"
	msgNoToken          = "%s; no valid component_access_token is available"
	msgWaitingForTicket = "waiting for WeChat to push a component_verify_ticket to the receiver; check that the platform's 授权事件接收URL points at the receiver (…/wechat/%s/%s/events)"
	// No time in it: status.verifyTicket.receivedAt has it, and a message that changed with
	// every push would cost a second status write per push.
	msgTicketValid       = "a valid component_verify_ticket is in status.verifyTicket; WeChat pushes a new one every 10 minutes"
	msgTicketExpired     = "the newest component_verify_ticket is older than 12 hours; WeChat was asked to push a new one"
	msgTicketRejected    = "WeChat rejected the component_verify_ticket; waiting for a new push"
	msgTicketRequested   = "asked WeChat to push a component_verify_ticket (api_start_push_ticket)"
	msgRetryAt           = "the last refresh failed (%s, see the Events); the next attempt is at %s"
	ticketValidity       = 12 * time.Hour
	startPushMinInterval = 10 * time.Minute
	// keyringSettleTime is how long new receiver keys get to reach the receivers' caches
	// before WeChat is asked to push a ticket signed with them.
	keyringSettleTime = 2 * time.Second
)

// ComponentAPI is what the WeChatComponent controller needs of WeChat.
type ComponentAPI interface {
	ComponentToken(ctx context.Context, appID, appSecret, ticket string) (wxapi.ComponentToken, error)
	StartPushTicket(ctx context.Context, appID, appSecret string) error
}

// WeChatComponentReconciler keeps a WeChatComponent's component_access_token fresh in its
// token Secret and projects its receiver keys into the keyring.
type WeChatComponentReconciler struct {
	// Client reads from the manager's cache (CRs, managed Secrets) and writes to the API server.
	client.Client
	// APIReader reads uncached: credentials Secrets, which are not in the cache, and the
	// WeChatComponent while the cache may lack our last status write.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	WeChat    ComponentAPI
	// Clock is the time source; tests use a fake one.
	Clock clock.PassiveClock
	// Random returns a number in [0, 1) for jitter; tests pin it.
	Random func() float64
	// MinRefreshMargin replaces the 10-minute least refresh margin when set: only for
	// compressed-time runs (benchmarks, a simulator with short tokens).
	MinRefreshMargin time.Duration
	// BackoffScale multiplies every failure backoff when set: only for compressed-time runs.
	BackoffScale float64
	// CodeBudget bounds the WeChat calls authorization codes cost, per component; the
	// manager shares one with the WeChatAuthorizer reconciler. Nil: a default of its own.
	CodeBudget *CodeBudget

	versions writtenVersions
	// KeyringNamespace and KeyringName locate the receiver keyring Secret.
	KeyringNamespace string
	KeyringName      string

	startPushMu   sync.Mutex
	lastStartPush map[types.NamespacedName]time.Time
	testReplies   testReplyMemory
	budgetOnce    sync.Once
	quota         quotaMemory
	retries       retryMemory
	links         linkBudget
}

// Reconcile: fetch → deletion → gather and the steps (reconcileSteps) → status, written once.
func (r *WeChatComponentReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	// From the cache, unless our last status write may not be in it yet (writtenVersions).
	component := &wechatv1alpha1.WeChatComponent{}
	if live, err := r.versions.fetch(ctx, r.Client, r.APIReader, req.NamespacedName, component); err != nil || !live {
		if err == nil {
			err = r.pruneKeyring(ctx)
		}
		return reconcile.Result{}, err
	}
	before := component.DeepCopy()
	state, result, err := r.reconcileSteps(ctx, component)
	r.recordStatus(component, state)
	return componentStatusWriter(r.Client, r.APIReader, &r.versions).write(ctx, r.Clock.Now(), before, component, result, err)
}

// requestTicketPush calls api_start_push_ticket at most once per startPushMinInterval per component.
func (r *WeChatComponentReconciler) requestTicketPush(ctx context.Context, c *wechatv1alpha1.WeChatComponent, creds credentials) {
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	now := r.Clock.Now()
	r.startPushMu.Lock()
	if r.lastStartPush == nil {
		r.lastStartPush = map[types.NamespacedName]time.Time{}
	}
	last, called := r.lastStartPush[key]
	if called && now.Sub(last) < startPushMinInterval {
		r.startPushMu.Unlock()
		return
	}
	r.lastStartPush[key] = now
	r.startPushMu.Unlock()

	if err := r.WeChat.StartPushTicket(ctx, c.Spec.AppID, creds.appSecret); err != nil {
		log.FromContext(ctx).Info("api_start_push_ticket failed", "error", err.Error())
		return
	}
	r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, wechatv1alpha1.EventTicketRequested, "RequestTicket", msgTicketRequested)
}

// recordStatus turns what the reconcile learned into status and conditions.
func (r *WeChatComponentReconciler) recordStatus(c *wechatv1alpha1.WeChatComponent, state *componentState) {
	now := r.Clock.Now()
	s := &c.Status
	s.ObservedGeneration = c.Generation
	recordToken(&s.TokenStatus, componentTokenSecretName(c), state.token, state.refreshAt)
	if state.ticketReason != "" {
		status := metav1.ConditionFalse
		if state.ticketReason == wechatv1alpha1.ReasonTicketValid {
			status = metav1.ConditionTrue
		}
		setCondition(&s.Conditions, c.Generation, wechatv1alpha1.ConditionTicketReceived, status, state.ticketReason, state.ticketMsg)
	}
	if state.gated {
		keepBackedOffReady(&s.Conditions, c.Generation, now, state.token, s.LastFailureReason, state.refreshAt)
		return
	}
	setReady(&s.Conditions, c.Generation, now, state.token, state.refreshAt, state.failure, s.TokenSecretName, state.ticketReason, state.ticketMsg)
	setStalled(&s.Conditions, c.Generation, state.failure)
}

func componentTokenSecretName(c *wechatv1alpha1.WeChatComponent) string {
	if c.Spec.TokenSecret.Name != "" {
		return c.Spec.TokenSecret.Name
	}
	return c.Name + "-component-token"
}

func componentLabels(c *wechatv1alpha1.WeChatComponent) map[string]string {
	return map[string]string{wechatv1alpha1.LabelComponent: c.Name}
}

func (r *WeChatComponentReconciler) tokenSecrets() *tokenSecretWriter {
	return &tokenSecretWriter{client: r.Client, reader: r.APIReader, scheme: r.Scheme}
}

func (r *WeChatComponentReconciler) failures() failureRecorder {
	return failureRecorder{recorder: r.Recorder, clock: r.Clock, random: r.Random, backoffScale: r.BackoffScale,
		humanEvent: wechatv1alpha1.EventCredentialsInvalid, what: "component"}
}

func (r *WeChatComponentReconciler) budget() *CodeBudget {
	return codeBudgetOf(&r.CodeBudget, &r.budgetOnce, r.Clock, r.BackoffScale, r.Random)
}

func (r *WeChatComponentReconciler) keyring() *keyringWriter {
	return &keyringWriter{client: r.Client, reader: r.APIReader, namespace: r.KeyringNamespace, name: r.KeyringName}
}

// pruneKeyring drops the keyring entries of components that no longer exist.
func (r *WeChatComponentReconciler) pruneKeyring(ctx context.Context) error {
	live, err := liveObjects(ctx, r.Client, &wechatv1alpha1.WeChatComponentList{})
	if err != nil {
		return err
	}
	return r.keyring().prune(ctx, func(n types.NamespacedName) bool { return live[n] })
}
