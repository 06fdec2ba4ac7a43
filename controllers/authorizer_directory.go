/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"sync"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

const (
	// directoryMissInterval bounds re-reads for accounts the snapshot does not list: new
	// accounts normally arrive by an authorization push, not by the list.
	directoryMissInterval = 10 * time.Minute
	// directoryIdle frees a snapshot nobody asked for this long (the import is over).
	directoryIdle = 10 * time.Minute
	// directoryRejectInterval bounds re-reads after WeChat rejected a refresh token (61023).
	directoryRejectInterval = time.Minute
	// directoryDrainedInterval bounds re-reads for a miss once the snapshot has nothing left
	// to hand out: the import is over, and the miss is a new authorizer, not one of its
	// unlisted accounts.
	directoryDrainedInterval = time.Minute
)

// AuthorizerLister is the part of WeChat the directory reads.
type AuthorizerLister interface {
	GetAuthorizerList(ctx context.Context, componentToken, appID string, offset, count int) (wxapi.AuthorizerList, error)
}

// authorizerDirectory answers "what is this account's refresh token?" from one reading of
// api_get_authorizer_list per component, so importing N authorizers costs about N/500 pages
// per component however long the import runs. The rule, per component:
//   - an entry handed out is deleted from the snapshot (its refresh token now lives in the
//     state Secret), so a snapshot serves until it is empty or unused for directoryIdle;
//   - an account the snapshot does not list triggers a re-read at most once per
//     directoryMissInterval after the last reading while the snapshot still holds entries
//     (an import is under way), and once per directoryDrainedInterval when it holds none;
//   - after WeChat rejected an account's refresh token, an entry with a different token is
//     handed out, otherwise the list is re-read at most once per directoryRejectInterval;
//   - concurrent lookups share one reading (the lock is held while it is fetched).
//
// A lookup the rule does not allow to read answers "not listed".
type authorizerDirectory struct {
	mu        sync.Mutex
	snapshots map[string]*directorySnapshot
}

type directorySnapshot struct {
	fetched, used, rejectRead time.Time
	items                     map[string]wxapi.AuthorizerListItem // nil once empty or idle
}

// lookup returns the account's entry by the rule above.
func (d *authorizerDirectory) lookup(ctx context.Context, api AuthorizerLister, now time.Time,
	componentToken, componentAppID, authorizerAppID, rejected string) (wxapi.AuthorizerListItem, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.snapshots == nil {
		d.snapshots = map[string]*directorySnapshot{}
	}
	snap := d.snapshots[componentAppID]
	if snap != nil && now.Sub(snap.used) >= directoryIdle {
		snap.items = nil
	}
	var read bool
	if snap == nil {
		snap, read = &directorySnapshot{}, true
		d.snapshots[componentAppID] = snap
	} else {
		item, found := snap.items[authorizerAppID]
		switch {
		case found && (rejected == "" || item.RefreshToken != rejected):
			snap.used = now
			snap.handOut(authorizerAppID)
			return item, true, nil
		case rejected != "":
			read = now.Sub(snap.rejectRead) >= directoryRejectInterval
		case snap.items == nil:
			read = now.Sub(snap.fetched) >= directoryDrainedInterval
		default:
			read = now.Sub(snap.fetched) >= directoryMissInterval
		}
	}
	snap.used = now
	if !read {
		return wxapi.AuthorizerListItem{}, false, nil
	}
	items, err := readAuthorizerList(ctx, api, componentToken, componentAppID)
	if err != nil {
		return wxapi.AuthorizerListItem{}, false, err
	}
	snap.fetched, snap.items = now, items
	if rejected != "" {
		snap.rejectRead = now
	}
	item, found := items[authorizerAppID]
	if found {
		snap.handOut(authorizerAppID)
	}
	return item, found, nil
}

// handOut deletes an entry given to a reconcile and frees the map once it is empty.
func (s *directorySnapshot) handOut(appID string) {
	delete(s.items, appID)
	if len(s.items) == 0 {
		s.items = nil
	}
}

// readAuthorizerList pages through the whole list once.
func readAuthorizerList(ctx context.Context, api AuthorizerLister, componentToken, componentAppID string) (map[string]wxapi.AuthorizerListItem, error) {
	items := map[string]wxapi.AuthorizerListItem{}
	for offset := 0; ; {
		page, err := api.GetAuthorizerList(ctx, componentToken, componentAppID, offset, wxapi.MaxAuthorizerListCount)
		if err != nil {
			return nil, err
		}
		for _, e := range page.List {
			items[e.AuthorizerAppID] = e
		}
		offset += len(page.List)
		if len(page.List) == 0 || offset >= page.TotalCount {
			return items, nil
		}
	}
}
