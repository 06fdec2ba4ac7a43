/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

const (
	ticketValue = "ticket@@@do-not-print"
	authCode    = "queryauthcode@@@do-not-print"
)

func at(d time.Duration) *metav1.Time { t := metav1.NewTime(fixedNow.Add(d)); return &t }

func cond(t, status, reason string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionStatus(status), Reason: reason, Message: "m", LastTransitionTime: *at(-time.Hour)}
}

func statusObjects() []client.Object {
	ready := &wechatv1alpha1.WeChatComponent{
		ObjectMeta: metav1.ObjectMeta{Namespace: "wechat", Name: "alpha"},
		Spec:       wechatv1alpha1.WeChatComponentSpec{AppID: "wx00000000000000a1"},
		Status: wechatv1alpha1.WeChatComponentStatus{
			Conditions: []metav1.Condition{
				cond(wechatv1alpha1.ConditionReady, "True", wechatv1alpha1.ReasonTokenIssued),
				cond(wechatv1alpha1.ConditionTicketReceived, "True", wechatv1alpha1.ReasonTicketValid),
			},
			VerifyTicket:              &wechatv1alpha1.VerifyTicket{Ticket: ticketValue, CreateTime: *at(-4 * time.Minute), ReceivedAt: *at(-4*time.Minute + time.Second)},
			PendingAuthorizationCodes: []wechatv1alpha1.AuthorizationCode{{Code: authCode, ExpiresAt: *at(time.Hour)}},
			TokenStatus: wechatv1alpha1.TokenStatus{
				TokenSecretName: "alpha-component-token", ExpiresAt: at(time.Hour + 43*time.Minute + 20*time.Second)},
		},
	}
	failing := &wechatv1alpha1.WeChatComponent{
		ObjectMeta: metav1.ObjectMeta{Namespace: "wechat", Name: "beta"},
		Spec:       wechatv1alpha1.WeChatComponentSpec{AppID: "wx00000000000000b2"},
		Status: wechatv1alpha1.WeChatComponentStatus{
			Conditions:   []metav1.Condition{cond(wechatv1alpha1.ConditionReady, "False", wechatv1alpha1.ReasonTokenExpired)},
			VerifyTicket: &wechatv1alpha1.VerifyTicket{Ticket: ticketValue, CreateTime: *at(-13 * time.Hour), ReceivedAt: *at(-13 * time.Hour)},
			TokenStatus: wechatv1alpha1.TokenStatus{ExpiresAt: at(-3*time.Minute - 10*time.Second),
				FailedAttempts: 3, LastFailureReason: wechatv1alpha1.ReasonTicketRejected},
		},
	}
	fresh := &wechatv1alpha1.WeChatComponent{ // just applied: no status at all
		ObjectMeta: metav1.ObjectMeta{Namespace: "wechat", Name: "gamma"},
		Spec:       wechatv1alpha1.WeChatComponentSpec{AppID: "wx00000000000000c3"},
	}
	elsewhere := &wechatv1alpha1.WeChatComponent{
		ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "delta"},
		Spec:       wechatv1alpha1.WeChatComponentSpec{AppID: "wx00000000000000d4"},
		Status: wechatv1alpha1.WeChatComponentStatus{
			Conditions:  []metav1.Condition{cond(wechatv1alpha1.ConditionReady, "True", wechatv1alpha1.ReasonTokenIssued)},
			TokenStatus: wechatv1alpha1.TokenStatus{ExpiresAt: at(50 * time.Hour)},
		},
	}
	account := &wechatv1alpha1.WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Namespace: "wechat", Name: "alpha-wx1111111111111111"},
		Spec: wechatv1alpha1.WeChatAuthorizerSpec{
			ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "alpha"}, AppID: "wx1111111111111111",
		},
		Status: wechatv1alpha1.WeChatAuthorizerStatus{
			Conditions: []metav1.Condition{
				cond(wechatv1alpha1.ConditionReady, "True", wechatv1alpha1.ReasonTokenIssued),
				cond(wechatv1alpha1.ConditionAuthorized, "True", wechatv1alpha1.ReasonAuthorized),
			},
			Info:        &wechatv1alpha1.AuthorizerInfo{NickName: "测试公众号"},
			TokenStatus: wechatv1alpha1.TokenStatus{ExpiresAt: at(30 * time.Minute)},
		},
	}
	revoked := &wechatv1alpha1.WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Namespace: "wechat", Name: "shop"},
		Spec: wechatv1alpha1.WeChatAuthorizerSpec{
			ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "alpha"}, AppID: "wx2222222222222222",
		},
		Status: wechatv1alpha1.WeChatAuthorizerStatus{
			Conditions: []metav1.Condition{
				cond(wechatv1alpha1.ConditionReady, "False", wechatv1alpha1.ReasonUnauthorized),
				cond(wechatv1alpha1.ConditionAuthorized, "False", wechatv1alpha1.ReasonUnauthorized),
			},
			AuthorizationCode: &wechatv1alpha1.AuthorizationCode{Code: authCode, ExpiresAt: *at(time.Hour)},
			Info:              &wechatv1alpha1.AuthorizerInfo{NickName: "\x1b[31mshop\tname\n"},
			TokenStatus: wechatv1alpha1.TokenStatus{ExpiresAt: at(-50 * time.Hour),
				FailedAttempts: 2, LastFailureReason: wechatv1alpha1.ReasonRefreshTokenInvalid},
		},
	}
	secret := tokenSecret("wechat", "alpha-component-token", "component-access-token-do-not-print", fixedNow.Add(time.Hour))
	return []client.Object{failing, ready, fresh, elsewhere, revoked, account, secret}
}

