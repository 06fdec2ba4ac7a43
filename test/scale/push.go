/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// throughput is one receiver load run.
type throughput struct {
	senders  int
	pushes   int
	elapsed  time.Duration
	p50, p99 time.Duration
}

// receiverThroughput sends valid, signed and encrypted ticket pushes to the receiver
// process from several senders at once. Each carries a newer ticket than the last, so each
// is verified, decrypted and written to status before the receiver answers success.
func (r *run) receiverThroughput(ctx context.Context) error {
	crypters := make([]*wxcrypto.Crypter, r.comps)
	for i := range r.comps {
		c, err := wxcrypto.NewCrypter(verifyToken, encodingAESKey, componentAppID(i))
		if err != nil {
			return err
		}
		crypters[i] = c
	}
	// Newer than any ticket the simulator pushed so far, and each push newer than the last.
	base := time.Now().Unix() + 1
	seq := 0
	for _, senders := range r.o.senders {
		step("receiver throughput: %d ticket pushes from %d concurrent senders", r.o.pushes, senders)
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
		jobs := make(chan int)
		var mu sync.Mutex
		var latencies []time.Duration
		failures := map[string]int{}
		var wg sync.WaitGroup
		start := time.Now()
		for range senders {
			wg.Go(func() {
				for s := range jobs {
					comp := s % r.comps
					ts := strconv.FormatInt(time.Now().Unix(), 10)
					nonce := "n" + strconv.Itoa(s)
					msg := fmt.Sprintf("<xml><AppId><![CDATA[%s]]></AppId><CreateTime>%d</CreateTime>"+
						"<InfoType><![CDATA[component_verify_ticket]]></InfoType>"+
						"<ComponentVerifyTicket><![CDATA[bench-ticket-%d]]></ComponentVerifyTicket></xml>",
						componentAppID(comp), base+int64(s), s)
					body, sig, err := crypters[comp].SealPush([]byte(msg), ts, nonce)
					if err != nil {
						panic(err)
					}
					q := url.Values{"timestamp": {ts}, "nonce": {nonce}, "msg_signature": {sig}, "encrypt_type": {"aes"}}
					t0 := time.Now()
					resp, err := hc.Post(r.recv.EventsURL(namespace, componentName(comp))+"?"+q.Encode(), "text/xml", bytes.NewReader(body))
					elapsed := time.Since(t0)
					outcome := "ok"
					if err != nil {
						outcome = err.Error()
					} else {
						answer, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK || string(answer) != "success" {
							outcome = resp.Status
						}
					}
					mu.Lock()
					latencies = append(latencies, elapsed)
					if outcome != "ok" {
						failures[outcome]++
					}
					mu.Unlock()
				}
			})
		}
		for range r.o.pushes {
			select {
			case jobs <- seq:
			case <-ctx.Done():
			}
			seq++
		}
		close(jobs)
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(failures) > 0 {
			return fmt.Errorf("of %d pushes, these were not answered success: %v", r.o.pushes, failures)
		}
		slices.Sort(latencies)
		r.res.throughput = append(r.res.throughput, throughput{senders: senders, pushes: r.o.pushes, elapsed: time.Since(start),
			p50: percentile(latencies, 0.50), p99: percentile(latencies, 0.99)})
	}
	// The restarted manager has run for a while now, refreshing, with none of the import's
	// Events in its recorder's cache (client-go keeps each for 6 to 12 minutes).
	if err := r.heapProfiles(ctx, "heap-after-pushes"); err != nil {
		return err
	}
	for _, m := range r.mems {
		r.res.restartedRSS = max(r.res.restartedRSS, m.meanSince(0))
		r.res.restartedPeakRSS = max(r.res.restartedPeakRSS, m.peakRSS())
	}
	return nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}
