/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// An account's options (spec.options) and required permission sets (spec.requiredFuncInfo).
// Both are decided by pure functions: decideOptions says whether the options are due for a
// check, decidePermissions what PermissionsGranted says about status.info. The options are
// checked in the act step, after the token is served (they need the component token and the
// account's authorization, nothing else); the conditions are written with the rest of the
// status. Neither touches Ready: that is about the token in the Secret.

const (
	// optionsCheckInterval is how long WeChat's values are trusted after a successful check.
	// Options change only when someone changes them in the console (or another tool does),
	// so a drift is put back within 6 hours: 4 checks a day, one api_get_authorizer_option
	// per managed option each, at most 12 calls a day per account, fewer than its token
	// refreshes (~13). A spec change or a new authorization is acted on at once.
	optionsCheckInterval = 6 * time.Hour
	// optionsRetryCap caps the backoff of a failed check. The failure's own backoff (5 s or
	// 30 s doubling) is kept, but options are not urgent: under a persistent error (48001,
	// 61007, an option a mini program lacks) a check is retried at most hourly.
	optionsRetryCap = time.Hour

	msgOptionsInSync      = "WeChat has the values spec.options sets (%s); checked at %s, next check at %s"
	msgOptionsFailed      = "%s; next attempt at %s (at once on a spec change)"
	msgOptionsPending     = "spec.options is checked once the account has a token"
	msgOptionSet          = "%s set to %d (WeChat had %d)"
	msgOptionSetUnauth    = "; the account has not granted the platform the permission set of the option APIs: its administrator must authorize the platform again, granting it"
	msgOptionRejected     = "; WeChat rejected the option or its value (options are official-account features): check spec.options"
	msgPermissionsGranted = "the account granted every permission set spec.requiredFuncInfo lists (%s)"
	msgPermissionsMissing = "the account has not granted the platform the permission sets %s that spec.requiredFuncInfo requires: " +
		"it never granted them, or another platform took them (a set such as message management can be held by one platform only). " +
		"The account's administrator must authorize the platform again, granting them: kubectl wechat auth-link %s -n %s --redirect-uri <your page>"
	msgPermissionsUnknown = "api_get_authorizer_info has not been read yet; the permission sets are checked when it is"
)

// AuthorizerOptionsAPI is what the options need of WeChat.
type AuthorizerOptionsAPI interface {
	GetAuthorizerOption(ctx context.Context, componentToken, appID, authorizerAppID, name string) (int, error)
	SetAuthorizerOption(ctx context.Context, componentToken, appID, authorizerAppID, name string, value int) error
}

// managedOption is one option spec.options may manage, in the order they are checked.
type managedOption struct {
	name  string // WeChat's option_name
	field func(*wechatv1alpha1.AuthorizerOptions) **int32
}

var managedOptions = []managedOption{
	{wxapi.OptionLocationReport, func(o *wechatv1alpha1.AuthorizerOptions) **int32 { return &o.LocationReport }},
	{wxapi.OptionVoiceRecognize, func(o *wechatv1alpha1.AuthorizerOptions) **int32 { return &o.VoiceRecognize }},
	{wxapi.OptionCustomerService, func(o *wechatv1alpha1.AuthorizerOptions) **int32 { return &o.CustomerService }},
}

// wantedOption is an option spec sets, and its value.
type wantedOption struct {
	managedOption
	value int32
}

// optionsPlan is what decideOptions decided.
type optionsPlan struct {
	// wanted are the options spec manages; none: spec.options manages nothing.
	wanted []wantedOption
	// check: read them now (and set those that differ).
	check bool
	// wait, when not checking: how long until they are due.
	wait time.Duration
}

// wantedOptions lists the options spec sets. An unset one is not managed.
func wantedOptions(spec *wechatv1alpha1.AuthorizerOptions) []wantedOption {
	if spec == nil {
		return nil
	}
	var out []wantedOption
	for _, o := range managedOptions {
		if v := *o.field(spec); v != nil {
			out = append(out, wantedOption{o, *v})
		}
	}
	return out
}

// decideOptions says whether the options are due: never checked, the spec changed since the
// last check, the account authorized again since (its permissions may differ), or
// status.options.nextCheckAt has come. Otherwise it says how long until nextCheckAt.
func decideOptions(a *wechatv1alpha1.WeChatAuthorizer, now time.Time) optionsPlan {
	plan := optionsPlan{wanted: wantedOptions(a.Spec.Options)}
	if len(plan.wanted) == 0 {
		return plan
	}
	st := a.Status.Options
	switch {
	case st == nil || st.CheckedAt == nil || st.NextCheckAt == nil,
		st.ObservedGeneration != a.Generation,
		a.Status.AuthorizedAt != nil && a.Status.AuthorizedAt.After(st.CheckedAt.Time),
		!now.Before(st.NextCheckAt.Time):
		plan.check = true
	default:
		plan.wait = st.NextCheckAt.Sub(now)
	}
	return plan
}

