/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSetKstatusConditions(t *testing.T) {
	readyAt := metav1.NewTime(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
	now := time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC)
	cond := func(typ string, status metav1.ConditionStatus, reason string, gen int64) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: reason + " message",
			ObservedGeneration: gen, LastTransitionTime: readyAt}
	}
	// want: the Reconciling and Stalled conditions after the call; nil means absent.
	type want struct {
		reconciling *metav1.Condition
		stalled     *metav1.Condition
	}
	reconciling := func(reason, message string, at metav1.Time) *metav1.Condition {
		return &metav1.Condition{Type: ConditionReconciling, Status: metav1.ConditionTrue, Reason: reason, Message: message,
			ObservedGeneration: 3, LastTransitionTime: at}
	}
	nowT := metav1.NewTime(now)
	cases := map[string]struct {
		conds []metav1.Condition
		want  want
	}{
		"a fresh token is Current: no Reconciling, no Stalled": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionTrue, ReasonTokenIssued, 3)},
		},
		"a fresh token removes a Reconciling left from before": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionTrue, ReasonTokenIssued, 3),
				cond(ConditionReconciling, metav1.ConditionTrue, ReasonWaitingForTicket, 3)},
		},
		"no Ready yet is Initializing": {
			conds: nil,
			want:  want{reconciling: reconciling(ReasonInitializing, "the controller has not looked at this resource yet", nowT)},
		},
		"waiting for the first ticket is in progress, with Ready's reason": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionFalse, ReasonWaitingForTicket, 3)},
			want:  want{reconciling: reconciling(ReasonWaitingForTicket, "WaitingForTicket message", nowT)},
		},
		"a token still served while a busy WeChat is retried is in progress": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionTrue, ReasonWeChatBusy, 3)},
			want:  want{reconciling: reconciling(ReasonWeChatBusy, "WeChatBusy message", nowT)},
		},
		"a Reconciling already True keeps its transition time when its reason changes": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionFalse, ReasonComponentNotReady, 3),
				cond(ConditionReconciling, metav1.ConditionTrue, ReasonComponentNotFound, 2)},
			want: want{reconciling: reconciling(ReasonComponentNotReady, "ComponentNotReady message", readyAt)},
		},
		"a Ready older than the spec is GenerationNotObserved, even if it is TokenIssued": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionTrue, ReasonTokenIssued, 2)},
			want:  want{reconciling: reconciling(ReasonGenerationNotObserved, "the spec changed; the controller has not acted on it yet", nowT)},
		},
		"Stalled from the controller stays and removes Reconciling": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionFalse, ReasonCredentialsRejected, 3),
				cond(ConditionStalled, metav1.ConditionTrue, ReasonCredentialsRejected, 3),
				cond(ConditionReconciling, metav1.ConditionTrue, ReasonWaitingForTicket, 3)},
			want: want{stalled: ptr(cond(ConditionStalled, metav1.ConditionTrue, ReasonCredentialsRejected, 3))},
		},
		"Stalled while the old token is still served (Ready True) is still Failed": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionTrue, ReasonIPNotWhitelisted, 3),
				cond(ConditionStalled, metav1.ConditionTrue, ReasonIPNotWhitelisted, 3)},
			want: want{stalled: ptr(cond(ConditionStalled, metav1.ConditionTrue, ReasonIPNotWhitelisted, 3))},
		},
		"an account that never authorized is Stalled, with Ready's transition time": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionFalse, ReasonNotAuthorized, 3),
				cond(ConditionReconciling, metav1.ConditionTrue, ReasonComponentNotReady, 3)},
			want: want{stalled: ptr(cond(ConditionStalled, metav1.ConditionTrue, ReasonNotAuthorized, 3))},
		},
		"a revoked authorization is Stalled": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionFalse, ReasonUnauthorized, 3)},
			want:  want{stalled: ptr(cond(ConditionStalled, metav1.ConditionTrue, ReasonUnauthorized, 3))},
		},
		"a human reason recorded for an older spec is not Stalled but waits for the new one": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionFalse, ReasonNotAuthorized, 2)},
			want:  want{reconciling: reconciling(ReasonGenerationNotObserved, "the spec changed; the controller has not acted on it yet", nowT)},
		},
		"an expired token with a transient cause is in progress, not Stalled": {
			conds: []metav1.Condition{cond(ConditionReady, metav1.ConditionFalse, ReasonQuotaExceeded, 3)},
			want:  want{reconciling: reconciling(ReasonQuotaExceeded, "QuotaExceeded message", nowT)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			conds := append([]metav1.Condition(nil), tc.conds...)
			changed := SetKstatusConditions(&conds, 3, now)
			check := func(typ string, want *metav1.Condition) {
				t.Helper()
				got := meta.FindStatusCondition(conds, typ)
				switch {
				case want == nil && got != nil:
					t.Errorf("%s = %+v, want it absent", typ, *got)
				case want != nil && got == nil:
					t.Errorf("%s absent, want %+v", typ, *want)
				case want != nil && *got != *want:
					t.Errorf("%s = %+v\n want %+v", typ, *got, *want)
				}
			}
			check(ConditionReconciling, tc.want.reconciling)
			check(ConditionStalled, tc.want.stalled)
			if r, s := meta.IsStatusConditionTrue(conds, ConditionReconciling), meta.IsStatusConditionTrue(conds, ConditionStalled); r && s {
				t.Errorf("Reconciling and Stalled both True: kstatus would pick whichever comes first")
			}
			if ready, orig := meta.FindStatusCondition(conds, ConditionReady), meta.FindStatusCondition(tc.conds, ConditionReady); orig != nil && *ready != *orig {
				t.Errorf("Ready changed to %+v", *ready)
			}
			if changed != !equalConditions(tc.conds, conds) {
				t.Errorf("reported changed=%v, but the conditions went from %+v to %+v", changed, tc.conds, conds)
			}
			// Deriving again changes nothing: the status write path may run it on every reconcile.
			again := append([]metav1.Condition(nil), conds...)
			if SetKstatusConditions(&again, 3, now.Add(time.Hour)) || !equalConditions(again, conds) {
				t.Errorf("a second derivation changed %+v to %+v", conds, again)
			}
		})
	}
}

// TestSetKstatusConditionsDerivedStalledIsStable: the controller removes a Stalled it did not
// set on every reconcile (no failure); deriving it again must give the very same condition,
// or every reconcile of a never-authorized account would write its status.
func TestSetKstatusConditionsDerivedStalledIsStable(t *testing.T) {
	ready := metav1.Condition{Type: ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonNotAuthorized,
		Message: "authorize", ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))}
	first := []metav1.Condition{ready}
	SetKstatusConditions(&first, 1, time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))
	next := append([]metav1.Condition(nil), first...)
	meta.RemoveStatusCondition(&next, ConditionStalled) // what setStalled(nil) does
	if !SetKstatusConditions(&next, 1, time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("the removed Stalled was not put back")
	}
	if !equalConditions(first, next) {
		t.Errorf("re-derived %+v, want %+v", next, first)
	}
}

func equalConditions(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		y := meta.FindStatusCondition(b, x.Type)
		if y == nil || *y != x {
			return false
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }
