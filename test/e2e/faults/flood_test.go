/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package faults

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
	"github.com/wechat-operator/wechat-operator/test/harness"
)

const (
	floodWorkers   = 4
	floodPerWorker = 300
	validPushes    = 4
	// floodMemoryCap bounds a receiver's peak resident memory through the flood.
	floodMemoryCap = 128 << 20
)

// forgery is one kind of bad push and the status the receiver must answer it with.
type forgery struct {
	name string
	want int
	make func(t *tenant, replay capturedPush) (query string, body []byte)
}

var forgeries = []forgery{
	{"bad signature", http.StatusForbidden, func(t *tenant, _ capturedPush) (string, []byte) {
		q, body := sealPush(t, forgedTicket(t), time.Now(), "")
		v, _ := url.ParseQuery(q)
		v.Set("msg_signature", randomHex(20))
		return v.Encode(), body
	}},
	{"bad padding", http.StatusBadRequest, func(t *tenant, _ capturedPush) (string, []byte) {
		return signedEnvelope(t, encryptWithBadPadding(t, forgedTicket(t)))
	}},
	{"bad ciphertext", http.StatusBadRequest, func(t *tenant, _ capturedPush) (string, []byte) {
		junk := make([]byte, 33)
		_, _ = rand.Read(junk)
		return signedEnvelope(t, base64.StdEncoding.EncodeToString(junk))
	}},
	{"stale timestamp", http.StatusBadRequest, func(t *tenant, _ capturedPush) (string, []byte) {
		return sealPush(t, forgedTicket(t), time.Now().Add(-10*time.Minute), "")
	}},
	{"replay with a new timestamp", http.StatusForbidden, func(_ *tenant, p capturedPush) (string, []byte) {
		v, _ := url.ParseQuery(p.query)
		ts, _ := strconv.ParseInt(v.Get("timestamp"), 10, 64)
		v.Set("timestamp", strconv.FormatInt(ts+7, 10))
		return v.Encode(), p.body
	}},
	{"oversized body", http.StatusRequestEntityTooLarge, func(t *tenant, _ capturedPush) (string, []byte) {
		return sealPush(t, append(forgedTicket(t), bytes.Repeat([]byte(" "), 80<<10)...), time.Now(), "")
	}},
	// WeChat's own retry of a push already applied: answered success, applied once.
	{"exact replay", http.StatusOK, func(_ *tenant, p capturedPush) (string, []byte) { return p.query, p.body }},
}

