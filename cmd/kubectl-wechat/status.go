/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

const statusUsage = `Usage: kubectl-wechat status [-n NAMESPACE | -A] [flags]

Shows the WeChatComponents and WeChatAuthorizers of a namespace (all namespaces with -A)
at a glance: readiness, token expiry and the last error. It reads only those two kinds,
never a Secret, so it needs no access to tokens.

Columns:
  READY, REASON  the Ready condition: True while the token Secret holds an unexpired token
  EXPIRES        when the current access token expires
  TICKET         age of the newest component_verify_ticket (pushed every 10 minutes, valid 12 hours)
  AUTHORIZED     the account's Authorized condition (False once it revoked the authorization)
  LAST ERROR     reason of the last failed refresh and the failures since the last success
  NICKNAME       the account's name, as WeChat reports it

Examples:
  kubectl wechat status -n wechat
  kubectl wechat status -A

Flags:
`

const defaultStatusTimeout = 30 * time.Second

// ticketLifetime is how long WeChat accepts a component_verify_ticket.
const ticketLifetime = 12 * time.Hour

func runStatus(args []string, stdout, stderr io.Writer, d deps) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ko kubeOptions
	ko.register(fs, true)
	timeout := fs.Duration("timeout", defaultStatusTimeout, "give up after this long")
	fail := commandFailer(fs.Name(), stderr)
	pos, exit, done := parseCommand(fs, statusUsage, args, stdout, fail)
	if done {
		return exit
	}
	switch {
	case len(pos) > 0:
		return fail(usageErrorf("unexpected argument %q (see kubectl-wechat status --help)", pos[0]))
	case ko.allNamespaces && ko.namespace != "":
		return fail(usageErrorf("-n and -A cannot be used together"))
	case *timeout <= 0:
		return fail(usageErrorf("--timeout must be positive"))
	}
	c, contextNS, err := d.connect(ko)
	if err != nil {
		return fail(err)
	}
	ns := namespaceFor(ko, contextNS)
	if ko.allNamespaces {
		ns = ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := loadStatus(ctx, c, ns)
	if err != nil {
		return fail(err)
	}
	if len(st.components) == 0 && len(st.authorizers) == 0 {
		fmt.Fprintf(stderr, "No WeChatComponents or WeChatAuthorizers found%s.\n", inNamespace(ns))
		return exitOK
	}
	if err := st.write(stdout, ns, d.now()); err != nil {
		return fail(fmt.Errorf("writing stdout: %w", err))
	}
	return exitOK
}

func inNamespace(ns string) string {
	if ns == "" {
		return ""
	}
	return fmt.Sprintf(" in namespace %q", ns)
}

type statusData struct {
	components  []wechatv1alpha1.WeChatComponent
	authorizers []wechatv1alpha1.WeChatAuthorizer
}

// loadStatus lists both kinds in ns ("" for every namespace), sorted by namespace and name.
func loadStatus(ctx context.Context, c client.Client, ns string) (statusData, error) {
	var opts []client.ListOption
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	var comps wechatv1alpha1.WeChatComponentList
	if err := c.List(ctx, &comps, opts...); err != nil {
		return statusData{}, kubeError(err, "WeChatComponents"+inNamespace(ns))
	}
	var auths wechatv1alpha1.WeChatAuthorizerList
	if err := c.List(ctx, &auths, opts...); err != nil {
		return statusData{}, kubeError(err, "WeChatAuthorizers"+inNamespace(ns))
	}
	byKey := func(a, b metav1.Object) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	}
	slices.SortFunc(comps.Items, func(a, b wechatv1alpha1.WeChatComponent) int { return byKey(&a, &b) })
	slices.SortFunc(auths.Items, func(a, b wechatv1alpha1.WeChatAuthorizer) int { return byKey(&a, &b) })
	return statusData{components: comps.Items, authorizers: auths.Items}, nil
}

