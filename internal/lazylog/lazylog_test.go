/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package lazylog

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// withCounter counts the With calls that reach the real core.
type withCounter struct {
	zapcore.Core
	withs *int
}

func (c withCounter) With(fields []zapcore.Field) zapcore.Core {
	*c.withs++
	return withCounter{c.Core.With(fields), c.withs}
}

func TestFieldsEncodedOnlyWhenWritten(t *testing.T) {
	withs := 0
	observed, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(withCounter{observed, &withs}, Option())

	perReconcile := log.With(zap.String("name", "a")).With(zap.String("reconcileID", "1"))
	perReconcile.Debug("below the level")
	if withs != 0 {
		t.Fatalf("%d With calls reached the core before anything was written", withs)
	}
	perReconcile.Info("written")
	if withs != 2 {
		t.Fatalf("%d With calls reached the core after a write, want 2 (one per With)", withs)
	}
	perReconcile.Info("again")
	if withs != 2 {
		t.Fatalf("a second write encoded the fields again (%d With calls)", withs)
	}
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("%d entries written, want 2", len(entries))
	}
	got := entries[0].ContextMap()
	if got["name"] != "a" || got["reconcileID"] != "1" || len(got) != 2 {
		t.Errorf("fields %v, want name and reconcileID", got)
	}
	if entries[0].Message != "written" {
		t.Errorf("message %q", entries[0].Message)
	}
}