// optionsRetry is the wait after the failures-th failed check in a row.
func optionsRetry(f *failure, failures int32, random, scale float64) time.Duration {
	b := refresh.Backoff{Base: f.backoff.Base, Cap: max(f.backoff.Cap, optionsRetryCap)}
	return max(b.Scaled(scale).Delay(failures, random), time.Second)
}

// classifyOptionError is the failure of an option call: reported to the component like any
// call with its token (40001 asks for a new one, 45009 for a quota reset), with the two
// answers particular to options named.
func (r *WeChatAuthorizerReconciler) classifyOptionError(ctx context.Context, run *authorizerRun, err error) *failure {
	f := r.reportToComponent(ctx, run, err)
	switch {
	case wxapi.IsAPISetUnauthorized(err):
		return configurationFailure(wechatv1alpha1.ReasonAPISetUnauthorized, err.Error()+msgOptionSetUnauth)
	case wxapi.IsInvalidArgs(err):
		return configurationFailure(wechatv1alpha1.ReasonOptionRejected, err.Error()+msgOptionRejected)
	}
	return f
}

// reconcileOptions checks the options when they are due: reads each one spec manages, sets
// it when WeChat's value differs, and stops at the first error. It records what WeChat said
// in status.options and the outcome in run.options; run.optionsWait is when to look again.
func (r *WeChatAuthorizerReconciler) reconcileOptions(ctx context.Context, run *authorizerRun, now time.Time) {
	a := run.a
	plan := decideOptions(a, now)
	if !plan.check {
		run.optionsWait = plan.wait
		return
	}
	st := &wechatv1alpha1.AuthorizerOptionsStatus{}
	if a.Status.Options != nil {
		st.FailedAttempts = a.Status.Options.FailedAttempts
	}
	st.CheckedAt, st.ObservedGeneration = timePtr(now), a.Generation
	var set []string
	var err error
	for _, o := range plan.wanted {
		var got int
		got, err = r.WeChat.GetAuthorizerOption(ctx, run.componentToken, run.component.Spec.AppID, a.Spec.AppID, o.name)
		if err != nil {
			break
		}
		observed := int32(got)
		*o.field(&st.AuthorizerOptions) = &observed
		if observed == o.value {
			continue
		}
		if err = r.WeChat.SetAuthorizerOption(ctx, run.componentToken, run.component.Spec.AppID, a.Spec.AppID, o.name, int(o.value)); err != nil {
			break
		}
		value := o.value
		*o.field(&st.AuthorizerOptions) = &value
		set = append(set, fmt.Sprintf(msgOptionSet, o.name, o.value, got))
	}
	if len(set) > 0 {
		r.Recorder.Eventf(a, nil, corev1.EventTypeNormal, wechatv1alpha1.EventOptionSet, "SetOption", "%s", strings.Join(set, "; "))
		log.FromContext(ctx).Info("account options set", "authorizerAppID", a.Spec.AppID, "set", set)
	}
	if err != nil {
		f := r.classifyOptionError(ctx, run, err)
		st.FailedAttempts++
		st.NextCheckAt = timePtr(now.Add(optionsRetry(f, st.FailedAttempts, r.Random(), r.BackoffScale)))
		run.options = &metav1.Condition{Status: metav1.ConditionFalse, Reason: f.reason,
			Message: fmt.Sprintf(msgOptionsFailed, f.message, st.NextCheckAt.UTC().Format(time.RFC3339))}
		// One Event per run of failures with the same reason; the condition says the rest.
		if prev := meta.FindStatusCondition(a.Status.Conditions, wechatv1alpha1.ConditionOptionsApplied); prev == nil ||
			prev.Status != metav1.ConditionFalse || prev.Reason != f.reason {
			r.Recorder.Eventf(a, nil, corev1.EventTypeWarning, wechatv1alpha1.EventOptionsFailed, "SetOption", "%s", run.options.Message)
		}
		log.FromContext(ctx).Info("account options check failed", "reason", f.reason, "message", f.message, "failedAttempts", st.FailedAttempts)
	} else {
		st.FailedAttempts = 0
		st.NextCheckAt = timePtr(now.Add(optionsCheckInterval))
		run.options = &metav1.Condition{Status: metav1.ConditionTrue, Reason: wechatv1alpha1.ReasonOptionsInSync,
			Message: fmt.Sprintf(msgOptionsInSync, describeOptions(plan.wanted), st.CheckedAt.UTC().Format(time.RFC3339),
				st.NextCheckAt.UTC().Format(time.RFC3339))}
	}
	a.Status.Options = st
	run.optionsWait = max(st.NextCheckAt.Sub(now), time.Second)
}

func describeOptions(wanted []wantedOption) string {
	parts := make([]string, 0, len(wanted))
	for _, o := range wanted {
		parts = append(parts, o.name+"="+strconv.Itoa(int(o.value)))
	}
	return strings.Join(parts, ", ")
}

// recordAccountSettings writes OptionsApplied and PermissionsGranted (recordStatus).
func (r *WeChatAuthorizerReconciler) recordAccountSettings(run *authorizerRun) {
	r.recordOptions(run)
	r.recordPermissions(run)
}

