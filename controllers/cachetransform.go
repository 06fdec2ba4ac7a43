/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// compactCached is the cache's transform: managedFields stripped (never read here, a third of
// a small object's size; an update without them leaves the server's untouched), and the
// strings every cached object repeats shared instead of held once per object. A decoder
// allocates each string anew, so 10,000 authorizers held the same label keys, namespace,
// owner kind and condition reasons 10,000 times over. Only values are shared, none changed:
// a write of a cached object sends exactly what it would have sent. Custom resources also
// leave out what no controller reads (dropLastApplied, keepReadInfo), authorizers with equal
// labels share one labels map (labelSets), and state and token Secrets are cached as views
// without their secrets (stateView, tokenView).
func compactCached(obj any) (any, error) {
	obj, err := cache.TransformStripManagedFields()(obj)
	if err != nil {
		return obj, err
	}
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil
	}
	switch o := o.(type) {
	case *corev1.Secret:
		if isStateSecret(o) {
			o = stateView(o)
			internObjectMeta(o, internLabels)
			return o, nil
		}
		if o = tokenView(o); isTokenView(o) {
			internObjectMeta(o, internLabels)
			return o, nil
		}
		o.Type = corev1.SecretType(intern(string(o.Type)))
		o.Data = internKeys(o.Data)
	case *wechatv1alpha1.WeChatAuthorizer:
		dropLastApplied(o)
		keepReadInfo(o.Status.Info)
		internConditions(o.Status.Conditions)
		o.Spec.ComponentRef.Name = intern(o.Spec.ComponentRef.Name)
		internObjectMeta(o, sharedAuthorizerLabels.share)
		return o, nil
	case *wechatv1alpha1.WeChatComponent:
		dropLastApplied(o)
		internConditions(o.Status.Conditions)
	}
	internObjectMeta(o, internLabels)
	return o, nil
}

// dropLastApplied removes kubectl's last-applied-configuration annotation from a custom
// resource: a second copy of its spec, which no controller reads, often the largest part of
// an object applied with kubectl. Objects leaving the cache keep it on the server: custom
// resources are written only with merge patches from what was read (statusWriter, the
// sharder), which leave alone what both sides lack.
func dropLastApplied(o client.Object) {
	annotations := o.GetAnnotations()
	if _, ok := annotations[corev1.LastAppliedConfigAnnotation]; !ok {
		return
	}
	delete(annotations, corev1.LastAppliedConfigAnnotation)
	if len(annotations) == 0 {
		annotations = nil
	}
	o.SetAnnotations(annotations)
}

// keepReadInfo is status.info with only what the controllers read: when it was fetched
// (the daily refresh), the permission sets granted and whether the account is a mini
// program (the PermissionsGranted condition). The rest (names, URLs, the signature) is for
// people, read from the API server by kubectl, and stays there: status is written with a
// merge patch from what was read, and a fresh info, fetched daily, is written whole.
// The decoded struct is reused, not replaced: one allocation fewer per decoded authorizer.
func keepReadInfo(info *wechatv1alpha1.AuthorizerInfo) {
	if info != nil {
		*info = wechatv1alpha1.AuthorizerInfo{UpdatedAt: info.UpdatedAt, FuncInfo: info.FuncInfo, MiniProgram: info.MiniProgram}
	}
}

// internObjectMeta shares the metadata strings few distinct values of which exist across
// objects: the namespace, label and annotation keys, our own label values, owner kinds. Names,
// UIDs and resource versions are each object's own and left alone. shareLabels makes the
// labels map the object keeps (internLabels, or a labelSets' share).
func internObjectMeta(o client.Object, shareLabels func(map[string]string) map[string]string) {
	if t, ok := o.GetObjectKind().(*metav1.TypeMeta); ok {
		t.APIVersion, t.Kind = intern(t.APIVersion), intern(t.Kind)
	}
	o.SetNamespace(intern(o.GetNamespace()))
	if labels := o.GetLabels(); labels != nil {
		o.SetLabels(shareLabels(labels))
	}
	if annotations := o.GetAnnotations(); annotations != nil {
		o.SetAnnotations(internKeys(annotations))
	}
	refs := o.GetOwnerReferences()
	for i := range refs {
		refs[i].APIVersion, refs[i].Kind = intern(refs[i].APIVersion), intern(refs[i].Kind)
	}
}

// internLabels returns labels in a map of its own with the keys and our own label values shared.
func internLabels(labels map[string]string) map[string]string {
	shared := make(map[string]string, len(labels))
	for k, v := range labels {
		if k == wechatv1alpha1.LabelManagedBy || k == wechatv1alpha1.LabelComponent {
			v = intern(v)
		}
		shared[intern(k)] = v
	}
	return shared
}

// internConditions shares the strings of conditions' types, statuses and reasons.
func internConditions(conditions []metav1.Condition) {
	for i := range conditions {
		c := &conditions[i]
		c.Type, c.Reason = intern(c.Type), intern(c.Reason)
		c.Status = metav1.ConditionStatus(intern(string(c.Status)))
	}
}

// internKeys returns m with its keys shared (a map's keys cannot be replaced in place).
func internKeys[V any](m map[string]V) map[string]V {
	if m == nil {
		return nil
	}
	shared := make(map[string]V, len(m))
	for k, v := range m {
		shared[intern(k)] = v
	}
	return shared
}

// intern returns the one shared copy of s. unique drops a value no object holds any more.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}
