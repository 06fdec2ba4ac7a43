/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

// tokenWatch follows every app-facing token Secret the way a consumer sees it and accounts
// for the time any of them held an expired token. It keeps only a hash of each token.
type tokenWatch struct {
	mu      sync.Mutex
	secrets map[string]*servedToken
	// expired is the total time Secrets spent holding a token past its expires_at, counted
	// from windowStart; expiredTokens how many distinct tokens did.
	expired       time.Duration
	expiredTokens int
	// changes counts token value changes (refreshes) since windowStart.
	changes     int
	windowStart time.Time
	// firstSeen records when each Secret first held a token (for push → Secret latency).
	firstSeen map[string]time.Time
}

type servedToken struct {
	hash      [32]byte
	expiresAt time.Time
}

func newTokenWatch() *tokenWatch {
	return &tokenWatch{secrets: map[string]*servedToken{}, firstSeen: map[string]time.Time{}}
}

// isTokenSecret tells app-facing token Secrets from the operator's private state Secrets.
func isTokenSecret(s *corev1.Secret) bool {
	return !strings.HasSuffix(s.Name, "-state") && len(s.Data[wechatv1alpha1.SecretKeyAccessToken]) > 0
}

func (w *tokenWatch) observe(s *corev1.Secret, now time.Time) {
	if !isTokenSecret(s) {
		return
	}
	exp, err := time.Parse(time.RFC3339, string(s.Data[wechatv1alpha1.SecretKeyExpiresAt]))
	if err != nil {
		return
	}
	h := sha256.Sum256(s.Data[wechatv1alpha1.SecretKeyAccessToken])
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.firstSeen[s.Name]; !ok {
		w.firstSeen[s.Name] = now
	}
	old := w.secrets[s.Name]
	if old != nil && old.hash == h {
		return
	}
	if old != nil {
		w.account(old, now)
		if !w.windowStart.IsZero() {
			w.changes++
		}
	}
	w.secrets[s.Name] = &servedToken{hash: h, expiresAt: exp}
}

// account adds the time t held an expired token before now (within the window).
func (w *tokenWatch) account(t *servedToken, now time.Time) {
	if w.windowStart.IsZero() {
		return
	}
	from := t.expiresAt
	if from.Before(w.windowStart) {
		from = w.windowStart
	}
	if now.After(from) {
		w.expired += now.Sub(from)
		w.expiredTokens++
	}
}

// startWindow resets the counters; from now on expiries and refreshes count.
func (w *tokenWatch) startWindow(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.windowStart, w.expired, w.expiredTokens, w.changes = now, 0, 0, 0
}

// result closes the accounting at now: Secrets still holding an expired token count too.
func (w *tokenWatch) result(now time.Time) (expired time.Duration, expiredTokens, changes, served int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	expired, expiredTokens = w.expired, w.expiredTokens
	for _, t := range w.secrets {
		from := t.expiresAt
		if from.Before(w.windowStart) {
			from = w.windowStart
		}
		if now.After(from) {
			expired += now.Sub(from)
			expiredTokens++
		}
	}
	return expired, expiredTokens, w.changes, len(w.secrets)
}

func (w *tokenWatch) seen(name string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.firstSeen[name]
	return t, ok
}

// start runs an informer on the managed Secrets of namespace.
func (w *tokenWatch) start(ctx context.Context, cfg *rest.Config, namespace string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	selector := labels.SelectorFromSet(labels.Set{wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue}).String()
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	inf := factory.Core().V1().Secrets().Informer()
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.observe(obj.(*corev1.Secret), time.Now()) },
		UpdateFunc: func(_, obj any) { w.observe(obj.(*corev1.Secret), time.Now()) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return nil
}

// memorySampler samples a process's RSS four times a second (a restart's peak lasts about as
// long as a garbage collection).
type memorySampler struct {
	mu      sync.Mutex
	samples []uint64
	peak    uint64
	file    uint64 // the latest sample's file-backed part (mostly the binary's pages), not the heap
}

func (m *memorySampler) run(ctx context.Context, p *harness.Process) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		if mem, err := p.Memory(); err == nil {
			m.mu.Lock()
			m.samples = append(m.samples, mem.RSS)
			m.peak = max(m.peak, mem.Peak)
			m.file = mem.File
			m.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-p.Done():
			return
		case <-t.C:
		}
	}
}

// steady is the mean RSS of the samples taken after from (an index from mark).
func (m *memorySampler) mark() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.samples)
}

func (m *memorySampler) meanSince(i int) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i >= len(m.samples) {
		return 0
	}
	var sum uint64
	for _, s := range m.samples[i:] {
		sum += s
	}
	return sum / uint64(len(m.samples)-i)
}

// maxBetween is the largest sample from index from to index to (from mark), to excluded.
func (m *memorySampler) maxBetween(from, to int) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var largest uint64
	for _, s := range m.samples[min(from, len(m.samples)):min(to, len(m.samples))] {
		largest = max(largest, s)
	}
	return largest
}

func (m *memorySampler) fileRSS() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.file
}

func (m *memorySampler) peakRSS() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak
}

// sample is one Prometheus text-format line.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads a Prometheus text endpoint; get may carry credentials (the API server's).
func scrape(ctx context.Context, get func(context.Context) (io.ReadCloser, error)) ([]sample, error) {
	body, err := get(ctx)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var out []sample
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		s := sample{name: line[:i], value: v, labels: map[string]string{}}
		if j := strings.IndexByte(s.name, '{'); j >= 0 {
			for _, kv := range splitLabels(s.name[j+1 : len(s.name)-1]) {
				if k, val, ok := strings.Cut(kv, "="); ok {
					s.labels[k] = strings.Trim(val, `"`)
				}
			}
			s.name = s.name[:j]
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// splitLabels splits a="x",b="y" at the commas outside quotes.
func splitLabels(s string) []string {
	var parts []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		parts = append(parts, s[start:])
	}
	return parts
}

// sum adds the values of name whose labels match every key of match.
func sum(samples []sample, name string, match map[string]string) float64 {
	var total float64
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
	}
	return total
}

func httpGetter(url string) func(context.Context) (io.ReadCloser, error) {
	return func(ctx context.Context) (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return resp.Body, nil
	}
}

func apiServerGetter(cfg *rest.Config) (func(context.Context) (io.ReadCloser, error), error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (io.ReadCloser, error) {
		return cs.CoreV1().RESTClient().Get().AbsPath("/metrics").Stream(ctx)
	}, nil
}

// writes is the API server's count of mutating requests by resource[/subresource].
type writes map[string]float64

func apiWrites(samples []sample) writes {
	w := writes{}
	for _, s := range samples {
		if s.name != "apiserver_request_total" {
			continue
		}
		switch s.labels["verb"] {
		case "POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE":
		default:
			continue
		}
		key := s.labels["resource"]
		if sub := s.labels["subresource"]; sub != "" {
			key += "/" + sub
		}
		w[key] += s.value
	}
	return w
}

func (w writes) minus(before writes) writes {
	out := writes{}
	for k, v := range w {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}
