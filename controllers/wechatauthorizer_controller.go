/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// Event reasons and messages of the WeChatAuthorizer controller. None carries a secret.
const (
	msgAuthorizerTokenIssued = "authorizer_access_token is in Secret %q, valid until %s, next refresh at %s"
	msgComponentNotFound     = "WeChatComponent %q not found in this namespace; create it or fix spec.componentRef.name"
	msgComponentNotReady     = "WeChatComponent %q has no valid component_access_token yet; waiting for it"
	msgNotAuthorized         = "account %s has not authorized WeChatComponent %q (it is not in api_get_authorizer_list); send its administrator an authorization link: kubectl wechat auth-link %s -n %s --redirect-uri <your page>"
	msgAuthorizedBy          = "authorized; refresh token kept in Secret %q"
	msgRevoked               = "the account revoked its authorization at %s; refreshing stopped (a new authorization resumes it)"
	msgRefreshTokenRecovered = "WeChat rejected the refresh token (61023); recovered the current one from api_get_authorizer_list"
	msgRefreshTokenImported  = "imported the refresh token from Secret %q"
	msgImportInvalid         = "spec.refreshTokenSecretRef: Secret %q has no key %q"

	infoRefreshInterval = 24 * time.Hour
)

// AuthorizerAPI is what the WeChatAuthorizer controller needs of WeChat.
type AuthorizerAPI interface {
	QueryAuth(ctx context.Context, componentToken, appID, authCode string) (wxapi.AuthorizationInfo, error)
	AuthorizerToken(ctx context.Context, componentToken, appID, authorizerAppID, refreshToken string) (wxapi.AuthorizerToken, error)
	GetAuthorizerInfo(ctx context.Context, componentToken, appID, authorizerAppID string) (wxapi.AuthorizerInfo, error)
	GetTicket(ctx context.Context, authorizerToken, ticketType string) (wxapi.Ticket, error)
	AuthorizerLister
	AuthorizerOptionsAPI
}

// WeChatAuthorizerReconciler keeps an authorized account's authorizer_access_token fresh
// and its authorizer_refresh_token safe.
type WeChatAuthorizerReconciler struct {
	client.Client
	// APIReader reads uncached: Secrets named by spec.refreshTokenSecretRef, and the
	// WeChatAuthorizer while the cache may lack our last status write.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	WeChat    AuthorizerAPI
	Clock     clock.PassiveClock
	Random    func() float64
	// MinRefreshMargin replaces the 10-minute least refresh margin when set: only for
	// compressed-time runs (benchmarks, a simulator with short tokens).
	MinRefreshMargin time.Duration
	// BackoffScale multiplies every failure backoff when set: only for compressed-time runs.
	BackoffScale float64
	// CodeBudget bounds the WeChat calls authorization codes cost, per component: give it
	// the WeChatComponent reconciler's. Nil: a default of its own.
	CodeBudget *CodeBudget
	budgetOnce sync.Once

	versions writtenVersions

	directory authorizerDirectory
	// KeyringNamespace and KeyringName locate the receiver keyring Secret, where the HMAC key
	// of spec.messages.forward is copied. Empty: forwarding keys are not projected.
	KeyringNamespace string
	KeyringName      string

	// Shard, when set, is the shard this manager serves (sharding.go): it serves only the
	// authorizers labelled for it and lets go of those the sharder drains.
	Shard string
	// Shared reads the WeChatComponents' token Secrets and writes the keyring when the
	// manager's own cache holds only its shard's Secrets (sharded: the other manager's
	// client). Nil: Client.
	Shared client.Client
}

// shared is the client for Secrets that belong to no authorizer.
func (r *WeChatAuthorizerReconciler) shared() client.Client {
	if r.Shared != nil {
		return r.Shared
	}
	return r.Client
}

// authorizerRun is one reconcile's working set.
type authorizerRun struct {
	a              *wechatv1alpha1.WeChatAuthorizer
	component      *wechatv1alpha1.WeChatComponent
	componentToken string
	// stateView is the state Secret as the cache holds it (stateView); stateSecret the Secret
	// itself once read (stateRead), nil if there is none or it is not ours; state its content.
	stateView   *corev1.Secret
	stateSecret *corev1.Secret
	stateRead   bool
	state       authorizerState
	tokenSecret *corev1.Secret
	served      *issuedToken // what the app-facing token Secret holds
	refreshAt   time.Time
	failure     *failure
	authorized  *metav1.Condition // nil: leave Authorized as it is
	waiting     string            // reason Ready is False without a failure
	waitingMsg  string
	codeWait    time.Duration // a pending code waits this long for its backoff or the budget
	tickets     ticketSet     // the API tickets the token Secret serves (spec.tickets)

	// options is OptionsApplied from this reconcile's check (nil: none); optionsWait is how
	// soon the options are due for a check.
	options     *metav1.Condition
	optionsWait time.Duration
}

