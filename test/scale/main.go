/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Command scalebench measures the whole operator at scale: the real manager and webhook
// receiver processes against a local etcd + kube-apiserver and wechat-sim, with thousands of
// authorized accounts and token lifetimes compressed so that many refresh cycles fit in
// minutes. It prints a table and, with --write-doc, records it in docs/benchmarks.md.
//
//	make bench-scale                                  # 10,000 authorizers
//	make bench-scale BENCH_AUTHORIZERS=1000,10000,100000
//
// This is a benchmark, not a test: it measures and reports; it fails only if the system
// could not be set up or stopped working.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wechat-operator/wechat-operator/test/harness"
)

type options struct {
	root, dir, assets, doc string
	authorizers            []int
	components             int
	compression            float64
	cycles                 float64
	senders                []int
	pushes                 int
	writeDoc, profile      bool
	memoryLimitMiB         int
	shards                 int
	managerFlags           []string
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("scalebench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: scalebench [flags]   (normally: make bench-scale)\n\n"+
			"Runs etcd, kube-apiserver, wechat-sim, the manager and the webhook receiver as processes,\n"+
			"creates N authorized WeChatAuthorizers and measures WeChat calls per token per day,\n"+
			"expired-token-seconds, the manager's memory, a restart with fresh tokens, ticket push\n"+
			"latency, receiver throughput and API-server writes per refresh.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	authorizers := fs.String("authorizers", "10000", "comma-separated `counts` of authorizers; each runs on a fresh control plane")
	senders := fs.String("senders", "4,16", "comma-separated concurrent senders for the receiver throughput runs")
	managerFlags := fs.String("manager-flags", "", "extra manager flags, space-separated (e.g. \"--max-concurrent-reconciles=8\")")
	fs.StringVar(&o.root, "root", ".", "the repository's root `directory` (binaries are built from it)")
	fs.StringVar(&o.dir, "dir", ".bench", "`directory` for the control plane's data and the logs (relative to --root)")
	fs.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "`directory` with etcd, kube-apiserver and kubectl (default: $KUBEBUILDER_ASSETS, else bin/k8s/1.37.2)")
	fs.StringVar(&o.doc, "doc", "docs/benchmarks.md", "`file` the results are recorded in with --write-doc (relative to --root unless absolute)")
	fs.IntVar(&o.components, "components", 0, "WeChatComponents the authorizers are spread over (default: one per 1,000 authorizers, at least 1, at most 100)")
	fs.Float64Var(&o.compression, "compression", 30, "time compression: tokens live 7200s/`k`, tickets are pushed every 600s/k, and every other WeChat and operator duration scales alike")
	fs.Float64Var(&o.cycles, "cycles", 2, "length of the steady-state window, in refresh cycles")
	fs.IntVar(&o.pushes, "pushes", 3000, "ticket pushes per receiver throughput run")
	fs.IntVar(&o.memoryLimitMiB, "manager-memory-limit", 256, "container memory limit in `MiB` the manager runs as if under (config/manager sets 256Mi): GOMEMLIMIT is set to the manager's --memory-limit-fraction of it, as the manager does itself in a pod; 0 for none")
	fs.IntVar(&o.shards, "shards", 0, "run the manager as `N` shards (config/sharded): N processes with --shard=s0…, each under --manager-memory-limit; the restart restarts them all (0: one unsharded manager)")
	fs.BoolVar(&o.profile, "profile", false, "save the manager's heap profile at the end of the steady window, a CPU profile of the restarted manager's first seconds and its allocations by then, and its heap profiles when it took its Lease, when every CR was Ready and after the receiver benchmarks (in --dir; sharded, one per shard)")
	fs.BoolVar(&o.writeDoc, "write-doc", false, "record the results in --doc (replacing the block of the same authorizer count)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if o.authorizers, err = parseInts(*authorizers); err != nil {
		return nil, fmt.Errorf("--authorizers: %w", err)
	}
	if o.senders, err = parseInts(*senders); err != nil {
		return nil, fmt.Errorf("--senders: %w", err)
	}
	o.managerFlags = strings.Fields(*managerFlags)
	if o.compression < 1 || o.compression > 240 {
		return nil, errors.New("--compression must be between 1 and 240")
	}
	if o.root, err = filepath.Abs(o.root); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(o.dir) {
		o.dir = filepath.Join(o.root, o.dir)
	}
	if !filepath.IsAbs(o.doc) {
		o.doc = filepath.Join(o.root, o.doc)
	}
	if o.assets == "" {
		o.assets = filepath.Join(o.root, "bin", "k8s", "1.37.2")
	}
	return o, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func main() {
	harness.Trampoline() // etcd and kube-apiserver are started through this binary (DieWithCaller)
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scalebench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.Setenv("KUBEBUILDER_ASSETS", o.assets); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// One benchmark at a time per directory: each run starts by clearing it.
	lock, err := os.OpenFile(o.dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scalebench: another benchmark is using %s (%v)\n", o.dir, err)
		os.Exit(1)
	}
	defer lock.Close()
	for _, n := range o.authorizers {
		r, err := runOne(ctx, o, n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "\nscalebench (%d authorizers): %v\n", n, err)
			os.Exit(1)
		}
		table := r.table()
		fmt.Printf("\n%s\n", table)
		if o.writeDoc {
			if err := recordInDoc(o.doc, r, table); err != nil {
				fmt.Fprintf(os.Stderr, "scalebench: recording in %s: %v\n", o.doc, err)
				os.Exit(1)
			}
			fmt.Printf("recorded in %s\n", o.doc)
		}
	}
}

func step(format string, args ...any) {
	fmt.Printf("%s ==> %s\n", time.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
}
