/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wechat-operator/wechat-operator/test/harness"
)

// results are one run's figures.
type results struct {
	authorizers, components int
	compression             float64
	lifetime                time.Duration
	started, finished       time.Time
	managerFlags            string
	goMemLimit              string
	memoryLimitMiB          int
	notes                   []string

	componentToSecret []time.Duration
	createTime        time.Duration
	importTime        time.Duration
	importCalls       int
	importByAPI       string
	steadyByAPI       string
	restartByAPI      string

	window                                             time.Duration
	expired                                            time.Duration
	expiredTokens, refreshes                           int
	authorizerCalls, componentCalls                    int
	steadyCalls                                        int
	writes                                             writes
	steadyRSS, peakRSS, restartedRSS, restartedPeakRSS uint64
	// restartPhasePeakRSS is the largest RSS sampled from the restarted manager's start to
	// every CR Ready; restartedPeakRSS (VmHWM) also covers the receiver benchmarks after it.
	restartPhasePeakRSS uint64
	shardRSS            [][2]uint64 // sharded: each shard's peak and steady RSS
	heapInuse           float64
	windowCPU           time.Duration // the managers' CPU time in the window (all shards)
	windowGCs           int           // garbage collections in the window (all shards)
	etcd                etcdUsage
	checked, rejected   int64

	restartLeased, restartReconciled, restartReady time.Duration
	restartReadyRead                               time.Duration // how long the read that showed every CR Ready took
	restartSpurious, restartDue                    int
	restartComponentCalls                          int
	restartWrites                                  writes

	throughput []throughput
}

// cpuFigure is the managers' CPU in the window: a compressed run's rates are k times real
// time's, so is its CPU; per refresh it does not depend on k.
func (r *results) cpuFigure() string {
	if r.window <= 0 {
		return "not measured"
	}
	perRefresh := "no refresh"
	if r.refreshes > 0 {
		perRefresh = fmt.Sprintf("%.1f ms per refresh", float64(r.windowCPU.Microseconds())/1000/float64(r.refreshes))
	}
	return fmt.Sprintf("%.1f s, %.0f %% of one core, %s; %d GCs", r.windowCPU.Seconds(), 100*r.windowCPU.Seconds()/r.window.Seconds(), perRefresh, r.windowGCs)
}