// Reconcile: fetch → deletion → gather → decide → act (reconcile) → status, written once.
func (r *WeChatAuthorizerReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	// From the cache, unless our last status write may not be in it yet: a reconcile woken by
	// our own Secret writes must not see the status from before them (a pending code would be
	// exchanged twice). See writtenVersions.
	// before is the cache's own object, read only (the status as read); a is the one copy
	// the reconcile changes. A copy for each was a tenth of a restart's allocations.
	before := &wechatv1alpha1.WeChatAuthorizer{}
	if live, err := r.versions.fetch(ctx, r.Client, r.APIReader, req.NamespacedName, before, client.UnsafeDisableDeepCopy); err != nil || !live {
		if err == nil {
			err = r.pruneForwardKeys(ctx)
		}
		return reconcile.Result{}, err
	}
	a := before.DeepCopy()
	if done, err := r.releaseShard(ctx, a); done {
		return reconcile.Result{}, err
	}
	if err := r.projectForwardKey(ctx, a); err != nil {
		return reconcile.Result{}, err
	}
	run := &authorizerRun{a: a}
	result, err := r.reconcile(ctx, run)
	if run.codeWait > 0 && err == nil {
		result.RequeueAfter = firstRetry(result.RequeueAfter, run.codeWait)
	}
	if run.optionsWait > 0 && err == nil {
		result.RequeueAfter = firstRetry(result.RequeueAfter, run.optionsWait)
	}
	result.Priority = new(authorizerRequeuePriority(result.RequeueAfter, run.refreshAt, r.Clock.Now()))
	r.recordStatus(run)
	return authorizerStatusWriter(r.Client, r.APIReader, &r.versions).write(ctx, r.Clock.Now(), before, a, result, err)
}

// gather reads what the decision needs: the authorizer's two Secrets, its component and
// the component's token, all from the cache.
func (r *WeChatAuthorizerReconciler) gather(ctx context.Context, run *authorizerRun) (authorizerInput, error) {
	a := run.a
	in := authorizerInput{authorizer: a, minMargin: r.MinRefreshMargin, jitter: r.Random()}
	stateSecret, err := r.getAuthorizerSecret(ctx, a, stateSecretName(a))
	if err != nil {
		return in, err
	}
	if isStateView(stateSecret) {
		run.stateView = stateSecret // read when the decision needs it (readStateSecret)
	} else {
		run.useState(stateSecret) // read from the API server already (a shard's cache missed it)
	}
	if run.tokenSecret, err = r.getAuthorizerSecret(ctx, a, authorizerTokenSecretName(a)); err != nil {
		return in, err
	}
	if isTokenView(run.tokenSecret) && len(a.Spec.Tickets) > 0 {
		// getticket needs the token's value, and the tickets go into the Secret beside it.
		if run.tokenSecret, err = getLiveManagedSecret(ctx, r.APIReader, a.Namespace, run.tokenSecret.Name); err != nil {
			return in, err
		}
	}
	in.state, in.hasTokenSecret = run.state, run.tokenSecret != nil
	run.tickets = readTickets(run.tokenSecret, a)
	in.secretToken = readTokenSecret(run.tokenSecret, a.Spec.AppID)
	run.served = in.secretToken
	// The cache's own object, not a copy for each of its authorizers: read only (what
	// writes to the component, annotateComponent, writes a copy).
	component := &wechatv1alpha1.WeChatComponent{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: a.Namespace, Name: a.Spec.ComponentRef.Name}, component,
		client.UnsafeDisableDeepCopy); err != nil {
		if !apierrors.IsNotFound(err) {
			in.componentMsg = err.Error()
		}
		return in, nil
	}
	in.component, run.component = component, component
	// Only read as well (readTokenSecret copies what it keeps).
	if secret, err := getManagedSecret(ctx, r.shared(), component.Namespace, componentTokenSecretName(component), client.UnsafeDisableDeepCopy); err == nil {
		in.componentToken = readTokenSecret(secret, component.Spec.AppID)
	}
	if in.componentToken.validAt(r.Clock.Now()) {
		run.componentToken = in.componentToken.accessToken
	}
	return in, nil
}

