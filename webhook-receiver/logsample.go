/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// Anyone on the internet can send the receiver junk, and one log line per rejected request
// let them fill the logs (3,000 junk requests made 2,682 lines). Lines about rejected
// requests are sampled: a burst, then one a second, each saying how many were left out
// since the one before. Every request is still counted by result in
// wechat_receiver_pushes_total / wechat_receiver_messages_total, and the lines left out in
// wechat_receiver_rejected_log_lines_suppressed_total. Failures on our side (5xx: the API
// server did not take a write) are always logged.
const (
	rejectLogBurst = 10
	rejectLogEvery = time.Second
)

type rejectLogSampler struct {
	clock   clock.PassiveClock
	limiter *rate.Limiter

	mu         sync.Mutex
	suppressed int
}

func newRejectLogSampler(c clock.PassiveClock) *rejectLogSampler {
	return &rejectLogSampler{clock: c, limiter: rate.NewLimiter(rate.Every(rejectLogEvery), rejectLogBurst)}
}

// allow reports whether a line may be logged now, and how many were left out before it.
func (l *rejectLogSampler) allow() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.limiter.AllowN(l.clock.Now(), 1) {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

// logNotAccepted logs a request answered with pe: always for a failure of ours, sampled for
// a request refused because of what it is (anyone may send those).
func (s *Server) logNotAccepted(logger logr.Logger, msg string, pe *pushError) {
	if pe.ours() {
		logger.Info(msg, "status", pe.status, "reason", pe.detail)
		return
	}
	s.logRejected(logger, msg, "status", pe.status, "reason", pe.detail)
}

// logRejected logs one sampled line about a rejected request.
func (s *Server) logRejected(logger logr.Logger, msg string, keysAndValues ...any) {
	ok, suppressed := s.rejectLog.allow()
	if !ok {
		if s.metrics != nil {
			s.metrics.RejectedLogsSuppressed.Inc()
		}
		return
	}
	if suppressed > 0 {
		keysAndValues = append(keysAndValues, "suppressedSinceLast", suppressed)
	}
	logger.Info(msg, keysAndValues...)
}