// recordOptions: no condition and no status.options without options in spec; this
// reconcile's check if there was one; else Unknown until the first check.
func (r *WeChatAuthorizerReconciler) recordOptions(run *authorizerRun) {
	a := run.a
	conds := &a.Status.Conditions
	switch {
	case len(wantedOptions(a.Spec.Options)) == 0:
		removeCondition(conds, wechatv1alpha1.ConditionOptionsApplied)
		a.Status.Options = nil
	case run.options != nil:
		setCondition(conds, a.Generation, wechatv1alpha1.ConditionOptionsApplied, run.options.Status, run.options.Reason, run.options.Message)
	case meta.FindStatusCondition(*conds, wechatv1alpha1.ConditionOptionsApplied) == nil:
		setCondition(conds, a.Generation, wechatv1alpha1.ConditionOptionsApplied, metav1.ConditionUnknown,
			wechatv1alpha1.ReasonOptionsPending, msgOptionsPending)
	}
}

// permissionSetNames are the official-account permission sets (funcscope_category ids) by
// id, as api_get_authorizer_info documents them. Mini programs number theirs differently.
var permissionSetNames = map[int32]string{
	1: "message management", 2: "user management", 3: "account services", 4: "web pages",
	5: "WeChat store", 6: "customer service", 7: "mass messages and notifications", 8: "cards and coupons",
	9: "scan", 10: "WeChat Wi-Fi", 11: "materials", 12: "shake nearby", 13: "stores", 14: "WeChat Pay",
	15: "custom menu",
}

// missingFuncInfo lists the required ids granted lacks, sorted, each once.
func missingFuncInfo(required, granted []int32) []int32 {
	var missing []int32
	for _, id := range required {
		if !slices.Contains(granted, id) && !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	return missing
}

// describeFuncInfo is "1 (message management), 15 (custom menu)"; names only for official accounts.
func describeFuncInfo(ids []int32, miniProgram bool) string {
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		s := strconv.Itoa(int(id))
		if name, ok := permissionSetNames[id]; ok && !miniProgram {
			s += " (" + name + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// decidePermissions is PermissionsGranted, a pure function of spec.requiredFuncInfo and
// status.info: nil (no condition) without required ids; Unknown before the account's info
// was read; else True, or False naming the missing ids and what to do.
func decidePermissions(a *wechatv1alpha1.WeChatAuthorizer) *metav1.Condition {
	required := a.Spec.RequiredFuncInfo
	if len(required) == 0 {
		return nil
	}
	info := a.Status.Info
	if info == nil || info.UpdatedAt == nil {
		return &metav1.Condition{Status: metav1.ConditionUnknown, Reason: wechatv1alpha1.ReasonPermissionsUnknown, Message: msgPermissionsUnknown}
	}
	missing := missingFuncInfo(required, info.FuncInfo)
	if len(missing) == 0 {
		sorted := slices.Sorted(slices.Values(required))
		return &metav1.Condition{Status: metav1.ConditionTrue, Reason: wechatv1alpha1.ReasonPermissionsGranted,
			Message: fmt.Sprintf(msgPermissionsGranted, describeFuncInfo(slices.Compact(sorted), info.MiniProgram))}
	}
	return &metav1.Condition{Status: metav1.ConditionFalse, Reason: wechatv1alpha1.ReasonPermissionsMissing,
		Message: fmt.Sprintf(msgPermissionsMissing, describeFuncInfo(missing, info.MiniProgram), a.Spec.ComponentRef.Name, a.Namespace)}
}

// recordPermissions writes PermissionsGranted, with an Event when it changes: Warning when
// sets go missing (or others do), Normal when they are all granted again.
func (r *WeChatAuthorizerReconciler) recordPermissions(run *authorizerRun) {
	a := run.a
	conds := &a.Status.Conditions
	want := decidePermissions(a)
	if want == nil {
		removeCondition(conds, wechatv1alpha1.ConditionPermissionsGranted)
		return
	}
	var prev *metav1.Condition
	if c := meta.FindStatusCondition(*conds, wechatv1alpha1.ConditionPermissionsGranted); c != nil {
		prev = c.DeepCopy()
	}
	setCondition(conds, a.Generation, wechatv1alpha1.ConditionPermissionsGranted, want.Status, want.Reason, want.Message)
	switch {
	case want.Status == metav1.ConditionFalse && (prev == nil || prev.Status != metav1.ConditionFalse || prev.Message != want.Message):
		r.Recorder.Eventf(a, nil, corev1.EventTypeWarning, wechatv1alpha1.EventPermissionsMissing, "CheckPermissions", "%s", want.Message)
	case want.Status == metav1.ConditionTrue && prev != nil && prev.Status == metav1.ConditionFalse:
		r.Recorder.Eventf(a, nil, corev1.EventTypeNormal, wechatv1alpha1.EventPermissionsRestored, "CheckPermissions", "%s", want.Message)
	}
}
