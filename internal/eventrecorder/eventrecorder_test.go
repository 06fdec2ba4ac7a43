/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package eventrecorder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// The API server's side is tested in controllers (eventrecorder_test.go); these count what
// the recorder asks of it.

func secret(name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1"}}
}

func testRecorder(cs *fake.Clientset, c *clocktesting.FakeClock) *Recorder {
	r := newRecorder(cs.EventsV1(), clientgoscheme.Scheme, "wechat-operator", "wechat-operator-host", c, logr.Discard())
	r.backoff.Duration = 0
	return r
}

// writeQueued writes what Eventf queued, as Start would.
func writeQueued(r *Recorder) {
	for {
		select {
		case e := <-r.queue:
			r.write(context.Background(), e)
		default:
			return
		}
	}
}

// countingCreates makes cs accept Event creations without keeping them (the fake's tracker
// slows down with thousands of objects) and returns their count.
func countingCreates(cs *fake.Clientset) *int {
	n := new(int)
	cs.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		*n++
		return true, a.(k8stesting.CreateAction).GetObject(), nil
	})
	return n
}

func listEvents(t *testing.T, cs *fake.Clientset) []eventsv1.Event {
	t.Helper()
	l, err := cs.EventsV1().Events("shop").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func TestRepeatsAreOneSeries(t *testing.T) {
	cs := fake.NewClientset()
	clock := clocktesting.NewFakeClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	r := testRecorder(cs, clock)
	s := secret("token")

	r.Eventf(s, nil, corev1.EventTypeWarning, "RefreshFailed", "Refresh", "WeChat answered %d", 45009)
	writeQueued(r)
	got := listEvents(t, cs)
	if len(got) != 1 {
		t.Fatalf("%d Events, want 1", len(got))
	}
	e := got[0]
	if e.Note != "WeChat answered 45009" || e.Type != corev1.EventTypeWarning || e.Reason != "RefreshFailed" || e.Action != "Refresh" ||
		e.ReportingController != "wechat-operator" || e.ReportingInstance != "wechat-operator-host" ||
		e.Regarding.Kind != "Secret" || e.Regarding.Name != "token" || e.Regarding.Namespace != "shop" || e.Series != nil ||
		!strings.HasPrefix(e.Name, "token.") || !e.EventTime.Time.Equal(clock.Now()) {
		t.Errorf("Event %+v", e)
	}

	// The object changed meanwhile (a status write): still the same series.
	s.ResourceVersion = "2"
	clock.Step(5 * time.Minute)
	r.Eventf(s, nil, corev1.EventTypeWarning, "RefreshFailed", "Refresh", "WeChat answered %d", 45009)
	clock.Step(5 * time.Minute)
	r.Eventf(s, nil, corev1.EventTypeWarning, "RefreshFailed", "Refresh", "WeChat answered %d", 45009)
	writeQueued(r)
	got = listEvents(t, cs)
	if len(got) != 1 || got[0].Series == nil || got[0].Series.Count != 3 || !got[0].Series.LastObservedTime.Time.Equal(clock.Now()) {
		t.Fatalf("after two repeats 5 minutes apart: %+v, want one Event with a series of 3 observed now", got)
	}

	// Another reason, or a repeat after six quiet minutes, is an Event of its own.
	r.Eventf(s, nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "issued")
	clock.Step(seriesWindow)
	r.Eventf(s, nil, corev1.EventTypeWarning, "RefreshFailed", "Refresh", "WeChat answered %d", 45009)
	writeQueued(r)
	if got = listEvents(t, cs); len(got) != 3 {
		t.Fatalf("%d Events, want 3", len(got))
	}

	// The series' Event expired on the API server: the repeat creates a new one.
	newest := got[0]
	for _, e := range got {
		if e.EventTime.After(newest.EventTime.Time) {
			newest = e
		}
	}
	if err := cs.EventsV1().Events("shop").Delete(context.Background(), newest.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clock.Step(time.Second)
	r.Eventf(s, nil, corev1.EventTypeWarning, "RefreshFailed", "Refresh", "WeChat answered %d", 45009)
	writeQueued(r)
	if got = listEvents(t, cs); len(got) != 3 {
		t.Errorf("%d Events after the series' Event was deleted and repeated, want 3 again", len(got))
	}
}

func TestRecordingNeverBlocks(t *testing.T) {
	cs := fake.NewClientset()
	created := countingCreates(cs)
	r := testRecorder(cs, clocktesting.NewFakeClock(time.Now()))
	for i := range queueSize + 10 {
		r.Eventf(secret(fmt.Sprint("s", i)), nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "issued")
	}
	if n := r.dropped.Load(); n != 10 {
		t.Errorf("%d Events dropped with the queue full, want 10", n)
	}
	writeQueued(r)
	if *created != queueSize {
		t.Errorf("%d Events written, want %d", *created, queueSize)
	}
	if n := r.dropped.Load(); n != 0 {
		t.Errorf("the count of dropped Events is %d once reported, want 0", n)
	}
	r.Eventf(secret("x"), nil, "Info", "TokenIssued", "Refresh", "issued")
	if len(r.queue) != 0 {
		t.Error("an Event of type Info was queued; the API server accepts Normal and Warning only")
	}
}

func TestRememberedSeriesAreBounded(t *testing.T) {
	cs := fake.NewClientset()
	created := countingCreates(cs)
	r := testRecorder(cs, clocktesting.NewFakeClock(time.Now()))
	for i := range 3 * recentSize {
		r.Eventf(secret(fmt.Sprint("s", i)), nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "issued")
		if i%queueSize == queueSize-1 {
			writeQueued(r)
		}
	}
	writeQueued(r)
	if n := r.recent.Len(); n != recentSize || *created != 3*recentSize {
		t.Errorf("%d series remembered of %d Events, want %d of %d", n, *created, recentSize, 3*recentSize)
	}
}

func TestWritesAreRetriedOnlyWhileTheAPIServerIsUnreachable(t *testing.T) {
	for name, tc := range map[string]struct {
		err   error
		tries int
	}{
		"unreachable": {errors.New("dial tcp: connection refused"), maxTries},
		"refused":     {apierrors.NewForbidden(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, "x", errors.New("no")), 1},
	} {
		t.Run(name, func(t *testing.T) {
			cs := fake.NewClientset()
			tries := 0
			cs.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
				tries++
				return true, nil, tc.err
			})
			r := testRecorder(cs, clocktesting.NewFakeClock(time.Now()))
			r.Eventf(secret("token"), nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "issued")
			writeQueued(r)
			if tries != tc.tries {
				t.Errorf("%d tries, want %d", tries, tc.tries)
			}
			if r.recent.Len() != 0 {
				t.Error("an Event not written is remembered as a series")
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	note := strings.Repeat("a", maxNoteBytes-1) + "令牌"
	got := truncate(note, maxNoteBytes)
	if len(got) != maxNoteBytes-1 || got != note[:maxNoteBytes-1] {
		t.Errorf("cut to %d bytes, want %d (before the rune that does not fit)", len(got), maxNoteBytes-1)
	}
	if truncate("short", maxNoteBytes) != "short" {
		t.Error("a short note was changed")
	}
}

// Two Events about one object in the same nanosecond get names of their own, and an object
// of the cluster puts its Events in default.
func TestEventNames(t *testing.T) {
	cs := fake.NewClientset()
	r := testRecorder(cs, clocktesting.NewFakeClock(time.Now()))
	s := secret(strings.Repeat("n", 253))
	r.Eventf(s, nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "issued")
	r.Eventf(s, nil, corev1.EventTypeWarning, "RefreshFailed", "Refresh", "failed")
	writeQueued(r)
	got := listEvents(t, cs)
	if len(got) != 2 || got[0].Name == got[1].Name {
		t.Fatalf("%d Events for two recorded in the same nanosecond", len(got))
	}
	for _, e := range got {
		if len(e.Name) > maxNameBytes {
			t.Errorf("an Event's name has %d bytes, more than the API server takes", len(e.Name))
		}
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "n1"}}
	r.Eventf(node, nil, corev1.EventTypeNormal, "Seen", "Look", "seen")
	writeQueued(r)
	l, _ := cs.EventsV1().Events(metav1.NamespaceDefault).List(context.Background(), metav1.ListOptions{})
	if len(l.Items) != 1 {
		t.Errorf("%d Events about a Node in default, want 1", len(l.Items))
	}
}

// Start writes what is queued, and when its context ends what is still queued.
func TestStartDrainsTheQueue(t *testing.T) {
	cs := fake.NewClientset()
	created := countingCreates(cs)
	r := testRecorder(cs, clocktesting.NewFakeClock(time.Now()))
	for i := range 10 {
		r.Eventf(secret(fmt.Sprint("s", i)), nil, corev1.EventTypeNormal, "TokenIssued", "Refresh", "issued")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if *created != 10 {
		t.Errorf("%d of 10 queued Events written after the context ended", *created)
	}
}
