/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// FieldManager is the receiver's field manager name on the status it patches.
const FieldManager = "wechat-webhook-receiver"

// maxPatchAttempts bounds retries on optimistic-concurrency conflicts (another replica or
// the manager wrote status meanwhile). Each lost race means another write landed, so a push
// can lose only about as often as there are pushes in flight for the same object.
const maxPatchAttempts = 10

// applyTicket stores a ticket in status.verifyTicket unless a ticket created at the same
// time or later is already there. It reports whether it wrote.
//
// Replacing a ticket is a JSON patch that first tests the stored ticket's createTime: it
// succeeds only if no newer ticket arrived meanwhile (from another replica), and it does not
// conflict with unrelated status writes of the manager. The very first ticket, where there
// is nothing to test, is a merge patch guarded by resourceVersion.
func (s *Server) applyTicket(ctx context.Context, key types.NamespacedName, p wxcrypto.TicketPush) (bool, error) {
	ticket := wechatv1alpha1.VerifyTicket{
		Ticket:     p.Ticket,
		CreateTime: metav1.NewTime(time.Unix(p.Created, 0).UTC()),
	}
	var lastErr error
	for attempt := 0; attempt < maxPatchAttempts; attempt++ {
		component := &wechatv1alpha1.WeChatComponent{}
		// The first read comes from the cache; after a lost race, from the API server.
		reader := s.reader
		if attempt > 0 {
			reader = s.apiReader
		}
		if err := reader.Get(ctx, key, component); err != nil {
			return false, err
		}
		current := component.Status.VerifyTicket
		if current != nil && !ticket.CreateTime.After(current.CreateTime.Time) {
			return false, nil
		}
		ticket.ReceivedAt = metav1.NewTime(s.clock.Now().UTC().Truncate(time.Second))
		var patch client.Patch
		if current == nil {
			patch = client.MergeFromWithOptions(component.DeepCopy(), client.MergeFromWithOptimisticLock{})
			component.Status.VerifyTicket = &ticket
		} else {
			ops, err := json.Marshal([]map[string]any{
				{"op": "test", "path": "/status/verifyTicket/createTime", "value": current.CreateTime},
				{"op": "replace", "path": "/status/verifyTicket", "value": ticket},
			})
			if err != nil {
				return false, err
			}
			patch = client.RawPatch(types.JSONPatchType, ops)
		}
		lastErr = s.client.Status().Patch(ctx, component, patch, client.FieldOwner(FieldManager))
		if lastErr == nil {
			return true, nil
		}
		if !lostRace(lastErr) {
			return false, lastErr
		}
	}
	return false, lastErr
}

// lostRace reports a write refused because the object changed since it was read: a
// resourceVersion conflict, or a failed JSON-patch test (422).
func lostRace(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsInvalid(err) || errorCode(err) == http.StatusUnprocessableEntity
}

func errorCode(err error) int32 {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code
	}
	return 0
}

// patchStatus reads a fresh copy of an object (newObj gives an empty one), lets change edit it,
// and writes its status with optimistic concurrency, retrying when another writer got there
// first. change returns false when there is nothing to write. It reports whether it wrote.
func patchStatus[T client.Object](ctx context.Context, s *Server, key types.NamespacedName, newObj func() T, change func(T) bool) (bool, error) {
	var lastErr error
	for attempt := 0; attempt < maxPatchAttempts; attempt++ {
		obj := newObj()
		if err := s.apiReader.Get(ctx, key, obj); err != nil {
			return false, err
		}
		base := obj.DeepCopyObject().(T)
		if !change(obj) {
			return false, nil
		}
		patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
		lastErr = s.client.Status().Patch(ctx, obj, patch, client.FieldOwner(FieldManager))
		if lastErr == nil {
			return true, nil
		}
		if !lostRace(lastErr) {
			return false, lastErr
		}
	}
	return false, lastErr
}

func newComponent() *wechatv1alpha1.WeChatComponent   { return &wechatv1alpha1.WeChatComponent{} }
func newAuthorizer() *wechatv1alpha1.WeChatAuthorizer { return &wechatv1alpha1.WeChatAuthorizer{} }
