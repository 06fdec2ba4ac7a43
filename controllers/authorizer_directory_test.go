/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// countingLister lists n accounts, wx0..wx<n-1>, and counts the pages read.
type countingLister struct {
	mu    sync.Mutex
	n     int
	token string
	pages int
}

func (l *countingLister) GetAuthorizerList(_ context.Context, _, _ string, offset, count int) (wxapi.AuthorizerList, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pages++
	page := wxapi.AuthorizerList{TotalCount: l.n}
	for i := offset; i < l.n && i < offset+count; i++ {
		page.List = append(page.List, wxapi.AuthorizerListItem{AuthorizerAppID: fmt.Sprintf("wx%d", i), RefreshToken: l.token})
	}
	return page, nil
}

func TestDirectoryImportReadsOnce(t *testing.T) {
	l := &countingLister{n: 1200, token: "rt"}
	d := &authorizerDirectory{}
	start := time.Unix(0, 0)
	for i := range 1200 { // 1,200 lookups, one every 1.5 s: 30 minutes
		item, found, err := d.lookup(context.Background(), l, start.Add(time.Duration(i)*1500*time.Millisecond), "ct", "c", fmt.Sprintf("wx%d", i), "")
		if err != nil || !found || item.RefreshToken != "rt" {
			t.Fatalf("lookup %d = %v %v %v", i, item, found, err)
		}
	}
	if l.pages != 3 {
		t.Errorf("pages read = %d, want 3", l.pages)
	}
	if d.snapshots["c"].items != nil {
		t.Errorf("snapshot holds %d entries after every one was handed out", len(d.snapshots["c"].items))
	}
}

func TestDirectoryMissesBounded(t *testing.T) {
	l := &countingLister{n: 10, token: "rt"}
	d := &authorizerDirectory{}
	start := time.Unix(0, 0)
	for i := range 30 * 60 { // an unlisted account asked for every second for 30 minutes
		if _, found, _ := d.lookup(context.Background(), l, start.Add(time.Duration(i)*time.Second), "ct", "c", "missing", ""); found {
			t.Fatal("missing account found")
		}
	}
	if want := 3; l.pages != want { // one reading per directoryMissInterval, one page each
		t.Errorf("pages read = %d, want %d", l.pages, want)
	}
}

func TestDirectoryNewAuthorizerAfterTheImport(t *testing.T) {
	l := &countingLister{n: 10, token: "rt"}
	d := &authorizerDirectory{}
	start := time.Unix(0, 0)
	for i := range 10 { // an import of every listed account empties the snapshot
		if _, found, _ := d.lookup(context.Background(), l, start, "ct", "c", fmt.Sprintf("wx%d", i), ""); !found {
			t.Fatalf("wx%d not found", i)
		}
	}
	l.n = 12 // two accounts authorized since
	if _, found, _ := d.lookup(context.Background(), l, start.Add(30*time.Second), "ct", "c", "wx10", ""); found || l.pages != 1 {
		t.Fatalf("30 s after the reading: found %v after %d pages, want no new reading", found, l.pages)
	}
	if _, found, _ := d.lookup(context.Background(), l, start.Add(2*time.Minute), "ct", "c", "wx10", ""); !found || l.pages != 2 {
		t.Errorf("2 min after the reading, with nothing left to hand out: found %v after %d pages, want a new reading", found, l.pages)
	}
	if _, found, _ := d.lookup(context.Background(), l, start.Add(2*time.Minute+time.Second), "ct", "c", "wx11", ""); !found || l.pages != 2 {
		t.Errorf("the second new account: found %v after %d pages, want it from that reading", found, l.pages)
	}
}

func TestDirectoryRejectedReReadBounded(t *testing.T) {
	l := &countingLister{n: 10, token: "rt"}
	d := &authorizerDirectory{}
	start := time.Unix(0, 0)
	for i := range 10 * 60 { // the listed token rejected every second for 10 minutes
		if _, found, _ := d.lookup(context.Background(), l, start.Add(time.Duration(i)*time.Second), "ct", "c", "wx1", "rt"); i == 0 && !found {
			t.Fatal("first forced reading did not find the account")
		}
	}
	if want := 10; l.pages != want { // once a minute
		t.Errorf("pages read = %d, want %d", l.pages, want)
	}
	// A rotated token in the listing is handed out after the next allowed reading.
	l.token = "rt2"
	item, found, _ := d.lookup(context.Background(), l, start.Add(11*time.Minute), "ct", "c", "wx1", "rt")
	if !found || item.RefreshToken != "rt2" {
		t.Errorf("after rotation = %v %v, want rt2", item, found)
	}
}

func TestDirectoryConcurrentLookupsShareOneRead(t *testing.T) {
	l := &countingLister{n: 1000, token: "rt"}
	d := &authorizerDirectory{}
	now := time.Unix(0, 0)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if _, found, err := d.lookup(context.Background(), l, now, "ct", "c", fmt.Sprintf("wx%d", i), ""); err != nil || !found {
				t.Errorf("lookup wx%d = %v %v", i, found, err)
			}
		})
	}
	wg.Wait()
	if l.pages != 2 {
		t.Errorf("pages read = %d, want 2", l.pages)
	}
}