// reconcile gathers, decides and acts. Writes happen in this order: the state Secret (a new
// refresh token is safe before anything uses it), the token Secret, and last, in Reconcile,
// the status.
func (r *WeChatAuthorizerReconciler) reconcile(ctx context.Context, run *authorizerRun) (reconcile.Result, error) {
	in, err := r.gather(ctx, run)
	if err != nil {
		return reconcile.Result{}, err
	}
	now := r.Clock.Now()
	plan := decideAuthorizer(in, now)
	if !run.stateRead && (plan.action == authorizerRefresh || plan.action == authorizerExchange ||
		stateMayBeNewer(run.stateView, in.secretToken)) {
		// The refresh token is needed, or the state may serve a newer token: decide on the Secret itself.
		if err := r.readStateSecret(ctx, run); err != nil {
			return reconcile.Result{}, err
		}
		in.state = run.state
		plan = decideAuthorizer(in, now)
	}
	if plan.action == authorizerExchange {
		// It carries a fresh refresh token; what it leaves is decided on again.
		if err := r.exchangeCode(ctx, run, now); err != nil {
			return r.fail(ctx, run, err)
		}
		in.state, in.codeHandled = run.state, true
		plan = decideAuthorizer(in, now)
	}
	return r.act(ctx, run, plan, now)
}

// act carries out the plan.
func (r *WeChatAuthorizerReconciler) act(ctx context.Context, run *authorizerRun, plan authorizerPlan, now time.Time) (reconcile.Result, error) {
	a := run.a
	switch plan.action {
	case authorizerFail:
		return r.fail(ctx, run, plan.failure)
	case authorizerStop:
		return r.stopRevoked(ctx, run, plan)
	case authorizerWait:
		run.waiting, run.waitingMsg = plan.waiting, plan.waitingMsg
		return reconcile.Result{RequeueAfter: plan.requeue}, nil
	}
	if plan.dropCode {
		a.Status.AuthorizationCode = nil
		log.FromContext(ctx).Info("authorization code expired before it could be exchanged; looking for the refresh token instead")
	}
	run.refreshAt = plan.refreshAt
	if plan.action == authorizerServe {
		if err := r.writeTokenSecret(ctx, run, plan.serve); err != nil {
			return r.fail(ctx, run, err)
		}
		r.markAuthorized(run)
		r.updateInfo(ctx, run, now)
		r.reconcileOptions(ctx, run, now)
		return r.reconcileTickets(ctx, run, plan, now, authorizerRequeue(run.refreshAt, a.Status.Info, now))
	}

	// A refresh token: ours, imported, or recovered from WeChat.
	if run.state.refreshToken == "" {
		if err := r.findRefreshToken(ctx, run); err != nil {
			return r.fail(ctx, run, err)
		}
		if run.state.refreshToken == "" {
			return r.notAuthorized(run)
		}
	}
	token, err := r.refreshToken(ctx, run, now)
	if err != nil {
		return r.fail(ctx, run, err)
	}
	run.refreshAt = plan.policy.RefreshAt(token.issuedAt, token.expiresAt, r.Random())
	r.markAuthorized(run)
	if !firstTokenReportedByCreator(a) {
		recordTokenEvent(r.Recorder, a, "authorizer_access_token", plan.hadToken, a.Status.FailedAttempts, token)
	}
	a.Status.FailedAttempts, a.Status.LastFailureReason = 0, ""
	log.FromContext(ctx).Info("authorizer_access_token refreshed", "authorizerAppID", a.Spec.AppID, "expiresAt", token.expiresAt)
	r.updateInfo(ctx, run, now)
	r.reconcileOptions(ctx, run, now)
	return r.reconcileTickets(ctx, run, plan, now, authorizerRequeue(run.refreshAt, a.Status.Info, now))
}

// revoked reports an unauthorized push newer than the last authorization and than any pending code.
func revoked(a *wechatv1alpha1.WeChatAuthorizer) bool {
	s := a.Status
	if s.UnauthorizedAt == nil {
		return false
	}
	if s.AuthorizedAt != nil && s.AuthorizedAt.After(s.UnauthorizedAt.Time) {
		return false
	}
	if s.AuthorizationCode != nil && s.AuthorizationCode.ReceivedAt != nil && s.AuthorizationCode.ReceivedAt.After(s.UnauthorizedAt.Time) {
		return false
	}
	return true
}

