/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSupervisorRestarts(t *testing.T) {
	dir := t.TempDir()
	n := 0
	s, err := Supervise(t.Context(), "short-lived", func(context.Context) (*Process, error) {
		n++
		return Start("short-lived", "/bin/sh", filepath.Join(dir, "log"), "-c", "exit 3")
	}, SupervisorOptions{Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for len(s.Exits()) < 3 {
		select {
		case <-s.Changed():
		case <-deadline:
			t.Fatalf("only %d exits", len(s.Exits()))
		}
	}
	s.Stop(time.Second)
	exits := s.Exits()
	if exits[0].Err == nil || !strings.Contains(exits[0].Err.Error(), "exit status 3") {
		t.Fatalf("exit = %v", exits[0].Err)
	}
	if n < 3 || s.Restarts() < 2 {
		t.Fatalf("started %d times, %d restarts", n, s.Restarts())
	}
}
