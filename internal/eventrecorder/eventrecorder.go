/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package eventrecorder records events.k8s.io/v1 Events as client-go's events broadcaster
// does (one Event per call; a repeat on the same object within six minutes counted on the
// first as a series), in bounded memory. client-go keeps a deep copy of every Event it
// recorded for 6–12 minutes to find repeats: after an import, which records one TokenIssued
// per account, that was 14 MiB of a 10,000-authorizer manager's 61 MiB live heap. This
// recorder remembers the last recentSize series in ~330 bytes each (1.3 MiB in all), and queues at most
// queueSize Events for the API server.
package eventrecorder

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	eventsclient "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/reference"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"

	"github.com/wechat-operator/wechat-operator/internal/apiretry"
)

const (
	// seriesWindow: a repeat after this long without one starts a new Event (client-go's
	// finishTime).
	seriesWindow = 6 * time.Minute
	// recentSize series are remembered; beyond that many objects with Events within
	// seriesWindow a repeat creates an Event of its own rather than counting on the first.
	recentSize = 4096
	// queueSize Events wait for the API server at most; more are dropped and counted (an
	// Event is information, never state: a reconcile must not block on one).
	queueSize = 1024
	// maxNoteBytes is what the API server accepts in an Event's note.
	maxNoteBytes = 1024
	// maxTries of a write the API server could not be reached for, ~1 s apart.
	maxTries = 3
	// writeWait bounds one write, retries included.
	writeWait = 10 * time.Second
	// drainWait is how long queued Events may still be written once Start's context ends.
	drainWait = 5 * time.Second
	// maxNameBytes of an Event's name: the object's name cut to leave room for the suffix.
	maxNameBytes = 253
)

// Recorder is an events.EventRecorder; Start writes what it records.
type Recorder struct {
	events     eventsclient.EventsV1Interface
	scheme     *runtime.Scheme
	controller string
	instance   string
	clock      clock.PassiveClock
	log        logr.Logger
	queue      chan *eventsv1.Event
	recent     *lru.Cache // seriesKey → *series
	dropped    atomic.Int64
	backoff    wait.Backoff // between tries of a write
}

var _ events.EventRecorder = (*Recorder)(nil)

// series is what a repeat needs of the Event it counts on.
type series struct {
	namespace, name string
	count           int32
	last            time.Time
}

// seriesKey is what makes two Events one series: what client-go's broadcaster compares
// (type, reason, action, the objects), the objects by UID and without their resourceVersion
// (a status write between two failures of one authorizer does not make the second a new
// story). The reporting controller and instance are the recorder's own.
func seriesKey(e *eventsv1.Event) string {
	ref := func(r *corev1.ObjectReference) string {
		if r == nil {
			return ""
		}
		if r.UID != "" {
			return string(r.UID)
		}
		return r.APIVersion + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
	}
	return e.Type + "\x00" + e.Reason + "\x00" + e.Action + "\x00" + ref(&e.Regarding) + "\x00" + ref(e.Related)
}

// New records Events as reportingController through c; they are written once Start runs.
func New(c *rest.Config, httpClient *http.Client, scheme *runtime.Scheme, reportingController string, log logr.Logger) (*Recorder, error) {
	client, err := eventsclient.NewForConfigAndClient(c, httpClient)
	if err != nil {
		return nil, err
	}
	hostname, _ := os.Hostname()
	instance := reportingController + "-" + hostname
	if len(instance) > 128 { // the API server's limit
		instance = instance[:128]
	}
	return newRecorder(client, scheme, reportingController, instance, clock.RealClock{}, log), nil
}

func newRecorder(client eventsclient.EventsV1Interface, scheme *runtime.Scheme, controller, instance string, c clock.PassiveClock, log logr.Logger) *Recorder {
	return &Recorder{
		events: client, scheme: scheme, controller: controller, instance: instance, clock: c,
		log: log, queue: make(chan *eventsv1.Event, queueSize), recent: lru.New(recentSize),
		backoff: wait.Backoff{Duration: time.Second, Factor: 1, Jitter: 0.5, Steps: maxTries},
	}
}