// stopRevoked records a revocation and, if spec asks, empties the token Secret. No requeue:
// a new authorization (a code recorded by the receiver) wakes us.
func (r *WeChatAuthorizerReconciler) stopRevoked(ctx context.Context, run *authorizerRun, plan authorizerPlan) (reconcile.Result, error) {
	a := run.a
	run.authorized = &metav1.Condition{Status: metav1.ConditionFalse, Reason: wechatv1alpha1.ReasonUnauthorized, Message: plan.waitingMsg}
	run.waiting, run.waitingMsg = plan.waiting, plan.waitingMsg
	if a.Status.LastFailureReason != wechatv1alpha1.ReasonUnauthorized {
		r.Recorder.Eventf(a, nil, corev1.EventTypeWarning, wechatv1alpha1.EventUnauthorized, "Stop", "%s", plan.waitingMsg)
	}
	a.Status.LastFailureReason = wechatv1alpha1.ReasonUnauthorized
	a.Status.RefreshAt = nil
	if plan.deleteToken {
		if _, err := r.tokenSecrets().ensure(ctx, a, run.tokenSecret, authorizerTokenSecretName(a), a.Spec.TokenSecret, authorizerLabels(a), nil); err != nil {
			return reconcile.Result{}, err
		}
		run.served, run.tickets = nil, nil
	}
	return reconcile.Result{}, nil
}

// exchangeCode trades the pending authorization code for tokens with api_query_auth. The
// refresh token is persisted before anything else; the code is cleared whatever happens
// to it, since WeChat accepts it only once.
func (r *WeChatAuthorizerReconciler) exchangeCode(ctx context.Context, run *authorizerRun, now time.Time) error {
	a := run.a
	code := a.Status.AuthorizationCode
	a.Status.AuthorizationCode = nil
	budget := r.budget()
	componentKey := client.ObjectKeyFromObject(run.component)
	if allowed, wait, overBudget := budget.allow(componentKey, code.Code); !allowed {
		// Kept for later; the token Secret meanwhile serves what it has.
		a.Status.AuthorizationCode, run.codeWait = code, wait
		if overBudget {
			budget.throttledNotice(ctx, r.Recorder, a, componentKey, wait)
		}
		return nil
	}
	info, err := r.WeChat.QueryAuth(ctx, run.componentToken, run.component.Spec.AppID, code.Code)
	if err == nil || wxapi.IsAuthCodeInvalid(err) {
		budget.succeeded(code.Code)
	}
	if err != nil {
		if wxapi.IsAuthCodeInvalid(err) {
			// Already used (the push and the redirect carried the same code) or stale:
			// the refresh token is then found the usual way.
			log.FromContext(ctx).Info("authorization code rejected as used or expired; looking for the refresh token instead")
			return nil
		}
		a.Status.AuthorizationCode = code // keep it for the retry, after its own backoff
		budget.failed(code.Code, code.ExpiresAt.Time)
		return r.reportToComponent(ctx, run, err)
	}
	if info.AuthorizerAppID != "" && info.AuthorizerAppID != a.Spec.AppID {
		return configurationFailure(wechatv1alpha1.ReasonNotAuthorized,
			fmt.Sprintf("the authorization code belongs to account %s, not to spec.appID %s", info.AuthorizerAppID, a.Spec.AppID))
	}
	token := newIssuedToken(info.AccessToken, a.Spec.AppID, now, info.ExpiresIn)
	run.state = authorizerState{refreshToken: info.RefreshToken, token: token}
	if err := r.saveState(ctx, run); err != nil {
		return err
	}
	if err := r.writeTokenSecret(ctx, run, token); err != nil {
		return err
	}
	authorizedAt := metav1.NewTime(now.UTC().Truncate(time.Second))
	a.Status.AuthorizedAt = &authorizedAt
	a.Status.Info = nil // fetch it again: the permissions may have changed
	r.Recorder.Eventf(a, nil, corev1.EventTypeNormal, wechatv1alpha1.EventAuthorized, "ExchangeCode",
		"the account authorized the platform; tokens issued, refresh token kept in Secret %q", stateSecretName(a))
	return nil
}

func (r *WeChatAuthorizerReconciler) budget() *CodeBudget {
	return codeBudgetOf(&r.CodeBudget, &r.budgetOnce, r.Clock, r.BackoffScale, r.Random)
}

