/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Command messagebench benchmarks the 消息与事件接收URL (docs/benchmarks.md, "Message path"):
// the real webhook-receiver binary with its real configuration (informer cache on a local
// kube-apiserver + etcd, the keyring Secret, 1,000 WeChatAuthorizers bound to their original
// ids, forwarding to an app stand-in), github.com/silenceper/wechat/v2's message server doing
// the same work, and the floor (the same HTTP round trips with the crypto alone), in one run,
// interleaved, so that all three see the same machine load. Signed and encrypted messages for
// the accounts come from N concurrent senders; the app stand-in answers at once, empty
// ("ack") or with a passive reply the server must encrypt and sign ("reply"). Every answer is
// checked (a reply is verified and decrypted), and every message must reach the stand-in.
//
// CPU per message is the server process's utime+stime (/proc/<pid>/stat) over the messages
// it answered: the figure other load on the machine does not change. It prints figures; it
// passes or fails only on correctness.
//
// Run it with `make bench-messages`; --soak 1000000 adds the memory run.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wechat-operator/wechat-operator/test/harness"
)

type options struct {
	root, doc, logDir string
	receiverBin       string
	accounts, rounds  int
	messages          int
	concurrency       []int
	soak              int
	writeDoc          bool
}

func main() {
	var o options
	var sf serveFlags
	var conc string
	flag.StringVar(&o.root, "root", ".", "the repository's root directory")
	flag.StringVar(&o.doc, "doc", "docs/benchmarks.md", "file the results are recorded in with --write-doc (relative to --root unless absolute)")
	flag.StringVar(&o.receiverBin, "receiver-bin", "", "a webhook-receiver binary to measure instead of building --root's (before/after comparisons)")
	flag.StringVar(&o.logDir, "log-dir", "", "directory for the processes' logs and the control plane (a temporary one if empty)")
	flag.IntVar(&o.accounts, "accounts", 1000, "authorized accounts (WeChatAuthorizers) the messages are spread over")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every server at every concurrency, in rotating order")
	flag.IntVar(&o.messages, "messages", 3000, "messages per server, concurrency and round (half that with one sender)")
	flag.StringVar(&conc, "concurrency", "1,16,64", "comma-separated numbers of concurrent senders")
	flag.IntVar(&o.soak, "soak", 0, "after the table, send this many messages to the receiver from 16 senders and sample its memory (e.g. 1000000)")
	flag.BoolVar(&o.writeDoc, "write-doc", false, "record the results in --doc")
	flag.StringVar(&sf.mode, "serve", "", "internal: serve as the sdk or floor server")
	flag.StringVar(&sf.listen, "listen", "", "internal: --serve's address")
	flag.StringVar(&sf.forwardURL, "forward-url", "", "internal: --serve's app stand-in")
	flag.IntVar(&sf.accounts, "accounts-bound", 1000, "internal: --serve's accounts")
	flag.Parse()
	if sf.mode != "" {
		if err := serve(sf); err != nil {
			fatal(err)
		}
		return
	}
	for _, c := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			fatal(fmt.Errorf("--concurrency %q", conc))
		}
		o.concurrency = append(o.concurrency, n)
	}
	if err := run(o); err != nil {
		fatal(err)
	}
}

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(o options) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	dir := o.logDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "messagebench-"); err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(dir) }()
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	recvBin := o.receiverBin
	if recvBin == "" {
		step("building webhook-receiver from %s", root)
		recvBin = filepath.Join(dir, "webhook-receiver")
		if err := buildReceiver(ctx, root, recvBin); err != nil {
			return err
		}
	}
	app, err := startStandIn()
	if err != nil {
		return err
	}
	step("starting kube-apiserver and etcd")
	cp, err := harness.StartControlPlane(ctx, harness.ControlPlaneOptions{Root: root, Dir: filepath.Join(dir, "cp")})
	if err != nil {
		return err
	}
	defer func() { _ = cp.Stop() }()
	step("creating the component, the keyring and %d WeChatAuthorizers", o.accounts)
	if err := seed(ctx, cp, o.accounts, app.URL); err != nil {
		return err
	}
	step("starting the webhook receiver, the SDK server and the floor")
	recv, err := harness.StartReceiver(ctx, recvBin, "webhook-receiver", cp, "--forward-allowed-hosts", "127.0.0.1")
	if err != nil {
		return err
	}
	defer recv.Stop(5 * time.Second)
	step("receiver metrics at %s", recv.MetricsURL)
	targets := []*target{{name: "receiver", proc: recv.Process, url: func(i int) string {
		return recv.URL + "/wechat/" + benchNamespace + "/" + componentName + "/messages/" + accountAppID(i)
	}}}
	for _, mode := range []string{"sdk", "floor"} {
		t, err := startServe(self, mode, cp.LogDir, app.URL, o.accounts)
		if err != nil {
			return err
		}
		defer t.proc.Stop(5 * time.Second)
		if err := waitListening(ctx, t); err != nil {
			return err
		}
		targets = append(targets, t)
	}

	b := newBench(app, o.accounts)
	for _, t := range targets {
		if err := b.check(t); err != nil {
			return err
		}
	}
	results := map[cellKey][]cell{}
	for round := range o.rounds {
		for _, reply := range []bool{false, true} {
			app.reply.Store(reply)
			for _, c := range o.concurrency {
				n := o.messages
				if c == 1 {
					n /= 2
				}
				for k := range targets {
					t := targets[(k+round)%len(targets)]
					res, err := b.runCell(t, c, n, reply)
					if err != nil {
						return fmt.Errorf("%s, %d senders: %w", t.name, c, err)
					}
					key := cellKey{reply: reply, senders: c, server: t.name}
					results[key] = append(results[key], res)
				}
			}
			step("round %d/%d, %s: done", round+1, o.rounds, modeName(reply))
		}
	}
	mem := map[string]harness.Memory{}
	for _, t := range targets {
		m, err := t.proc.Memory()
		if err != nil {
			return err
		}
		mem[t.name] = m
	}
	heap, _ := metricValue(recv.MetricsURL, "go_memstats_heap_inuse_bytes")
	report := formatReport(o, results, targets, mem, heap)
	fmt.Print(report)

	var soak string
	if o.soak > 0 {
		app.reply.Store(false)
		step("soak: %d messages to the receiver from 16 senders", o.soak)
		if soak, err = b.soak(targets[0], recv.MetricsURL, o.soak, 16); err != nil {
			return err
		}
		fmt.Print(soak)
	}
	if o.writeDoc {
		path := o.doc
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		if err := writeDoc(path, "messagebench", report); err != nil {
			return err
		}
		if soak != "" {
			if err := writeDoc(path, "messagebench soak", soak); err != nil {
				return err
			}
		}
		step("recorded in %s", path)
	}
	return nil
}

// waitListening waits until a --serve process accepts connections.
func waitListening(ctx context.Context, t *target) error {
	addr := strings.TrimPrefix(t.url(0), "http://")
	addr = addr[:strings.IndexByte(addr, '/')]
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if t.proc.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s does not listen on %s: %v\n%s", t.name, addr, err, t.proc.Tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
