/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package cryptocompare

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"

	"github.com/silenceper/wechat/v2/officialaccount/message"
	"github.com/silenceper/wechat/v2/util"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

const (
	token          = "wechatoperatortoken2026"
	encodingAESKey = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx"
	appID          = "wx3f8d3c2f4c2e6a1b"
	timestamp      = "1700000000"
	nonce          = "1580325711"
	ticket         = "ticket@@@lEHjxBH2ZvYxx4Yri-fGG5gNVT3U6xwjVK1SdPQCGl4hXWKRqjZ5JB5s8WxVJlKqxDY3KhFP9xJqeCjvRVUPpQ"
)

// push is a ticket push as WeChat sends it: the plaintext message, the envelope body and the
// msg_signature of the query string.
type push struct {
	msg  []byte
	body []byte
	sig  string
}

func realisticPush(tb testing.TB) push {
	tb.Helper()
	c, err := wxcrypto.NewCrypter(token, encodingAESKey, appID)
	if err != nil {
		tb.Fatal(err)
	}
	c.SetRand(bytes.NewReader([]byte("0123456789abcdef")))
	msg := []byte("<xml><AppId><![CDATA[" + appID + "]]></AppId>\n<CreateTime>1700000000</CreateTime>\n" +
		"<InfoType><![CDATA[component_verify_ticket]]></InfoType>\n" +
		"<ComponentVerifyTicket><![CDATA[" + ticket + "]]></ComponentVerifyTicket>\n</xml>")
	enc, err := c.Encrypt(msg)
	if err != nil {
		tb.Fatal(err)
	}
	body := []byte("<xml>\n    <AppId><![CDATA[" + appID + "]]></AppId>\n    <Encrypt><![CDATA[" + enc + "]]></Encrypt>\n</xml>\n")
	return push{msg: msg, body: body, sig: wxcrypto.Signature(token, timestamp, nonce, enc)}
}

// ours is the receiver's whole per-push work with this project's package.
func ours(c *wxcrypto.Crypter, p push) (string, error) {
	pp, err := c.OpenPush(p.body, timestamp, nonce, p.sig)
	if err != nil {
		return "", err
	}
	tp, ok := pp.(wxcrypto.TicketPush)
	if !ok {
		return "", errors.New("not a ticket push")
	}
	return tp.Ticket, nil
}

// silenceper does what silenceper/wechat v2.1.10's officialaccount/server does with a push.
func silenceper(p push) (string, error) {
	var env message.EncryptedXMLMsg
	if err := xml.NewDecoder(bytes.NewReader(p.body)).Decode(&env); err != nil {
		return "", err
	}
	if util.Signature(token, timestamp, nonce, env.EncryptedMsg) != p.sig {
		return "", errors.New("bad signature")
	}
	_, raw, err := util.DecryptMsg(appID, env.EncryptedMsg, encodingAESKey)
	if err != nil {
		return "", err
	}
	var m message.MixMessage
	if err := xml.Unmarshal(raw, &m); err != nil {
		return "", err
	}
	if m.InfoType != message.InfoTypeVerifyTicket {
		return "", errors.New("not a ticket push")
	}
	return m.ComponentVerifyTicket, nil
}

// floorState holds what any receiver may prepare once: the expanded AES key.
type floorState struct {
	key   []byte
	block cipher.Block
}

// floor is the cost floor: the signature hash, base64 and AES-CBC, no XML, no checks beyond
// the signature compare. enc is the Encrypt value, already extracted.
func floor(s *floorState, enc string, sig string) ([]byte, error) {
	parts := []string{token, timestamp, nonce, enc}
	sort.Strings(parts)
	h := sha1.New()
	for _, part := range parts {
		h.Write([]byte(part))
	}
	var sum [sha1.Size]byte
	var want [2 * sha1.Size]byte
	hex.Encode(want[:], h.Sum(sum[:0]))
	if subtle.ConstantTimeCompare(want[:], []byte(sig)) != 1 {
		return nil, errors.New("bad signature")
	}
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(buf, []byte(enc))
	if err != nil {
		return nil, err
	}
	cipher.NewCBCDecrypter(s.block, s.key[:16]).CryptBlocks(buf[:n], buf[:n])
	return buf[:n], nil
}

func newFloor(tb testing.TB) *floorState {
	key, err := wxcrypto.ParseEncodingAESKey(encodingAESKey)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		tb.Fatal(err)
	}
	return &floorState{key: key, block: block}
}

// TestSameResult makes sure the three measure the same successful work.
func TestSameResult(t *testing.T) {
	p := realisticPush(t)
	c, err := wxcrypto.NewCrypter(token, encodingAESKey, appID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ours(c, p)
	if err != nil || got != ticket {
		t.Fatalf("wxcrypto: %q, %v", got, err)
	}
	got, err = silenceper(p)
	if err != nil || got != ticket {
		t.Fatalf("silenceper: %q, %v", got, err)
	}
	env, err := wxcrypto.ParseEnvelope(p.body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := floor(newFloor(t), env.Encrypt, p.sig)
	if err != nil || !bytes.Contains(plain, p.msg) {
		t.Fatalf("floor: %v", err)
	}
	// Both reject a wrong signature.
	bad := p
	bad.sig = "0000000000000000000000000000000000000000"
	if _, err := ours(c, bad); err == nil {
		t.Fatal("wxcrypto accepted a bad signature")
	}
	if _, err := silenceper(bad); err == nil {
		t.Fatal("silenceper accepted a bad signature")
	}
}

// BenchmarkTicketPush runs the three side by side; hack/bench-crypto.sh prints the ratios.
// BENCH_ROUNDS=n (default 1) repeats the trio n times as round=1..n, so that the three are
// interleaved in time and a change in machine load hits them alike (-count would run all
// rounds of one before the next).
func BenchmarkTicketPush(b *testing.B) {
	p := realisticPush(b)
	rounds := 1
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_ROUNDS=%q is not a positive integer", v)
		}
		rounds = n
	}
	c, err := wxcrypto.NewCrypter(token, encodingAESKey, appID)
	if err != nil {
		b.Fatal(err)
	}
	s := newFloor(b)
	env, err := wxcrypto.ParseEnvelope(p.body)
	if err != nil {
		b.Fatal(err)
	}
	impls := []struct {
		name string
		run  func() error
	}{
		{"wxcrypto", func() error { _, err := ours(c, p); return err }},
		{"silenceper", func() error { _, err := silenceper(p); return err }},
		{"floor", func() error { _, err := floor(s, env.Encrypt, p.sig); return err }},
	}
	for r := 1; r <= rounds; r++ {
		for _, impl := range impls {
			name := "impl=" + impl.name
			if rounds > 1 {
				name = fmt.Sprintf("round=%d/%s", r, name)
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := impl.run(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
