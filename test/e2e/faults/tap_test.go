/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	. "github.com/onsi/gomega"

	"github.com/wechat-operator/wechat-operator/test/harness"
)

// capturedPush is one push exactly as WeChat (the simulator) sent it.
type capturedPush struct {
	path, query string
	body        []byte
}

// tap is the 授权事件接收URL the simulator pushes to, in front of several receivers: it
// delivers each push to all of them at the same moment (as two replicas behind a load
// balancer would see WeChat's push and its retry racing), and answers "success" only if
// every one did. In capture mode it keeps the pushes instead, answering "success", so a test
// can deliver them later in an order of its choosing.
type tap struct {
	srv       *httptest.Server
	receivers []*harness.Receiver

	mu       sync.Mutex
	capture  bool
	captured []capturedPush
	answers  [][]int // the receivers' statuses, per delivered push
}

func newTap(receivers []*harness.Receiver) *tap {
	tp := &tap{receivers: receivers}
	tp.srv = httptest.NewServer(http.HandlerFunc(tp.serve))
	return tp
}

func (tp *tap) close() { tp.srv.Close() }

// eventsURL is the tap's URL for a component's pushes.
func (tp *tap) eventsURL(ns, component string) string {
	return tp.srv.URL + "/wechat/" + ns + "/" + component + "/events"
}

func (tp *tap) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	p := capturedPush{path: r.URL.Path, query: r.URL.RawQuery, body: body}
	tp.mu.Lock()
	capture := tp.capture
	if capture {
		tp.captured = append(tp.captured, p)
	}
	tp.mu.Unlock()
	if capture {
		_, _ = io.WriteString(w, "success")
		return
	}
	statuses := tp.deliver(p, tp.receivers...)
	tp.mu.Lock()
	tp.answers = append(tp.answers, statuses)
	tp.mu.Unlock()
	for _, st := range statuses {
		if st != http.StatusOK {
			http.Error(w, "not every receiver answered success", http.StatusBadGateway)
			return
		}
	}
	_, _ = io.WriteString(w, "success")
}

// deliver sends p to each receiver at the same moment and returns their statuses (0: no
// answer; a 200 without "success" counts as 502).
func (tp *tap) deliver(p capturedPush, receivers ...*harness.Receiver) []int {
	return race(func(i int) int { return send(receivers[i], p) }, len(receivers))
}

// race runs f(0..n-1) released at the same instant and returns the results.
func race(f func(i int) int, n int) []int {
	out := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

func send(r *harness.Receiver, p capturedPush) int {
	status, answer := post(r.URL+p.path+"?"+p.query, bytes.Clone(p.body))
	if status == http.StatusOK && strings.TrimSpace(answer) != "success" {
		return http.StatusBadGateway
	}
	return status
}

func (tp *tap) setCapture(on bool) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.capture = on
}

// takeCaptured returns the captured pushes and forgets them.
func (tp *tap) takeCaptured() []capturedPush {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	out := tp.captured
	tp.captured = nil
	return out
}

// lastAnswers is the receivers' statuses of the last push the tap delivered.
func (tp *tap) lastAnswers() []int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	Expect(tp.answers).NotTo(BeEmpty())
	return tp.answers[len(tp.answers)-1]
}
