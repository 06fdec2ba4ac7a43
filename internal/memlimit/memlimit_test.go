/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package memlimit

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestCgroupLimit(t *testing.T) {
	cases := map[string]struct {
		files map[string]string
		want  int64
	}{
		"cgroup v2 with a 256 MiB limit":      {files: map[string]string{"memory.max": "268435456\n"}, want: 256 << 20},
		"cgroup v2 without a limit":           {files: map[string]string{"memory.max": "max\n"}, want: 0},
		"cgroup v1 with a 512 MiB limit":      {files: map[string]string{"memory/memory.limit_in_bytes": "536870912\n"}, want: 512 << 20},
		"cgroup v1 unlimited (page-rounded)":  {files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, want: 0},
		"no cgroup files":                     {files: nil, want: 0},
		"garbage":                             {files: map[string]string{"memory.max": "lots"}, want: 0},
		"v2 wins over v1 when both are there": {files: map[string]string{"memory.max": "1048576", "memory/memory.limit_in_bytes": "2097152"}, want: 1 << 20},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			for file, content := range tc.files {
				path := filepath.Join(root, file)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := CgroupLimit(root); got != tc.want {
				t.Errorf("CgroupLimit = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSoftLimit(t *testing.T) {
	cases := map[string]struct {
		limit    int64
		fraction float64
		want     int64
	}{
		"75% of 256 MiB":         {limit: 256 << 20, fraction: 0.75, want: 192 << 20},
		"no container limit":     {limit: 0, fraction: 0.75, want: 0},
		"fraction 0 disables it": {limit: 256 << 20, fraction: 0, want: 0},
		"fraction above 1":       {limit: 256 << 20, fraction: 1.5, want: 0},
	}
	for name, tc := range cases {
		if got := SoftLimit(tc.limit, tc.fraction); got != tc.want {
			t.Errorf("%s: SoftLimit = %d, want %d", name, got, tc.want)
		}
	}
}

func TestApplyLeavesAnExplicitGOMEMLIMIT(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte("268435456"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMEMLIMIT", "100MiB")
	if limit, soft := Apply(root, 0.75); limit != 0 || soft != 0 {
		t.Errorf("with GOMEMLIMIT set, Apply = (%d, %d), want it to do nothing", limit, soft)
	}
}

func TestApplySetsTheRuntimeLimit(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte("268435456"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1) // -1 reads it
	defer debug.SetMemoryLimit(before)
	limit, soft := Apply(root, 0.75)
	if limit != 256<<20 || soft != 192<<20 {
		t.Fatalf("Apply = (%d, %d), want (256 MiB, 192 MiB)", limit, soft)
	}
	if got := debug.SetMemoryLimit(-1); got != 192<<20 {
		t.Errorf("runtime soft limit %d, want 192 MiB", got)
	}
}

func TestApplyGCPercent(t *testing.T) {
	t.Setenv("GOGC", "")
	previous := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(previous) })
	if !ApplyGCPercent(37) {
		t.Fatal("ApplyGCPercent(37) without $GOGC did not apply it")
	}
	if got := debug.SetGCPercent(100); got != 37 {
		t.Errorf("GC percent after ApplyGCPercent(37) = %d", got)
	}
	if ApplyGCPercent(0) {
		t.Error("ApplyGCPercent(0) applied it")
	}
	t.Setenv("GOGC", "80")
	if ApplyGCPercent(37) {
		t.Error("ApplyGCPercent overrode $GOGC")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent with $GOGC set changed to %d", got)
	}
}
