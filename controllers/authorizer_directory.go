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

// directoryTTL is how long one reading of api_get_authorizer_list serves lookups.
const directoryTTL = time.Minute

// AuthorizerLister is the part of WeChat the directory reads.
type AuthorizerLister interface {
	GetAuthorizerList(ctx context.Context, componentToken, appID string, offset, count int) (wxapi.AuthorizerList, error)
}

// authorizerDirectory answers "what is this account's refresh token?" from one reading of
// api_get_authorizer_list per component, shared by every reconcile for a minute. Importing
// N authorizers from Git would otherwise page through the list N times: at 10,000 accounts,
// about 100,000 calls of a quota-limited API instead of 20.
type authorizerDirectory struct {
	mu        sync.Mutex // held while a reading is fetched, so concurrent lookups share it
	snapshots map[string]directorySnapshot
}

type directorySnapshot struct {
	fetched time.Time
	items   map[string]wxapi.AuthorizerListItem
}

// lookup returns the account's entry. A snapshot older than directoryTTL is read again, and
// so is one that, after WeChat rejected the account's refresh token, lists that same token or
// does not list the account at all (it authorized after the snapshot was read).
func (d *authorizerDirectory) lookup(ctx context.Context, api AuthorizerLister, now time.Time,
	componentToken, componentAppID, authorizerAppID, rejected string) (wxapi.AuthorizerListItem, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	snap, ok := d.snapshots[componentAppID]
	item, found := snap.items[authorizerAppID]
	if ok && now.Sub(snap.fetched) < directoryTTL && (rejected == "" || (found && item.RefreshToken != rejected)) {
		return item, found, nil
	}
	items := map[string]wxapi.AuthorizerListItem{}
	for offset := 0; ; {
		page, err := api.GetAuthorizerList(ctx, componentToken, componentAppID, offset, wxapi.MaxAuthorizerListCount)
		if err != nil {
			return wxapi.AuthorizerListItem{}, false, err
		}
		for _, e := range page.List {
			items[e.AuthorizerAppID] = e
		}
		offset += len(page.List)
		if len(page.List) == 0 || offset >= page.TotalCount {
			break
		}
	}
	if d.snapshots == nil {
		d.snapshots = map[string]directorySnapshot{}
	}
	d.snapshots[componentAppID] = directorySnapshot{fetched: now, items: items}
	item, found = items[authorizerAppID]
	return item, found, nil
}