// Eventf queues an Event about regarding (and related, if not nil). It never blocks.
func (r *Recorder) Eventf(regarding, related runtime.Object, eventType, reason, action, note string, args ...any) {
	if eventType != corev1.EventTypeNormal && eventType != corev1.EventTypeWarning {
		r.log.Error(nil, "Event not recorded: its type is neither Normal nor Warning", "type", eventType, "reason", reason)
		return
	}
	ref, err := reference.GetReference(r.scheme, regarding)
	if err != nil {
		r.log.Error(err, "Event not recorded: no reference to its object", "reason", reason)
		return
	}
	e := &eventsv1.Event{
		EventTime:           metav1.NewMicroTime(r.clock.Now()),
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Note:                truncate(fmt.Sprintf(note, args...), maxNoteBytes),
		Type:                eventType,
	}
	if related != nil {
		if e.Related, err = reference.GetReference(r.scheme, related); err != nil {
			e.Related = nil
		}
	}
	e.Namespace = ref.Namespace
	if e.Namespace == "" {
		e.Namespace = metav1.NamespaceDefault
	}
	select {
	case r.queue <- e:
	default:
		r.dropped.Add(1)
	}
}

// Start writes queued Events until ctx ends, then for drainWait what is still queued. Run it
// beside the managers, not in one, and end it after they stopped: a manager stops its other
// runnables before its controllers, whose last Events would be lost.
func (r *Recorder) Start(ctx context.Context) error {
	for {
		select {
		case e := <-r.queue:
			r.write(context.WithoutCancel(ctx), e)
		case <-ctx.Done():
			r.drain(context.WithoutCancel(ctx))
			return nil
		}
	}
}

func (r *Recorder) drain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, drainWait)
	defer cancel()
	defer r.reportDropped()
	for ctx.Err() == nil {
		select {
		case e := <-r.queue:
			r.write(ctx, e)
		default:
			return
		}
	}
}

// write creates e, or counts it on the Event of its series if one was written within
// seriesWindow.
func (r *Recorder) write(ctx context.Context, e *eventsv1.Event) {
	defer r.reportDropped()
	ctx, cancel := context.WithTimeout(ctx, writeWait)
	defer cancel()
	r.log.V(1).Info(e.Note, "type", e.Type, "reason", e.Reason, "object", e.Regarding)
	key := seriesKey(e)
	now := e.EventTime.Time
	if v, ok := r.recent.Get(key); ok {
		s := v.(*series)
		if now.Sub(s.last) < seriesWindow {
			s.count++
			s.last = now
			patch, _ := json.Marshal(map[string]any{"series": eventsv1.EventSeries{Count: s.count, LastObservedTime: metav1.NewMicroTime(now)}})
			err := r.retry(func() error {
				_, err := r.events.Events(s.namespace).Patch(ctx, s.name, types.MergePatchType, patch, metav1.PatchOptions{})
				return err
			})
			if !apierrors.IsNotFound(err) {
				r.logFailure(err, e)
				return
			}
			// The Event expired or was deleted: the repeat starts a new one.
		}
	}
	base := e.Regarding.Name
	if len(base) > maxNameBytes-17 {
		base = base[:maxNameBytes-17]
	}
	var err error
	for suffix := now.UnixNano(); ; suffix++ {
		e.Name = base + "." + strconv.FormatInt(suffix, 16)
		err = r.retry(func() error {
			_, err := r.events.Events(e.Namespace).Create(ctx, e, metav1.CreateOptions{})
			return err
		})
		// Another Event about the object was recorded in the same nanosecond: the next name.
		if !apierrors.IsAlreadyExists(err) || suffix > now.UnixNano() {
			break
		}
	}
	if err == nil {
		r.recent.Add(key, &series{namespace: e.Namespace, name: e.Name, count: 1, last: now})
	}
	r.logFailure(err, e)
}

// retry calls write again while the API server cannot be reached.
func (r *Recorder) retry(write func() error) error {
	return retry.OnError(r.backoff, apiretry.Transient, write)
}

func (r *Recorder) logFailure(err error, e *eventsv1.Event) {
	if err != nil {
		r.log.Error(err, "Event not written", "reason", e.Reason, "object", e.Regarding)
	}
}

// reportDropped logs how many Events were dropped while the queue was full, once it has had
// room again.
func (r *Recorder) reportDropped() {
	if n := r.dropped.Swap(0); n > 0 {
		r.log.Info("Events dropped: more were recorded than the API server took", "dropped", n, "queued", queueSize)
	}
}

// truncate cuts s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
