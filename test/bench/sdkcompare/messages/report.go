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

// formatReport is the table: per mode, senders and server the median rate and CPU per
// message over the rounds, the latency percentiles over all of them, and the ratios.
func formatReport(o options, results map[cellKey][]cell, targets []*target, mem map[string]harness.Memory, heap float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s; %s\n\n", harness.Machine(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "%d accounts, %d rounds of %d messages per server and concurrency (half with 1 sender), servers interleaved.\n"+
		"ack: the app answers at once with an empty body; reply: with a passive reply the server encrypts and signs.\n"+
		"CPU is the server process's (utime+stime); msg/s and CPU are medians over the rounds, latencies over all messages.\n\n",
		o.accounts, o.rounds, o.messages)
	b.WriteString("| app | senders | server | msg/s | p50 ms | p99 ms | max ms | CPU µs/msg | SDK ÷ receiver (CPU) | receiver ÷ floor (CPU) |\n")
	b.WriteString("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, reply := range []bool{false, true} {
		for _, c := range o.concurrency {
			cpu := map[string]float64{}
			for _, t := range targets {
				cells := results[cellKey{reply: reply, senders: c, server: t.name}]
				var rates, cpus []float64
				var lat []time.Duration
				for _, x := range cells {
					rates = append(rates, x.rate())
					cpus = append(cpus, x.cpuPerMessage())
					lat = append(lat, x.latencies...)
				}
				if len(cells) == 0 {
					continue
				}
				slices.Sort(lat)
				cpu[t.name] = median(cpus)
				ratios := "| | |"
				if t.name == "receiver" {
					ratios = "| — | — |"
				}
				fmt.Fprintf(&b, "| %s | %d | %s | %.0f | %.2f | %.2f | %.1f | %.0f %s\n", modeName(reply), c, t.name,
					median(rates), ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1]), cpu[t.name], ratios)
			}
			fmt.Fprintf(&b, "| %s | %d | **ratio** | | | | | | **%.2f×** | **%.2f×** |\n", modeName(reply), c,
				cpu["sdk"]/cpu["receiver"], cpu["receiver"]/cpu["floor"])
		}
	}
	b.WriteString("\nMemory after the run (RSS now / peak):")
	for _, t := range targets {
		m := mem[t.name]
		fmt.Fprintf(&b, " %s %.1f / %.1f MiB;", t.name, float64(m.RSS)/(1<<20), float64(m.Peak)/(1<<20))
	}
	fmt.Fprintf(&b, " receiver Go heap in use %.1f MiB.\n", heap/(1<<20))
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeDoc replaces the block between <!-- tag --> and <!-- /tag --> in path with text, or
// appends it to the "Message path" section's results when it is not there yet.
func writeDoc(path, tag, text string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(data)
	open, close := "<!-- "+tag+" -->", "<!-- /"+tag+" -->"
	block := open + "\n" + strings.TrimRight(text, "\n") + "\n" + close
	i, j := strings.Index(doc, open), strings.Index(doc, close)
	switch {
	case i >= 0 && j > i:
		doc = doc[:i] + block + doc[j+len(close):]
	default:
		doc = strings.TrimRight(doc, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