// noSecrets fails every read of a Secret: status must not need one.
var noSecrets = &interceptor.Funcs{
	Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*corev1.Secret); ok {
			return errors.New("status read a Secret")
		}
		return c.Get(ctx, key, obj, opts...)
	},
	List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if _, ok := list.(*corev1.SecretList); ok {
			return errors.New("status listed Secrets")
		}
		return c.List(ctx, list, opts...)
	},
}

// table is one table of the status output: the cells of each row by column header.
type table []map[string]string

// parseTables splits status output into its titled tables. Cells are cut at the column
// starts of the header line, which tabwriter aligns (in runes).
func parseTables(t *testing.T, out string) map[string]table {
	t.Helper()
	tables := map[string]table{}
	for _, block := range strings.Split(strings.TrimSuffix(out, "\n"), "\n\n") {
		lines := strings.Split(block, "\n")
		if len(lines) < 2 {
			t.Fatalf("block without a table: %q", block)
		}
		title, header := lines[0], []rune(lines[1])
		tables[title] = table{}
		if strings.HasPrefix(lines[1], "No ") {
			continue
		}
		var starts []int
		var names []string
		for i := 0; i < len(header); {
			j := i
			// A header name may hold one space ("LAST ERROR"); columns are apart by two or more.
			for j < len(header) && !(header[j] == ' ' && (j+1 >= len(header) || header[j+1] == ' ')) {
				j++
			}
			starts = append(starts, i)
			names = append(names, string(header[i:j]))
			for j < len(header) && header[j] == ' ' {
				j++
			}
			i = j
		}
		for _, line := range lines[2:] {
			r := []rune(line)
			row := map[string]string{}
			for k, s := range starts {
				end := len(r)
				if k+1 < len(starts) {
					end = min(starts[k+1], len(r))
				}
				if s > len(r) {
					t.Fatalf("row %q is shorter than the header", line)
				}
				if k > 0 && r[s-1] != ' ' {
					t.Fatalf("row %q is not aligned with header %q", line, lines[1])
				}
				row[names[k]] = strings.TrimRight(string(r[s:end]), " ")
			}
			tables[title] = append(tables[title], row)
		}
	}
	return tables
}

func checkRow(t *testing.T, tb table, i int, want map[string]string) {
	t.Helper()
	if i >= len(tb) {
		t.Fatalf("no row %d in %v", i, tb)
	}
	for k, v := range want {
		if got, ok := tb[i][k]; !ok || got != v {
			t.Fatalf("row %d column %s = %q, want %q (row %v)", i, k, got, v, tb[i])
		}
	}
}

func TestStatus(t *testing.T) {
	f := &fakeCluster{c: newFakeClient(t, noSecrets, statusObjects()...), contextNS: "wechat"}
	code, stdout, stderr := runCLI(f, "status")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, secret := range []string{ticketValue, authCode, "component-access-token-do-not-print", "\x1b", "\t"} {
		if strings.Contains(stdout, secret) {
			t.Fatalf("stdout holds %q:\n%s", secret, stdout)
		}
	}
	tables := parseTables(t, stdout)
	comps, auths := tables["COMPONENTS"], tables["AUTHORIZERS"]
	if len(comps) != 3 || len(auths) != 2 || len(tables) != 2 {
		t.Fatalf("tables %v\n%s", tables, stdout)
	}
	if _, ok := comps[0]["NAMESPACE"]; ok {
		t.Fatalf("NAMESPACE column in one namespace:\n%s", stdout)
	}
	checkRow(t, comps, 0, map[string]string{"NAME": "alpha", "APPID": "wx00000000000000a1", "READY": "True", "REASON": "TokenIssued",
		"EXPIRES": "in 1h43m", "TICKET": "3m59s", "LAST ERROR": "-"})
	checkRow(t, comps, 1, map[string]string{"NAME": "beta", "READY": "False", "REASON": "TokenExpired",
		"EXPIRES": "expired 3m10s ago", "TICKET": "13h (expired)", "LAST ERROR": "TicketRejected (3 failed)"})
	checkRow(t, comps, 2, map[string]string{"NAME": "gamma", "READY": "Unknown", "REASON": "-", "EXPIRES": "-", "TICKET": "none", "LAST ERROR": "-"})
	checkRow(t, auths, 0, map[string]string{"NAME": "alpha-wx1111111111111111", "COMPONENT": "alpha", "APPID": "wx1111111111111111",
		"READY": "True", "REASON": "TokenIssued", "AUTHORIZED": "True", "EXPIRES": "in 30m", "LAST ERROR": "-", "NICKNAME": "测试公众号"})
	checkRow(t, auths, 1, map[string]string{"NAME": "shop", "READY": "False", "REASON": "Unauthorized", "AUTHORIZED": "False",
		"EXPIRES": "expired 2d2h ago", "LAST ERROR": "RefreshTokenInvalid (2 failed)", "NICKNAME": "?[31mshop?name?"})
	if f.got.namespace != "" || f.got.allNamespaces {
		t.Fatalf("kube options %+v", f.got)
	}
}

