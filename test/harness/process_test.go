/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// processCPU must agree with what the kernel reports through getrusage for the same process.
func TestProcessCPUAgreesWithGetrusage(t *testing.T) {
	rusage := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	// Spend some CPU first, so that a parser reading fields that are zero here (the
	// children's times, the start time's neighbours) cannot agree by accident.
	start := rusage()
	for rusage()-start < 300*time.Millisecond {
	}
	before := rusage()
	got, err := processCPU(os.Getpid())
	after := rusage()
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts in ticks of 10 ms; getrusage is finer.
	if got < before-20*time.Millisecond || got > after+20*time.Millisecond {
		t.Errorf("processCPU = %v, getrusage %v…%v", got, before, after)
	}
}