// compressedDays is how many days of real time the window stands for.
func (r *results) compressedDays() float64 {
	return r.window.Seconds() * r.compression / 86400
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func (r *results) table() string {
	var b strings.Builder
	days := r.compressedDays()
	perDay := float64(r.authorizerCalls) / float64(r.authorizers) / days
	compPerDay := float64(r.componentCalls) / float64(r.components) / days
	perRefresh := 0.0
	if r.refreshes > 0 {
		perRefresh = float64(r.authorizerCalls+r.componentCalls) / float64(r.refreshes)
	}
	comps := fmt.Sprintf("%d components", r.components)
	if r.components == 1 {
		comps = "1 component"
	}
	fmt.Fprintf(&b, "**%s authorizers** over %s, time compressed %gx (tokens live %s for 7200 s; a %s window = %.2f days); manager flags `%s`.\n\n",
		thousands(r.authorizers), comps, r.compression, r.lifetime, r.window.Round(time.Second), days, r.managerFlags)
	if r.goMemLimit != "" {
		fmt.Fprintf(&b, "The manager ran with GOMEMLIMIT=%s, what it sets itself in a pod with a %d MiB memory limit (`--memory-limit-fraction`).\n\n", r.goMemLimit, r.memoryLimitMiB)
	} else {
		b.WriteString("The manager ran with no memory limit (Go's default garbage collection).\n\n")
	}
	b.WriteString("| figure | measured | target |\n|---|---|---|\n")
	row := func(figure, measured, target string) { fmt.Fprintf(&b, "| %s | %s | %s |\n", figure, measured, target) }
	row("WeChat token calls per authorizer token per day", fmt.Sprintf("%.1f (api_authorizer_token)", perDay), "≤ 14 (minimum 12; lazy SDK 144)")
	row("component token calls per component per day", fmt.Sprintf("%.1f (api_component_token)", compPerDay), "≤ 14")
	row("token calls per refresh (calls ÷ token changes seen by a watcher)", fmt.Sprintf("%.3f (%d calls, %d refreshes)", perRefresh, r.authorizerCalls+r.componentCalls, r.refreshes), "1")
	row("expired-token-seconds (any app-facing Secret past expires_at)", fmt.Sprintf("%.1f s (%d tokens)", r.expired.Seconds(), r.expiredTokens), "0")
	row("served tokens used as an app would (get_api_domain_ip), rejected", fmt.Sprintf("%d of %d", r.rejected, r.checked), "0")
	row("manager RSS: peak (whole run) / steady (window mean)", fmt.Sprintf("%s / %s (Go heap in use %s)", mib(r.peakRSS), mib(r.steadyRSS), mib(uint64(r.heapInuse))), "peak ≤ 120 MiB at 10k, ≤ 700 MiB at 100k (≤ 6 KiB per authorizer)")
	row("manager CPU in the window (all shards): share of one core, per refresh; garbage collections", r.cpuFigure(), "")
	if len(r.shardRSS) > 0 {
		var each []string
		for i, rss := range r.shardRSS {
			each = append(each, fmt.Sprintf("s%d %s / %s", i, mib(rss[0]), mib(rss[1])))
		}
		row("sharded: each shard's RSS, peak / steady (the row above is the largest)", strings.Join(each, "; "), "about 1/N of one manager's")
	}
	row("restarted manager RSS: mean from its start to the end of the run / peak (VmHWM, the restart and the receiver benchmarks) / largest sample in the restart (to every CR Ready)",
		mib(r.restartedRSS)+" / "+mib(r.restartedPeakRSS)+" / "+mib(r.restartPhasePeakRSS), "≤ 700 MiB at 100k")
	row("restart with fresh tokens: WeChat calls not due", fmt.Sprintf("%d (plus %d due refreshes, %d component token calls)", r.restartSpurious, r.restartDue, r.restartComponentCalls), "0")
	row("restart: Lease taken (every cache synced) / every object reconciled / every CR Ready (when the read that showed it was sent; its answer took the time in brackets)", fmt.Sprintf("%s / %s / %s (%s)",
		r.restartLeased.Round(10*time.Millisecond), r.restartReconciled.Round(10*time.Millisecond), r.restartReady.Round(10*time.Millisecond),
		r.restartReadyRead.Round(10*time.Millisecond)),
		"≤ 15 s at 10k, ≤ 30 s at 100k")
	row("restart: API-server writes", r.restartWrites.String(), "Lease only")
	latency := func(figure string, d []time.Duration, target string) {
		if len(d) == 0 {
			return
		}
		sorted := slices.Clone(d)
		slices.Sort(sorted)
		row(figure, fmt.Sprintf("%s / %s (n=%d)", ms(percentile(sorted, 0.5)), ms(percentile(sorted, 0.99)), len(d)), target)
	}
	latency("new WeChatComponent → component token Secret (keys to the receivers, 2 s for their caches, api_start_push_ticket, push, token), p50 / p99",
		r.componentToSecret, "the push alone: `make bench-push`, p99 ≤ 1 s")
	for _, t := range r.throughput {
		row(fmt.Sprintf("receiver, %d senders: pushes/s, p50 / p99", t.senders),
			fmt.Sprintf("%.0f/s, %s / %s", float64(t.pushes)/t.elapsed.Seconds(), ms(t.p50), ms(t.p99)), "")
	}
	if r.refreshes > 0 {
		per := func(key string) float64 { return r.writes[key] / float64(r.refreshes) }
		row("API-server writes per refresh: Secrets / status / Events / all",
			fmt.Sprintf("%.2f / %.2f / %.2f / %.2f", per("secrets"), per("wechatauthorizers/status")+per("wechatcomponents/status"),
				per("events"), r.writes.total()/float64(r.refreshes)), "1 per Secret changed, status only on change")
	}
	if len(r.etcd) > 0 {
		row("etcd bytes per authorizer after the window (the namespace's keys and values at the current revision ÷ authorizers)", r.etcd.perAuthorizer(r.authorizers), "")
	}
	row("initial import: create all / all tokens issued", fmt.Sprintf("%s / %s (%d WeChat calls)", r.createTime.Round(100*time.Millisecond), r.importTime.Round(time.Second), r.importCalls), "")
	fmt.Fprintf(&b, "\nWeChat calls: import %s; steady window %s; restart %s.\n", r.importByAPI, r.steadyByAPI, orNone(r.restartByAPI))
	fmt.Fprintf(&b, "\nSteady-window API-server writes by resource: %s.\n", r.writes.String())
	for _, n := range r.notes {
		fmt.Fprintf(&b, "\nNote: %s.\n", n)
	}
	fmt.Fprintf(&b, "\nMeasured %s on %s; the run took %s.\n", r.started.UTC().Format("2006-01-02 15:04 MST"), harness.Machine(), r.finished.Sub(r.started).Round(time.Second))
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (w writes) total() float64 {
	t := 0.0
	for _, v := range w {
		t += v
	}
	return t
}

func (w writes) String() string {
	if len(w) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, w[k]))
	}
	return strings.Join(parts, ", ")
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// recordInDoc replaces (or appends) the block for this authorizer count in doc.
func recordInDoc(doc string, r *results, table string) error {
	data, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	key := fmt.Sprintf("authorizers=%d", r.authorizers)
	if len(r.shardRSS) > 0 {
		key += fmt.Sprintf(" shards=%d", len(r.shardRSS)) // a block apart from the unsharded run's
	}
	begin := fmt.Sprintf("<!-- scalebench %s -->", key)
	end := fmt.Sprintf("<!-- /scalebench %s -->", key)
	block := begin + "\n" + table + end
	s := string(data)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + block + s[j+len(end):]
	default:
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(doc, []byte(s), 0o644)
}
