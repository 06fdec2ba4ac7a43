/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"context"
	"sync"
	"time"
)

// Runnable is a process the harness started: *Process, *Manager, *Receiver, *Sim.
type Runnable interface {
	process() *Process
}

func (p *Process) process() *Process { return p }

// Exit is one end of a supervised process.
type Exit struct {
	At  time.Time
	Err error // how it ended (nil: exit status 0)
}

// SupervisorOptions tune Supervise. Zero values take the defaults.
type SupervisorOptions struct {
	// Backoff is the wait before the first restart (default 1s); it doubles after each exit
	// that came sooner than MinRuntime after the start, up to MaxBackoff (default 10s),
	// as the kubelet's CrashLoopBackOff does (with shorter times).
	Backoff, MaxBackoff time.Duration
	// MinRuntime is how long a run must last for the backoff to start over (default 10s).
	MinRuntime time.Duration
}

// Supervisor keeps one process running, starting it again whenever it exits, as a
// Deployment's restartPolicy: Always does. A leader-elected controller-runtime manager exits
// when it cannot renew its Lease; in a cluster the kubelet restarts it, here a Supervisor.
type Supervisor[T Runnable] struct {
	name  string
	start func(context.Context) (T, error)
	opts  SupervisorOptions

	mu        sync.Mutex
	current   T
	running   bool
	exits     []Exit
	startErrs int
	changed   chan struct{} // closed and replaced whenever current or exits change

	cancel context.CancelFunc
	done   chan struct{}
}

// Supervise starts the process with start (which should wait until it is ready) and keeps
// it running until Stop. The first start must succeed; later failed starts are retried with
// the backoff.
func Supervise[T Runnable](ctx context.Context, name string, start func(context.Context) (T, error), opts SupervisorOptions) (*Supervisor[T], error) {
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.MinRuntime <= 0 {
		opts.MinRuntime = 10 * time.Second
	}
	first, err := start(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Supervisor[T]{name: name, start: start, opts: opts, current: first, running: true,
		changed: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go s.loop(ctx, time.Now())
	return s, nil
}

func (s *Supervisor[T]) loop(ctx context.Context, startedAt time.Time) {
	defer close(s.done)
	backoff := s.opts.Backoff
	for {
		s.mu.Lock()
		p := s.current.process()
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-p.Done():
		}
		s.mu.Lock()
		s.running = false
		s.exits = append(s.exits, Exit{At: time.Now(), Err: p.Err()})
		s.notifyLocked()
		s.mu.Unlock()
		if time.Since(startedAt) >= s.opts.MinRuntime {
			backoff = s.opts.Backoff
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, s.opts.MaxBackoff)
			next, err := s.start(ctx)
			if err == nil {
				s.mu.Lock()
				s.current, s.running = next, true
				s.notifyLocked()
				s.mu.Unlock()
				startedAt = time.Now()
				break
			}
			s.mu.Lock()
			s.startErrs++
			s.mu.Unlock()
			if ctx.Err() != nil {
				return
			}
		}
	}
}

func (s *Supervisor[T]) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Current is the process now running, or the last one if it exited and the next one has not
// started yet (see Running).
func (s *Supervisor[T]) Current() T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Running reports whether the current process is up (started and not yet exited).
func (s *Supervisor[T]) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running && !s.current.process().Exited()
}

// Exits lists every exit so far (each was followed by a restart, or will be).
func (s *Supervisor[T]) Exits() []Exit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Exit(nil), s.exits...)
}

// Restarts is how many times the process was started again.
func (s *Supervisor[T]) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.exits)
	if !s.running {
		n--
	}
	return n
}

// FailedStarts is how many restarts failed (the process did not become ready) and were retried.
func (s *Supervisor[T]) FailedStarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startErrs
}

// Changed is closed at the next start or exit: a test waits on it instead of sleeping.
func (s *Supervisor[T]) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Stop stops supervising and stops the current process (SIGTERM, then SIGKILL after grace).
func (s *Supervisor[T]) Stop(grace time.Duration) {
	s.cancel()
	<-s.done
	s.mu.Lock()
	p := s.current.process()
	s.mu.Unlock()
	p.Stop(grace)
}