// flood sends floodWorkers×floodPerWorker forged pushes to the receivers while the
// simulator delivers validPushes real tickets through the tap.
func flood(t *tenant, tp *tap, receivers []*harness.Receiver) {
	GinkgoHelper()
	By("a valid push to replay")
	tp.setCapture(true)
	Expect(t.s.sim.PushTicket(ctx, t.componentAppID)).To(Succeed())
	captured := tp.takeCaptured()
	tp.setCapture(false)
	Expect(captured).To(HaveLen(1))
	replay := captured[0]
	Expect(tp.deliver(replay, receivers...)).To(Equal([]int{http.StatusOK, http.StatusOK}))

	var before []harness.Memory
	for _, r := range receivers {
		m, err := r.Memory()
		Expect(err).NotTo(HaveOccurred())
		before = append(before, m)
	}
	start := time.Now()

	By("forged pushes from several goroutines, valid tickets meanwhile")
	var mu sync.Mutex
	got := map[string]map[int]int{}
	var wg sync.WaitGroup
	for w := range floodWorkers {
		wg.Go(func() {
			defer GinkgoRecover()
			for i := range floodPerWorker {
				f := forgeries[(w+i)%len(forgeries)]
				r := receivers[i%len(receivers)]
				q, body := f.make(t, replay)
				status, _ := post(r.EventsURL(t.ns, t.component)+"?"+q, body)
				mu.Lock()
				if got[f.name] == nil {
					got[f.name] = map[int]int{}
				}
				got[f.name][status]++
				mu.Unlock()
			}
		})
	}
	for range validPushes {
		second := time.Now().Unix()
		Eventually(func() int64 { return time.Now().Unix() }).WithTimeout(2 * time.Second).WithPolling(20 * time.Millisecond).Should(BeNumerically(">", second))
		Expect(t.s.sim.PushTicket(ctx, t.componentAppID)).To(Succeed(), "a valid push was not answered success")
		Expect(tp.lastAnswers()).To(Equal([]int{http.StatusOK, http.StatusOK}))
		pushes, err := t.s.sim.Pushes(ctx)
		Expect(err).NotTo(HaveOccurred())
		last := pushes[len(pushes)-1]
		Expect(last.Attempts).To(Equal(1), "a valid push needed a retry during the flood")
		Expect(t.getComponent().Status.VerifyTicket.CreateTime.Unix()).To(Equal(last.CreateTime.Unix()), "a valid ticket was not recorded")
	}
	wg.Wait()
	elapsed := time.Since(start)

	By("every forged push rejected with its 4xx, replays answered without effect, the receivers fine")
	for _, f := range forgeries {
		Expect(got[f.name]).To(HaveKey(f.want), "%s got statuses %v, want only %d", f.name, got[f.name], f.want)
		Expect(got[f.name]).To(HaveLen(1), "%s got statuses %v, want only %d", f.name, got[f.name], f.want)
	}
	var created []time.Time
	for _, o := range t.hist.find("WeChatComponent", start, func(o observation) bool { return !o.ticketCreated.IsZero() }) {
		created = append(created, o.ticketCreated)
	}
	for i := 1; i < len(created); i++ {
		Expect(created[i]).NotTo(BeTemporally("<", created[i-1]), "status.verifyTicket went back to an older ticket")
	}
	for i, r := range receivers {
		Expect(r.Exited()).To(BeFalse())
		Expect(harness.WaitHTTP(ctx, r.Process, r.ReadyURL, 5*time.Second)).To(Succeed())
		m, err := r.Memory()
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("%s: %d pushes in %s; RSS %d MiB -> %d MiB, peak %d MiB\n", r.Name, floodWorkers*floodPerWorker/len(receivers),
			elapsed.Round(time.Millisecond), before[i].RSS>>20, m.RSS>>20, m.Peak>>20)
		Expect(m.Peak).To(BeNumerically("<", floodMemoryCap), "%s peaked at %d MiB", r.Name, m.Peak>>20)
	}
}

// forgedTicket is a ticket push WeChat never sent.
func forgedTicket(t *tenant) []byte {
	return wxcrypto.TicketPush{AppID: t.componentAppID, Created: time.Now().Unix(), Ticket: "ticket@@@forged-" + randomHex(8)}.XML()
}

// encryptWithBadPadding encrypts msg as WXBizMsgCrypt does, but ends it with invalid PKCS#7
// padding (a zero byte), and returns the base64 ciphertext.
func encryptWithBadPadding(t *tenant, msg []byte) string {
	GinkgoHelper()
	key, err := base64.StdEncoding.DecodeString(t.encodingAESKey + "=")
	Expect(err).NotTo(HaveOccurred())
	plain := make([]byte, 16, 16+4+len(msg)+len(t.componentAppID)+64)
	_, _ = rand.Read(plain)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(msg)))
	plain = append(plain, msg...)
	plain = append(plain, t.componentAppID...)
	pad := 32 - len(plain)%32
	plain = append(plain, bytes.Repeat([]byte{0}, pad)...)
	block, err := aes.NewCipher(key)
	Expect(err).NotTo(HaveOccurred())
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out)
}

// signedEnvelope wraps an Encrypt value in the push envelope with a correct msg_signature.
func signedEnvelope(t *tenant, encrypt string) (string, []byte) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := strconv.FormatInt(time.Now().UnixNano()%1_000_000_000+1_000_000_000, 10)
	body := []byte("<xml><AppId><![CDATA[" + t.componentAppID + "]]></AppId><Encrypt><![CDATA[" + encrypt + "]]></Encrypt></xml>")
	sig := wxcrypto.Signature(t.verifyToken, ts, nonce, encrypt)
	return url.Values{"timestamp": {ts}, "nonce": {nonce}, "encrypt_type": {"aes"}, "msg_signature": {sig}}.Encode(), body
}