// reportToComponent tells the component controller what WeChat said about the platform
// and returns err classified: a rejected component token (40001/42001/40014) asks for a new
// one; a used-up daily quota (45009) asks for a quota reset if the component opted in.
func (r *WeChatAuthorizerReconciler) reportToComponent(ctx context.Context, run *authorizerRun, err error) *failure {
	f := classifyAPIError(err)
	switch {
	case wxapi.IsInvalidToken(err) && run.component != nil:
		if perr := r.annotateComponent(ctx, run, wechatv1alpha1.AnnotationRefreshRequestedAt, r.Clock.Now()); perr != nil {
			log.FromContext(ctx).Info("could not ask for a component token refresh", "error", perr.Error())
		}
	case wxapi.IsQuota(err):
		if r.requestQuotaReset(ctx, run) {
			f = quotaRequestedHint(f, run.component.Name)
		}
	}
	return f
}

// annotateComponent sets a request annotation (an RFC 3339 time) on the run's component. It
// writes a copy: run.component is the cache's object.
func (r *WeChatAuthorizerReconciler) annotateComponent(ctx context.Context, run *authorizerRun, key string, at time.Time) error {
	patch := client.MergeFrom(run.component)
	component := run.component.DeepCopy()
	if component.Annotations == nil {
		component.Annotations = map[string]string{}
	}
	component.Annotations[key] = at.UTC().Format(time.RFC3339)
	if err := r.Patch(ctx, component, patch, fieldOwner); err != nil {
		return err
	}
	run.component = component
	return nil
}

func (r *WeChatAuthorizerReconciler) writeTokenSecret(ctx context.Context, run *authorizerRun, token *issuedToken) error {
	a := run.a
	w := r.tokenSecrets()
	w.extraData = run.tickets.data() // the tickets live beside the token
	secret, err := w.ensure(ctx, a, run.tokenSecret, authorizerTokenSecretName(a), a.Spec.TokenSecret, authorizerLabels(a), token)
	if err != nil {
		return r.secretError(err)
	}
	run.tokenSecret, run.served = secret, token
	if token.known() {
		run.state.token = token
	}
	return nil
}

// readStateSecret reads the state Secret from the API server, once per reconcile. Like the
// cache, it sees only a Secret the operator manages.
func (r *WeChatAuthorizerReconciler) readStateSecret(ctx context.Context, run *authorizerRun) error {
	if run.stateRead {
		return nil
	}
	secret, err := getLiveManagedSecret(ctx, r.APIReader, run.a.Namespace, stateSecretName(run.a))
	if err != nil {
		return err
	}
	run.useState(secret)
	return nil
}

// useState takes secret (nil: none) as the run's state Secret, read from the API server.
func (run *authorizerRun) useState(secret *corev1.Secret) {
	a := run.a
	if secret != nil && !metav1.IsControlledBy(secret, a) && !stateAdoptable(secret, a) {
		secret = nil // someone else's Secret under our name: its refresh token is not ours to use
	}
	run.stateSecret, run.stateRead = secret, true
	run.state = readState(secret, a.Spec.AppID)
}

// saveState writes run.state to the state Secret.
func (r *WeChatAuthorizerReconciler) saveState(ctx context.Context, run *authorizerRun) error {
	secret, err := writeState(ctx, r.Client, r.APIReader, run.a, run.stateSecret, run.state)
	if err != nil {
		return r.secretError(err)
	}
	run.stateSecret = secret
	return nil
}

func (r *WeChatAuthorizerReconciler) secretError(err error) error {
	var notOurs errSecretNotOurs
	if errors.As(err, &notOurs) {
		return configurationFailure(wechatv1alpha1.ReasonSecretConflict, err.Error())
	}
	return fmt.Errorf("writing a Secret: %w", err)
}

func (r *WeChatAuthorizerReconciler) markAuthorized(run *authorizerRun) {
	run.authorized = &metav1.Condition{Status: metav1.ConditionTrue, Reason: wechatv1alpha1.ReasonAuthorized,
		Message: fmt.Sprintf(msgAuthorizedBy, stateSecretName(run.a))}
}

func (r *WeChatAuthorizerReconciler) notAuthorized(run *authorizerRun) (reconcile.Result, error) {
	a := run.a
	if discoveredWithoutRefreshToken(a) {
		return r.refreshTokenMissing(run)
	}
	msg := fmt.Sprintf(msgNotAuthorized, a.Spec.AppID, a.Spec.ComponentRef.Name, a.Spec.ComponentRef.Name, a.Namespace)
	run.authorized = &metav1.Condition{Status: metav1.ConditionFalse, Reason: wechatv1alpha1.ReasonNotAuthorized, Message: msg}
	run.waiting, run.waitingMsg = wechatv1alpha1.ReasonNotAuthorized, msg
	// An authorization push wakes us; look again now and then in case it was missed.
	return reconcile.Result{RequeueAfter: refresh.ConfigurationError.Cap}, nil
}
