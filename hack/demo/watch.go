/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// tokenObservation is one value of a token Secret. The token itself is kept only to notice
// a change and to ask the simulator whether it works; it is never printed.
type tokenObservation struct {
	token     string
	expiresAt time.Time
	hash      string
	seenAt    time.Time
}

// tokenTrack follows one token Secret over time.
type tokenTrack struct {
	secret    string
	kind      string // "component" or "authorizer"
	first     *tokenObservation
	last      *tokenObservation
	refreshes int
	// verified counts tokens the simulator accepted when used the way an app uses them.
	verified int
	// verifiedLast is true once the current token was accepted.
	verifiedLast bool
	problem      string
}

// observer watches the cluster and the simulator and keeps what the check asserts.
type observer struct {
	d *demo

	component  *tokenTrack
	authorizer *tokenTrack

	ticketReceivedAt time.Time
	tickets          int
	seenEvents       map[types.UID]bool

	authorized       bool
	authorizePush    bool
	authorizeErr     string
	authorizeTries   int
	nextAuthorize    time.Time
	codeRecorded     bool
	controllerKnown  bool
	authorizerCtrl   bool
	assertAuthorizer bool

	componentReady, ticketReceived  bool
	authorizerReady, authorizerAuth bool

	jsapi     ticketTrack    // the sample authorizer's spec.tickets jsapi (tickets.go)
	discovery discoveryTrack // the spec.authorizers.discover pass (discovery.go)
}

func newObserver(d *demo) *observer {
	return &observer{
		d:          d,
		component:  &tokenTrack{secret: d.samples.componentSecret, kind: "component"},
		authorizer: &tokenTrack{secret: d.samples.authorizerSecret, kind: "authorizer"},
		seenEvents: map[types.UID]bool{},
	}
}

// stamp is the time since the demo started, for event lines.
func (o *observer) stamp() string {
	e := time.Since(o.d.started).Round(time.Second)
	return fmt.Sprintf("[+%02d:%02d]", int(e.Minutes()), int(e.Seconds())%60)
}

func (o *observer) event(format string, args ...any) {
	fmt.Printf("%s %s\n", o.stamp(), fmt.Sprintf(format, args...))
}

// watch is the demo's main loop: observe every second, print the state every --interval,
// and in check mode stop when every assertion holds (or fail at the deadline).
func (d *demo) watch(ctx context.Context) error {
	o := d.obs
	step("watching (every %s)%s", d.opts.interval, map[bool]string{true: "", false: "; press Ctrl-C to stop everything"}[d.opts.check])
	if !d.opts.check {
		info("meanwhile, in another terminal:")
		info("  export KUBECONFIG=%s", d.adminKubeconfig)
		info("  kubectl get wxc,wxa -n %s -o wide", d.opts.namespace)
		info("  kubectl get secret %s -n %s -o jsonpath='{.data.expires_at}' | base64 -d", o.component.secret, d.opts.namespace)
		info("  curl -s %s/admin/state          # what \"WeChat\" knows", d.simURL)
		info("  curl -s -XPOST %s/admin/faults -d '{\"api\":\"api_component_token\",\"count\":3,\"errcode\":-1}'   # make WeChat busy", d.simURL)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	nextPrint := time.Now()
	for {
		if err := d.childrenAlive(); err != nil {
			return err
		}
		if err := o.observe(ctx); err != nil && ctx.Err() == nil {
			o.event("observing failed: %v", err)
		}
		if err := o.advance(ctx); err != nil {
			return err
		}
		if !time.Now().Before(nextPrint) {
			d.printState(ctx)
			nextPrint = time.Now().Add(d.opts.interval)
		}
		if d.opts.check {
			missing := o.missing()
			if len(missing) == 0 {
				d.printState(ctx)
				o.printSummary(ctx)
				return nil
			}
			if time.Now().After(d.deadline) {
				d.printState(ctx)
				return fmt.Errorf("after %s, still missing:\n  - %s", d.opts.timeout, strings.Join(missing, "\n  - "))
			}
		}
		select {
		case <-ctx.Done():
			if d.opts.check {
				return fmt.Errorf("interrupted; still missing:\n  - %s", strings.Join(o.missing(), "\n  - "))
			}
			return nil
		case <-tick.C:
		}
	}
}

// observe reads the custom resources, token Secrets and Events.
func (o *observer) observe(ctx context.Context) error {
	d := o.d
	ns := d.opts.namespace
	var comp wechatv1alpha1.WeChatComponent
	if err := d.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: d.samples.componentName}, &comp); err != nil {
		return err
	}
	o.componentReady = meta.IsStatusConditionTrue(comp.Status.Conditions, wechatv1alpha1.ConditionReady)
	o.ticketReceived = meta.IsStatusConditionTrue(comp.Status.Conditions, wechatv1alpha1.ConditionTicketReceived)
	if t := comp.Status.VerifyTicket; t != nil && t.ReceivedAt.Time.After(o.ticketReceivedAt) {
		o.ticketReceivedAt = t.ReceivedAt.Time
		o.tickets++
		if o.tickets <= 2 || !d.opts.check {
			o.event("ticket: the receiver recorded a new component_verify_ticket (created %s by the simulator)", t.CreateTime.Format(time.TimeOnly))
		}
		if o.tickets == 2 && d.opts.check {
			o.event("ticket: (further pushes every %s are not listed)", d.opts.pushInterval)
		}
	}
	if name := comp.Status.TokenSecretName; name != "" {
		o.component.secret = name
	}
	if err := o.observeToken(ctx, o.component); err != nil {
		return err
	}
	if err := o.observeDiscovery(ctx, &comp); err != nil {
		return err
	}

	var auth wechatv1alpha1.WeChatAuthorizer
	err := d.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: d.samples.authorizerName}, &auth)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return err
	default:
		o.authorizerReady = meta.IsStatusConditionTrue(auth.Status.Conditions, wechatv1alpha1.ConditionReady)
		o.authorizerAuth = meta.IsStatusConditionTrue(auth.Status.Conditions, wechatv1alpha1.ConditionAuthorized)
		if auth.Status.AuthorizationCode != nil && auth.Status.AuthorizationCode.Code != "" && !o.codeRecorded {
			o.codeRecorded = true
			o.event("authorizer: the receiver recorded the authorization code in %s's status (not shown: it is single use)", auth.Name)
		}
		if name := auth.Status.TokenSecretName; name != "" {
			o.authorizer.secret = name
		}
		if err := o.observeToken(ctx, o.authorizer); err != nil {
			return err
		}
	}
	return o.observeEvents(ctx)
}

