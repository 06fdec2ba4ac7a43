/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// conflictRetry is how soon a reconcile whose status write lost a race looks again: the
// other writer's change is already on its way through the watch.
const conflictRetry = time.Second

// statusAttempts bounds the writes of one reconcile's status when others keep writing.
const statusAttempts = 3

// statusObject is a WeChatComponent or a WeChatAuthorizer.
type statusObject interface {
	client.Object
	StatusConditions() *[]metav1.Condition
}

// statusWriter writes a reconcile's status, once, at the end, and only when it changed. It
// is the one place where status is finalised before the write. A conflict means the
// receiver wrote to the object meanwhile (a ticket, a code, a revocation): the latest object
// is read, this reconcile's status re-applied onto it (rebase), and the write tried again, so
// what the reconcile learned (a failure and its backoff) is not lost.
type statusWriter struct {
	client   client.Client
	reader   client.Reader // uncached: the latest object after a conflict
	versions *writtenVersions
	// empty returns a new object of the kind; rebase makes mine the latest object with mine's
	// status re-applied onto it (before is the object as the reconcile read it).
	empty  func() statusObject
	rebase func(before, mine, latest statusObject)
	// status returns the object's status, the part a status write sends.
	status func(statusObject) any
	// patchFrom is the patch from base to the object written; nil: a merge patch.
	patchFrom func(base client.Object) client.Patch
}

// write writes obj's status if it differs from before's, and returns the reconcile's result.
// now is the reconciler's clock: the transition time of a new Reconciling condition.
func (w statusWriter) write(ctx context.Context, now time.Time, before, obj statusObject, result reconcile.Result, err error) (reconcile.Result, error) {
	// Reconciling and Stalled follow Ready (kstatus, Argo CD): derived here, before the
	// comparison, so an unchanged derivation costs no write.
	wechatv1alpha1.SetKstatusConditions(obj.StatusConditions(), obj.GetGeneration(), now)
	// Only the status: the status subresource takes nothing else, and the whole object's
	// comparison was 5 % of a restart's CPU at 100,000 authorizers.
	if equality.Semantic.DeepEqual(w.status(before), w.status(obj)) {
		return result, err
	}
	// A merge patch from the object as read, not an Update: the cache holds a compacted copy
	// (compactCached), and what it leaves out must stay as it is on the server. The patch
	// carries the resourceVersion read, so a concurrent write is a conflict, not overwritten.
	base := before.DeepCopyObject().(client.Object)
	for attempt := 1; ; attempt++ {
		var patch client.Patch
		if w.patchFrom != nil {
			patch = w.patchFrom(base)
		} else {
			patch = client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
		}
		uerr := w.client.Status().Patch(ctx, obj, patch, fieldOwner)
		if uerr == nil {
			w.versions.wrote(obj)
			return result, err
		}
		if !apierrors.IsConflict(uerr) {
			return reconcile.Result{Priority: result.Priority}, errors.Join(err, uerr)
		}
		if attempt == statusAttempts {
			return reconcile.Result{RequeueAfter: conflictRetry, Priority: result.Priority}, nil
		}
		latest := w.empty()
		if rerr := w.reader.Get(ctx, client.ObjectKeyFromObject(obj), latest); rerr != nil {
			return reconcile.Result{Priority: result.Priority}, errors.Join(err, rerr)
		}
		// latest, read live, is compacted as the cache would hold it, so that the next patch,
		// from it, leaves alone what the cache leaves out; obj becomes latest with this
		// reconcile's status, and the patch carries latest's resourceVersion.
		if _, cerr := compactCached(latest); cerr != nil {
			return reconcile.Result{Priority: result.Priority}, errors.Join(err, cerr)
		}
		// A copy for each: what compactCached returns may share maps with the cache's
		// objects (labelSets), and the next write decodes its response into obj.
		base = latest.DeepCopyObject().(client.Object)
		w.rebase(before, obj, latest.DeepCopyObject().(statusObject))
	}
}

// A status write conflicts when the receiver wrote to the same object during the reconcile
// (a ticket, a code, a revocation). Dropping the reconcile's status then would lose what it
// learned (a failure, its count and backoff), so it is re-applied onto the latest object:
// the fields the receiver writes come from the latest, less what this reconcile consumed.

// rebaseComponentStatus returns mine re-applied onto latest. before is the status the
// reconcile started from.
func rebaseComponentStatus(before, mine, latest *wechatv1alpha1.WeChatComponentStatus) wechatv1alpha1.WeChatComponentStatus {
	merged := *mine.DeepCopy()
	merged.VerifyTicket = latest.VerifyTicket.DeepCopy()
	merged.PendingAuthorizationCodes = unconsumed(before.PendingAuthorizationCodes, mine.PendingAuthorizationCodes, latest.PendingAuthorizationCodes,
		func(c wechatv1alpha1.AuthorizationCode) string { return c.Code })
	merged.PendingTestReplies = unconsumed(before.PendingTestReplies, mine.PendingTestReplies, latest.PendingTestReplies,
		func(t wechatv1alpha1.TestReply) string { return t.Code })
	merged.AuthorizeLinkRequests = rebaseLinkRequests(before.AuthorizeLinkRequests, mine.AuthorizeLinkRequests, latest.AuthorizeLinkRequests)
	return merged
}