// write prints one table per kind. The NAMESPACE column appears only across namespaces.
func (s statusData) write(w io.Writer, ns string, now time.Time) error {
	all := ns == ""
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(namespace string, cells ...string) {
		if all {
			cells = append([]string{namespace}, cells...)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}

	fmt.Fprintln(tw, "COMPONENTS")
	if len(s.components) == 0 {
		fmt.Fprintf(tw, "No WeChatComponents found%s.\n", inNamespace(ns))
	} else {
		row("NAMESPACE", "NAME", "APPID", "READY", "REASON", "EXPIRES", "TICKET", "LAST ERROR")
		for i := range s.components {
			c := &s.components[i]
			ready, reason := condition(c.Status.Conditions, wechatv1alpha1.ConditionReady)
			row(c.Namespace, clean(c.Name), clean(c.Spec.AppID), ready, reason,
				expiry(c.Status.ExpiresAt, now), ticketAge(c.Status.VerifyTicket, now),
				lastError(c.Status.LastFailureReason, c.Status.FailedAttempts))
		}
	}
	// A blank line ends a tabwriter block: the two tables are aligned independently.
	fmt.Fprintln(tw)

	fmt.Fprintln(tw, "AUTHORIZERS")
	if len(s.authorizers) == 0 {
		fmt.Fprintf(tw, "No WeChatAuthorizers found%s.\n", inNamespace(ns))
	} else {
		// NICKNAME is last: names in Chinese are wider on screen than tabwriter counts.
		row("NAMESPACE", "NAME", "COMPONENT", "APPID", "READY", "REASON", "AUTHORIZED", "EXPIRES", "LAST ERROR", "NICKNAME")
		for i := range s.authorizers {
			a := &s.authorizers[i]
			ready, reason := condition(a.Status.Conditions, wechatv1alpha1.ConditionReady)
			authorized, _ := condition(a.Status.Conditions, wechatv1alpha1.ConditionAuthorized)
			nickname := ""
			if a.Status.Info != nil {
				nickname = a.Status.Info.NickName
			}
			row(a.Namespace, clean(a.Name), clean(a.Spec.ComponentRef.Name), clean(a.Spec.AppID), ready, reason,
				authorized, expiry(a.Status.ExpiresAt, now),
				lastError(a.Status.LastFailureReason, a.Status.FailedAttempts), clean(nickname))
		}
	}
	return tw.Flush()
}

// condition is the status and reason of condition t, "Unknown" and "-" if it is not set.
func condition(conds []metav1.Condition, t string) (status, reason string) {
	c := meta.FindStatusCondition(conds, t)
	if c == nil {
		return string(metav1.ConditionUnknown), "-"
	}
	return clean(string(c.Status)), clean(c.Reason)
}

// expiry says when a token expires, relative to now: "in 1h43m", "expired 3m ago".
func expiry(at *metav1.Time, now time.Time) string {
	if at == nil || at.IsZero() {
		return "-"
	}
	if d := at.Sub(now); d > 0 {
		return "in " + humanDuration(d)
	}
	return "expired " + humanDuration(now.Sub(at.Time)) + " ago"
}

// ticketAge is the age of the newest verify ticket, marked once WeChat no longer accepts it.
func ticketAge(t *wechatv1alpha1.VerifyTicket, now time.Time) string {
	if t == nil {
		return "none"
	}
	at := t.ReceivedAt
	if at.IsZero() {
		at = t.CreateTime
	}
	if at.IsZero() {
		return "-"
	}
	age := max(now.Sub(at.Time), 0)
	if age >= ticketLifetime {
		return humanDuration(age) + " (expired)"
	}
	return humanDuration(age)
}

// lastError is the reason of the last failed attempt and the count of failures since the
// last success, or "-" when the last attempt succeeded.
func lastError(reason string, attempts int32) string {
	if attempts <= 0 {
		return "-"
	}
	if reason == "" {
		return fmt.Sprintf("%d failed", attempts)
	}
	return fmt.Sprintf("%s (%d failed)", clean(reason), attempts)
}

// humanDuration prints d the way kubectl prints ages, with two units at most and
// rounded down: "45s", "3m20s", "42m", "1h43m", "3d4h".
func humanDuration(d time.Duration) string {
	d = max(d, 0)
	s := int64(d / time.Second)
	two := func(a int64, ua string, b int64, ub string) string {
		if b == 0 {
			return fmt.Sprintf("%d%s", a, ua)
		}
		return fmt.Sprintf("%d%s%d%s", a, ua, b, ub)
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", s)
	case d < 10*time.Minute:
		return two(s/60, "m", s%60, "s")
	case d < time.Hour:
		return fmt.Sprintf("%dm", s/60)
	case d < 48*time.Hour:
		return two(s/3600, "h", s%3600/60, "m")
	}
	return two(s/86400, "d", s%86400/3600, "h")
}

// clean makes a value from the API safe for a table cell: no tabs, newlines or terminal
// control sequences (a nickname comes from WeChat, not from the cluster's administrators),
// and "-" for nothing.
func clean(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r == ' ' || unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}