func TestStatusAllNamespaces(t *testing.T) {
	for _, flag := range []string{"-A", "--all-namespaces"} {
		f := &fakeCluster{c: newFakeClient(t, noSecrets, statusObjects()...), contextNS: "wechat"}
		code, stdout, stderr := runCLI(f, "status", flag)
		if code != 0 || stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q", flag, code, stderr)
		}
		tables := parseTables(t, stdout)
		comps := tables["COMPONENTS"]
		if len(comps) != 4 || len(tables["AUTHORIZERS"]) != 2 {
			t.Fatalf("%s: tables %v", flag, tables)
		}
		checkRow(t, comps, 0, map[string]string{"NAMESPACE": "other", "NAME": "delta", "EXPIRES": "in 2d2h"})
		checkRow(t, comps, 1, map[string]string{"NAMESPACE": "wechat", "NAME": "alpha"})
		checkRow(t, tables["AUTHORIZERS"], 1, map[string]string{"NAMESPACE": "wechat", "NAME": "shop"})
	}
}

func TestStatusNamespaces(t *testing.T) {
	f := &fakeCluster{c: newFakeClient(t, noSecrets, statusObjects()...), contextNS: "wechat"}
	code, stdout, stderr := runCLI(f, "status", "-n", "other")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	tables := parseTables(t, stdout)
	if len(tables["COMPONENTS"]) != 1 || tables["COMPONENTS"][0]["NAME"] != "delta" || len(tables["AUTHORIZERS"]) != 0 {
		t.Fatalf("tables %v\n%s", tables, stdout)
	}
	if !strings.Contains(stdout, "AUTHORIZERS\nNo WeChatAuthorizers found in namespace \"other\".\n") {
		t.Fatalf("no word on the missing authorizers:\n%s", stdout)
	}

	code, stdout, stderr = runCLI(f, "status", "--namespace=empty")
	if code != 0 || stdout != "" || stderr != "No WeChatComponents or WeChatAuthorizers found in namespace \"empty\".\n" {
		t.Fatalf("empty namespace: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestStatusErrors(t *testing.T) {
	noCRD := &interceptor.Funcs{List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
		return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: wechatv1alpha1.GroupVersion.Group, Kind: "WeChatComponent"}}
	}}
	cases := []struct {
		name    string
		args    []string
		funcs   *interceptor.Funcs
		connErr error
		code    int
		want    string
	}{
		{"CRDs not installed", []string{"status"}, noCRD, nil, 1, "CRDs (platform.wechat-operator.dev) are not installed"},
		{"kubeconfig", []string{"status"}, nil, errors.New("loading kubeconfig: context \"x\" does not exist"), 1, "context \"x\" does not exist"},
		{"-n and -A", []string{"status", "-n", "wechat", "-A"}, nil, nil, 2, "cannot be used together"},
		{"argument", []string{"status", "alpha"}, nil, nil, 2, "unexpected argument \"alpha\""},
		{"unknown flag", []string{"status", "--redirect-uri", "x"}, nil, nil, 2, "not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeCluster{c: newFakeClient(t, tc.funcs, statusObjects()...), contextNS: "wechat", err: tc.connErr}
			code, stdout, stderr := runCLI(f, tc.args...)
			if code != tc.code || stdout != "" {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, tc.code, stdout, stderr)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "kubectl-wechat status: ") || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q, want one line with %q", stderr, tc.want)
			}
		})
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                    "0s",
		0:                               "0s",
		999 * time.Millisecond:          "0s",
		45 * time.Second:                "45s",
		3 * time.Minute:                 "3m",
		3*time.Minute + 20*time.Second:  "3m20s",
		42*time.Minute + 59*time.Second: "42m",
		time.Hour + 43*time.Minute + 59*time.Second: "1h43m",
		2 * time.Hour:                 "2h",
		47*time.Hour + 59*time.Minute: "47h59m",
		50 * time.Hour:                "2d2h",
		72 * time.Hour:                "3d",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{"": "-", "plain name": "plain name", "公众号": "公众号", "a\tb\nc\x1b[0m": "a?b?c?[0m", "x\u202ey": "x?y"} {
		if got := clean(in); got != want || !utf8.ValidString(got) {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}
