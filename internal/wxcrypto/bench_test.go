/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxcrypto

import "testing"

// The side-by-side comparison with github.com/silenceper/wechat/v2 and the cost floor lives in
// test/bench/sdkcompare/crypto, in a module of its own (run hack/bench-crypto.sh); these benchmarks
// break the receiver's path into its parts.

// BenchmarkOpenPushTicket is the receiver's whole per-push work for a realistic ticket push:
// envelope scan, signature verification, decryption and push parsing.
func BenchmarkOpenPushTicket(b *testing.B) {
	c, body, ts, nonce, sig := realisticTicket(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := c.OpenPush(body, ts, nonce, sig)
		if err != nil || p.InfoType() != InfoTypeComponentVerifyTicket {
			b.Fatal(p, err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	c, body, ts, nonce, sig := realisticTicket(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Open(body, ts, nonce, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySignature(b *testing.B) {
	c, body, ts, nonce, sig := realisticTicket(b)
	env, err := ParseEnvelope(body)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.VerifySignature(ts, nonce, env.Encrypt, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	_, body, _, _, _ := realisticTicket(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEnvelope(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePushTicket(b *testing.B) {
	c, body, ts, nonce, sig := realisticTicket(b)
	msg, err := c.Open(body, ts, nonce, sig)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePush(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealPushTicket(b *testing.B) {
	c, _, _, _, _ := realisticTicket(b)
	msg := TicketPush{AppID: c.AppID(), Created: 1700000000, Ticket: "ticket@@@lEHjxBH2ZvYxx4Yri-fGG5gNVT3U6xwjVK1SdPQCGl4hXWKRqjZ5JB5s8WxVJlKqxDY3KhFP9xJqeCjvRVUPpQ"}.XML()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.SealPush(msg, "1700000000", "1580325711"); err != nil {
			b.Fatal(err)
		}
	}
}
