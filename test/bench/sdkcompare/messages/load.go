/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// bench sends messages and checks the answers.
type bench struct {
	app      *standIn
	accounts int
	crypter  *wxcrypto.Crypter
	seq      atomic.Int64 // makes every nonce, MsgId and so every message unique
	client   *http.Client
}

func newBench(app *standIn, accounts int) *bench {
	c, err := wxcrypto.NewCrypter(token, encodingAESKey, platformAppID)
	if err != nil {
		fatal(err)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConnsPerHost = 256
	b := &bench{app: app, accounts: accounts, crypter: c, client: &http.Client{Transport: t, Timeout: 10 * time.Second}}
	b.seq.Store(1_000_000_000)
	return b
}

// request is one message as WeChat sends it to the 消息与事件接收URL.
type request struct {
	url  string
	body []byte
}

// message builds a signed, encrypted text message for a rotating account, with the query
// parameters WeChat sends in safe mode (signature, timestamp, nonce, openid, encrypt_type,
// msg_signature).
func (b *bench) message(t *target) request {
	seq := b.seq.Add(1)
	i := int(seq % int64(b.accounts))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := strconv.FormatInt(seq, 10)
	user := fmt.Sprintf("obenchuser%018d", seq%5000)
	plain := "<xml><ToUserName><![CDATA[" + originalID(i) + "]]></ToUserName><FromUserName><![CDATA[" + user +
		"]]></FromUserName><CreateTime>" + ts + "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello " +
		nonce + "]]></Content><MsgId>" + nonce + "</MsgId></xml>"
	enc, err := b.crypter.Encrypt([]byte(plain))
	if err != nil {
		fatal(err)
	}
	q := url.Values{}
	q.Set("signature", sha1Hex(token, ts, nonce))
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	q.Set("openid", user)
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", wxcrypto.Signature(token, ts, nonce, enc))
	body := "<xml><ToUserName><![CDATA[" + originalID(i) + "]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>"
	return request{url: t.url(i) + "?" + q.Encode(), body: []byte(body)}
}

// send posts one message and checks the answer: in reply mode an encrypted reply whose
// signature verifies and whose plaintext is the stand-in's reply; otherwise "success" or an
// empty body.
func (b *bench) send(r request, reply bool) error {
	resp, err := b.client.Post(r.url, "text/xml", bytes.NewReader(r.body))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %d: %.200s", resp.StatusCode, body)
	}
	if !reply {
		if len(body) != 0 && string(body) != "success" {
			return fmt.Errorf("answered %.200q, want success or nothing", body)
		}
		return nil
	}
	enc, sig := string(elem(body, "Encrypt")), string(elem(body, "MsgSignature"))
	ts, nonce := string(elem(body, "TimeStamp")), string(elem(body, "Nonce"))
	if enc == "" || sig != wxcrypto.Signature(token, ts, nonce, enc) {
		return fmt.Errorf("the reply is not a signed envelope: %.300s", body)
	}
	plain, err := b.crypter.Decrypt(enc)
	if err != nil {
		return fmt.Errorf("the reply does not decrypt: %w", err)
	}
	if !bytes.Contains(plain, []byte("<Content><![CDATA[pong]]></Content>")) {
		return fmt.Errorf("the reply is not the app's: %.300s", plain)
	}
	return nil
}

// check sends one message in each mode before the measurement.
func (b *bench) check(t *target) error {
	for _, reply := range []bool{false, true} {
		b.app.reply.Store(reply)
		before := b.app.hits.Load()
		if err := b.send(b.message(t), reply); err != nil {
			return fmt.Errorf("%s (%s): %w", t.name, modeName(reply), err)
		}
		if b.app.hits.Load() != before+1 {
			return fmt.Errorf("%s (%s): the message did not reach the app", t.name, modeName(reply))
		}
	}
	return nil
}

type cellKey struct {
	reply   bool
	senders int
	server  string
}

// cell is one server at one concurrency for one round.
type cell struct {
	messages  int
	wall      time.Duration
	cpu       time.Duration
	latencies []time.Duration
}

func (c cell) rate() float64 { return float64(c.messages) / c.wall.Seconds() }
func (c cell) cpuPerMessage() float64 {
	return c.cpu.Seconds() / float64(c.messages) * 1e6
}

// runCell sends n messages (built beforehand) to t from senders goroutines.
func (b *bench) runCell(t *target, senders, n int, reply bool) (cell, error) {
	reqs := make([]request, n)
	for i := range reqs {
		reqs[i] = b.message(t)
	}
	hits := b.app.hits.Load()
	cpu0, err := t.proc.CPU()
	if err != nil {
		return cell{}, err
	}
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				err := b.send(reqs[i], reply)
				lat[i] = time.Since(t0)
				if err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	cpu1, err := t.proc.CPU()
	if err != nil {
		return cell{}, err
	}
	if firstErr != nil {
		return cell{}, firstErr
	}
	if got := b.app.hits.Load() - hits; got != int64(n) {
		return cell{}, fmt.Errorf("%d of %d messages reached the app", got, n)
	}
	return cell{messages: n, wall: wall, cpu: cpu1 - cpu0, latencies: lat}, nil
}

// soak sends total messages to t, generating them as it goes, and samples the process's
// memory ten times.
func (b *bench) soak(t *target, metricsURL string, total, senders int) (string, error) {
	var out strings.Builder
	fmt.Fprintf(&out, "Memory over %d messages to the receiver (%d senders, app answers at once)\n\n", total, senders)
	out.WriteString("| messages | elapsed | msg/s | RSS MiB | Go heap in use MiB | CPU µs/msg (since last) |\n|---:|---:|---:|---:|---:|---:|\n")
	var sent atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	last, lastT := int64(0), start
	cpuLast, _ := t.proc.CPU()
	sample := func() error {
		n := sent.Load()
		m, err := t.proc.Memory()
		if err != nil {
			return err
		}
		heap, err := metricValue(metricsURL, "go_memstats_heap_inuse_bytes")
		if err != nil {
			return err
		}
		cpu, _ := t.proc.CPU()
		now := time.Now()
		perMsg := 0.0
		if n > last {
			perMsg = (cpu - cpuLast).Seconds() / float64(n-last) * 1e6
		}
		fmt.Fprintf(&out, "| %d | %s | %.0f | %.1f | %.1f | %.0f |\n", n, now.Sub(start).Round(time.Second),
			float64(n-last)/now.Sub(lastT).Seconds(), float64(m.RSS)/(1<<20), heap/(1<<20), perMsg)
		step("soak: %d messages, RSS %.1f MiB, heap %.1f MiB", n, float64(m.RSS)/(1<<20), heap/(1<<20))
		last, lastT, cpuLast = n, now, cpu
		return nil
	}
	if err := sample(); err != nil {
		return "", err
	}
	every := int64(total / 10)
	var wg sync.WaitGroup
	sampled := make(chan struct{}, 16)
	for range senders {
		wg.Go(func() {
			for {
				i := sent.Add(1)
				if i > int64(total) {
					sent.Add(-1)
					return
				}
				if err := b.send(b.message(t), false); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				if i%every == 0 {
					sampled <- struct{}{}
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-sampled:
			if err := sample(); err != nil {
				return "", err
			}
		case <-done:
			if firstErr != nil {
				return "", firstErr
			}
			if sent.Load() != last {
				if err := sample(); err != nil {
					return "", err
				}
			}
			return out.String(), nil
		}
	}
}

func modeName(reply bool) string {
	if reply {
		return "reply"
	}
	return "ack"
}

// percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