// observeToken reads a token Secret and notes issue and refresh.
func (o *observer) observeToken(ctx context.Context, t *tokenTrack) error {
	d := o.d
	var s corev1.Secret
	err := d.c.Get(ctx, client.ObjectKey{Namespace: d.opts.namespace, Name: t.secret}, &s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	token := string(s.Data[wechatv1alpha1.SecretKeyAccessToken])
	if token == "" {
		return nil
	}
	expiresAt, err := time.Parse(time.RFC3339, string(s.Data[wechatv1alpha1.SecretKeyExpiresAt]))
	if err != nil {
		t.problem = fmt.Sprintf("%s: expires_at is not RFC 3339: %v", t.secret, err)
		return nil
	}
	hash := s.Annotations[wechatv1alpha1.AnnotationTokenHash]
	if hash == "" {
		sum := sha256.Sum256([]byte(token))
		hash = hex.EncodeToString(sum[:8])
	}
	obs := &tokenObservation{token: token, expiresAt: expiresAt, hash: hash, seenAt: time.Now()}
	if t == o.authorizer {
		o.observeTicket(&s)
	}
	switch {
	case t.last == nil:
		t.first, t.last = obs, obs
		o.event("%s: token ISSUED, expires %s (in %s), token-hash %s", t.secret, expiresAt.Format(time.TimeOnly), time.Until(expiresAt).Round(time.Second), hash)
	case token != t.last.token:
		if !expiresAt.After(t.last.expiresAt) {
			t.problem = fmt.Sprintf("%s: the token changed but expires_at went from %s to %s", t.secret, t.last.expiresAt.Format(time.RFC3339), expiresAt.Format(time.RFC3339))
		}
		t.refreshes++
		o.event("%s: token REFRESHED (#%d) %s before the old one expired: new expiry %s (+%s), token-hash %s",
			t.secret, t.refreshes, time.Until(t.last.expiresAt).Round(time.Second), expiresAt.Format(time.TimeOnly),
			expiresAt.Sub(t.last.expiresAt).Round(time.Second), hash)
		t.last = obs
		t.verifiedLast = false
	}
	if !t.verifiedLast {
		if err := o.verifyToken(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// verifyToken uses the token the way an app would, against the simulator: the component
// token to create a pre_auth_code, the authorizer token to call get_api_domain_ip.
func (o *observer) verifyToken(ctx context.Context, t *tokenTrack) error {
	d := o.d
	var status int
	var body []byte
	var err error
	if t.kind == "component" {
		status, body, err = httpJSON(ctx, "POST", d.simURL+"/cgi-bin/component/api_create_preauthcode?component_access_token="+url.QueryEscape(t.last.token),
			map[string]string{"component_appid": d.samples.componentAppID})
	} else {
		status, body, err = httpJSON(ctx, "GET", d.simURL+"/cgi-bin/get_api_domain_ip?access_token="+url.QueryEscape(t.last.token), nil)
	}
	if err != nil {
		return err
	}
	var answer struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	_ = json.Unmarshal(body, &answer)
	if status != http.StatusOK || answer.ErrCode != 0 {
		t.problem = fmt.Sprintf("%s: the simulator rejected the token in the Secret: errcode %d %s", t.secret, answer.ErrCode, answer.ErrMsg)
		o.event("%s", t.problem)
		t.verifiedLast = true // reported once per token
		return nil
	}
	t.verified++
	t.verifiedLast = true
	api := "get_api_domain_ip"
	if t.kind == "component" {
		api = "api_create_preauthcode"
	}
	o.event("%s: the token in the Secret works: the simulator accepted it for %s", t.secret, api)
	return nil
}

// observeEvents prints the operator's Kubernetes Events about the samples as they appear.
func (o *observer) observeEvents(ctx context.Context) error {
	var list corev1.EventList
	if err := o.d.c.List(ctx, &list, client.InNamespace(o.d.opts.namespace)); err != nil {
		return err
	}
	slices.SortFunc(list.Items, func(a, b corev1.Event) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	for _, e := range list.Items {
		if o.seenEvents[e.UID] {
			continue
		}
		o.seenEvents[e.UID] = true
		o.event("event: %s %s %s/%s: %s", e.Type, e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
	}
	return nil
}