// rebaseAuthorizerStatus returns mine re-applied onto latest.
func rebaseAuthorizerStatus(before, mine, latest *wechatv1alpha1.WeChatAuthorizerStatus) wechatv1alpha1.WeChatAuthorizerStatus {
	merged := *mine.DeepCopy()
	merged.UnauthorizedAt = latest.UnauthorizedAt.DeepCopy()
	// A code the receiver recorded meanwhile is kept for the next reconcile; the one this
	// reconcile exchanged (or kept for a retry) is as it left it.
	if !equality.Semantic.DeepEqual(latest.AuthorizationCode, before.AuthorizationCode) {
		merged.AuthorizationCode = latest.AuthorizationCode.DeepCopy()
	}
	return merged
}

// unconsumed is latest without the entries this reconcile removed (in before, not in mine).
func unconsumed[T any](before, mine, latest []T, key func(T) string) []T {
	var consumed []string
	for _, b := range before {
		if !slices.ContainsFunc(mine, func(m T) bool { return key(m) == key(b) }) {
			consumed = append(consumed, key(b))
		}
	}
	out := make([]T, 0, len(latest))
	for _, l := range latest {
		if !slices.Contains(consumed, key(l)) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// newStatusWriter is the writer of the kind T, whose rebase sets latest's status to
// mine's re-applied onto it.
func newStatusWriter[T any, P interface {
	*T
	statusObject
}](c client.Client, reader client.Reader, versions *writtenVersions, status func(P) any, rebase func(before, mine, latest P)) statusWriter {
	return statusWriter{client: c, reader: reader, versions: versions,
		empty:  func() statusObject { return P(new(T)) },
		status: func(o statusObject) any { return status(o.(P)) },
		rebase: func(before, mine, latest statusObject) {
			rebase(before.(P), mine.(P), latest.(P))
			*mine.(P) = *latest.(P)
		}}
}

func componentStatusWriter(c client.Client, reader client.Reader, versions *writtenVersions) statusWriter {
	return newStatusWriter(c, reader, versions, func(o *wechatv1alpha1.WeChatComponent) any { return &o.Status },
		func(before, mine, latest *wechatv1alpha1.WeChatComponent) {
			latest.Status = rebaseComponentStatus(&before.Status, &mine.Status, &latest.Status)
		})
}

func authorizerStatusWriter(c client.Client, reader client.Reader, versions *writtenVersions) statusWriter {
	w := newStatusWriter(c, reader, versions, func(a *wechatv1alpha1.WeChatAuthorizer) any { return &a.Status },
		func(before, mine, latest *wechatv1alpha1.WeChatAuthorizer) {
			latest.Status = rebaseAuthorizerStatus(&before.Status, &mine.Status, &latest.Status)
		})
	w.patchFrom = func(base client.Object) client.Patch {
		return wholeInfoPatch{client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})}
	}
	return w
}

// wholeInfoPatch is a merge patch that replaces status.info whole when it changed. The cache
// holds only part of the info (keepReadInfo), so a plain merge patch from the cached object
// would leave a field a fresh fetch no longer has (an alias or signature the account
// cleared, a business feature closed) as the server had it: every field the new info leaves
// out is sent as null.
type wholeInfoPatch struct{ client.Patch }

func (p wholeInfoPatch) Data(obj client.Object) ([]byte, error) {
	data, err := p.Patch.Data(obj)
	a, ok := obj.(*wechatv1alpha1.WeChatAuthorizer)
	if err != nil || !ok || a.Status.Info == nil {
		return data, err
	}
	var patch map[string]any
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber() // the other fields go back as they came
	if err := decoder.Decode(&patch); err != nil {
		return nil, err
	}
	status, _ := patch["status"].(map[string]any)
	if _, changed := status["info"].(map[string]any); !changed {
		return data, nil
	}
	if status["info"], err = replacingWhole(a.Status.Info); err != nil {
		return nil, err
	}
	return json.Marshal(patch)
}

// replacingWhole is v (a struct, or a pointer to one) as a merge patch that leaves nothing of
// what it replaces: every field v omits is null, at every depth.
func replacingWhole(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	addNulls(reflect.TypeOf(v), m)
	return m, nil
}

// addNulls sets each field of the struct type t that m lacks to null, and recurses into the
// objects m has.
func addNulls(t reflect.Type, m map[string]any) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		value, present := m[name]
		if !present {
			m[name] = nil
			continue
		}
		if sub, ok := value.(map[string]any); ok {
			addNulls(f.Type, sub)
		}
	}
}
