/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
)

// ticketAt is a 2-hour ticket issued at issued (relative to decideNow).
func ticketAt(value string, issued time.Duration) *issuedTicket {
	at := decideNow.Add(issued)
	return &issuedTicket{value: value, issuedAt: at, expiresAt: at.Add(2 * time.Hour)}
}

// baseTicketInput: a jsapi ticket issued 30 minutes ago, a valid token, default policy.
func baseTicketInput() ticketInput {
	return ticketInput{
		spec:       []wechatv1alpha1.TicketSpec{{Type: wechatv1alpha1.TicketJSAPI}},
		served:     ticketSet{wechatv1alpha1.TicketJSAPI: ticketAt("jsapi", -30*time.Minute)},
		tokenValid: true,
		jitter:     0.5,
	}
}

func TestDecideTickets(t *testing.T) {
	// The default policy on a 2-hour ticket: 12 minutes margin, jitter 0.5 × 6 minutes.
	defaultRefresh := decideNow.Add(-30*time.Minute + 2*time.Hour - 12*time.Minute - 3*time.Minute)
	cases := map[string]struct {
		tweak     func(*ticketInput)
		want      []ticketAction
		refreshAt time.Time // of the first plan; zero: not checked
	}{
		"a ticket before its refresh time is served, due at the policy's time": {
			want: []ticketAction{ticketServe}, refreshAt: defaultRefresh,
		},
		"the refresh time in status is kept for the same ticket (no new jitter after a restart)": {
			tweak: func(in *ticketInput) {
				in.status = []wechatv1alpha1.TicketStatus{{Type: wechatv1alpha1.TicketJSAPI, ExpiresAt: mtime(90 * time.Minute), RefreshAt: mtime(time.Hour)}}
			},
			want: []ticketAction{ticketServe}, refreshAt: decideNow.Add(time.Hour),
		},
		"a refresh time in status of another ticket is not kept": {
			tweak: func(in *ticketInput) {
				in.status = []wechatv1alpha1.TicketStatus{{Type: wechatv1alpha1.TicketJSAPI, ExpiresAt: mtime(time.Hour), RefreshAt: mtime(time.Minute)}}
			},
			want: []ticketAction{ticketServe}, refreshAt: defaultRefresh,
		},
		"a ticket past its refresh time is fetched": {
			tweak: func(in *ticketInput) { in.served[wechatv1alpha1.TicketJSAPI] = ticketAt("jsapi", -110*time.Minute) },
			want:  []ticketAction{ticketFetch},
		},
		"spec.refresh.before moves the refresh time": {
			tweak: func(in *ticketInput) {
				p, err := refresh.ParsePolicy("50%", "0s")
				if err != nil {
					t.Fatal(err)
				}
				in.policy = p
				in.served[wechatv1alpha1.TicketJSAPI] = ticketAt("jsapi", -61*time.Minute)
			},
			want: []ticketAction{ticketFetch},
		},
		"no ticket yet is fetched": {
			tweak: func(in *ticketInput) { in.served = ticketSet{} },
			want:  []ticketAction{ticketFetch},
		},
		"an expired ticket is fetched": {
			tweak: func(in *ticketInput) { in.served[wechatv1alpha1.TicketJSAPI] = ticketAt("jsapi", -3*time.Hour) },
			want:  []ticketAction{ticketFetch},
		},
		"a due ticket waits for a valid access token": {
			tweak: func(in *ticketInput) { in.served = ticketSet{}; in.tokenValid = false },
			want:  []ticketAction{ticketWaitToken},
		},
		"a ticket not due is served without a valid token": {
			tweak: func(in *ticketInput) { in.tokenValid = false },
			want:  []ticketAction{ticketServe},
		},
		"a failed attempt is not repeated before its backoff is over": {
			tweak: func(in *ticketInput) {
				in.served = ticketSet{}
				in.status = []wechatv1alpha1.TicketStatus{{Type: wechatv1alpha1.TicketJSAPI, FailedAttempts: 3, RefreshAt: mtime(20 * time.Second)}}
			},
			want: []ticketAction{ticketBackoff}, refreshAt: decideNow.Add(20 * time.Second),
		},
		"a failed attempt is repeated once its backoff is over": {
			tweak: func(in *ticketInput) {
				in.served = ticketSet{}
				in.status = []wechatv1alpha1.TicketStatus{{Type: wechatv1alpha1.TicketJSAPI, FailedAttempts: 3, RefreshAt: mtime(-time.Second)}}
			},
			want: []ticketAction{ticketFetch},
		},
		"a valid ticket whose refresh failed is fetched again after the backoff, not at the old refresh time": {
			tweak: func(in *ticketInput) {
				in.served[wechatv1alpha1.TicketJSAPI] = ticketAt("jsapi", -110*time.Minute)
				in.status = []wechatv1alpha1.TicketStatus{{Type: wechatv1alpha1.TicketJSAPI, ExpiresAt: mtime(10 * time.Minute), FailedAttempts: 1, RefreshAt: mtime(5 * time.Second)}}
			},
			want: []ticketAction{ticketBackoff}, refreshAt: decideNow.Add(5 * time.Second),
		},
		"each type on its own schedule, in spec order": {
			tweak: func(in *ticketInput) {
				in.spec = []wechatv1alpha1.TicketSpec{{Type: wechatv1alpha1.TicketWXCard}, {Type: wechatv1alpha1.TicketJSAPI}}
			},
			want: []ticketAction{ticketFetch, ticketServe},
		},
		"no spec.tickets, no plans": {
			tweak: func(in *ticketInput) { in.spec = nil },
			want:  []ticketAction{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := baseTicketInput()
			if tc.tweak != nil {
				tc.tweak(&in)
			}
			plans := decideTickets(in, decideNow)
			got := make([]ticketAction, 0, len(plans))
			for i, p := range plans {
				got = append(got, p.action)
				if p.ticketType != in.spec[i].Type {
					t.Errorf("plan %d is for %s, want %s", i, p.ticketType, in.spec[i].Type)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("actions %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("actions %v, want %v", got, tc.want)
				}
			}
			if !tc.refreshAt.IsZero() && !plans[0].refreshAt.Equal(tc.refreshAt) {
				t.Errorf("refreshAt %v, want %v", plans[0].refreshAt, tc.refreshAt)
			}
		})
	}
}

func TestReadTickets(t *testing.T) {
	a := &wechatv1alpha1.WeChatAuthorizer{Spec: wechatv1alpha1.WeChatAuthorizerSpec{AppID: "wx1111111111111111",
		Tickets: []wechatv1alpha1.TicketSpec{{Type: wechatv1alpha1.TicketJSAPI}}}}
	expires := decideNow.Add(time.Hour)
	secret := &corev1.Secret{Data: map[string][]byte{
		"appid": []byte("wx1111111111111111"), "jsapi_ticket": []byte("J"), "jsapi_ticket_expires_at": []byte(expires.Format(time.RFC3339)),
		"wx_card_ticket": []byte("C"), "wx_card_ticket_expires_at": []byte(expires.Format(time.RFC3339)),
	}}
	got := readTickets(secret, a)
	if len(got) != 1 || got[wechatv1alpha1.TicketJSAPI].value != "J" || !got[wechatv1alpha1.TicketJSAPI].expiresAt.Equal(expires) {
		t.Fatalf("read %+v: want only the listed jsapi ticket", got)
	}
	if !got[wechatv1alpha1.TicketJSAPI].issuedAt.Equal(expires.Add(-2 * time.Hour)) {
		t.Errorf("without status, a 7200 s ticket is assumed: issued %v", got[wechatv1alpha1.TicketJSAPI].issuedAt)
	}
	a.Status.Tickets = []wechatv1alpha1.TicketStatus{{Type: wechatv1alpha1.TicketJSAPI, ExpiresAt: metav1ptr(expires), LastRefreshTime: metav1ptr(decideNow)}}
	if got := readTickets(secret, a); !got[wechatv1alpha1.TicketJSAPI].issuedAt.Equal(decideNow) {
		t.Errorf("status' issue time of the same ticket is used: %v", got[wechatv1alpha1.TicketJSAPI].issuedAt)
	}
	secret.Data["appid"] = []byte("wx2222222222222222")
	if got := readTickets(secret, a); len(got) != 0 {
		t.Errorf("tickets of another account were read: %+v", got)
	}
	// What is read is what is written back.
	secret.Data["appid"] = []byte("wx1111111111111111")
	data := readTickets(secret, a).data()
	if string(data["jsapi_ticket"]) != "J" || string(data["jsapi_ticket_expires_at"]) != expires.Format(time.RFC3339) || len(data) != 2 {
		t.Errorf("data %v", data)
	}
}

func metav1ptr(t time.Time) *metav1.Time { return timePtr(t) }
