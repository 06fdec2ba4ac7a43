/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// pushEvent seals msg as WeChat seals a push to the 授权事件接收URL and returns its query and body.
func (e *msgEnv) pushEvent(msg []byte, timestamp, nonce string) (string, []byte) {
	e.t.Helper()
	c, err := wxcrypto.NewCrypter(tToken, tAESKey, tComponentAppID)
	if err != nil {
		e.t.Fatal(err)
	}
	body, sig, err := c.SealPush(msg, timestamp, nonce)
	if err != nil {
		e.t.Fatal(err)
	}
	return url.Values{"timestamp": {timestamp}, "nonce": {nonce}, "msg_signature": {sig}}.Encode(), body
}

const eventsPath = "/wechat/" + tNamespace + "/" + tComponent + "/events"

func (e *msgEnv) pushes(infoType, result string) float64 {
	return counterValue(e.metrics.Pushes.WithLabelValues(infoType, result))
}

func (e *msgEnv) authorizedPush(code string) []byte {
	return wxcrypto.AuthorizedPush{AppID: tComponentAppID, Created: e.clock.Now().Unix(), Type: wxcrypto.InfoTypeAuthorized,
		AuthorizerAppID: tAccountAppID, AuthorizationCode: code, AuthorizationCodeExpiredTime: e.clock.Now().Add(time.Hour).Unix()}.XML()
}

func upperSignature(query string) string {
	q, _ := url.ParseQuery(query)
	q.Set("msg_signature", strings.ToUpper(q.Get("msg_signature")))
	return q.Encode()
}

// --- item 2: the replay cache keys on a canonical form ------------------------------------

func TestAReplayInUpperCaseDoesNotReRecordAUsedCode(t *testing.T) {
	e := newMsgEnv(t)
	e.addAccount("shop", tAccountAppID, tAccountUser, nil)
	ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
	query, body := e.pushEvent(e.authorizedPush("queryauthcode@@@used-once"), ts, "4242")
	if got := e.post(eventsPath, query, body); got.code != 200 || got.body != "success" {
		t.Fatalf("HTTP %d %q", got.code, got.body)
	}
	// The controller exchanges the code and clears it.
	a := &wechatv1alpha1.WeChatAuthorizer{}
	if err := e.client.Get(context.Background(), types.NamespacedName{Namespace: tNamespace, Name: "shop"}, a); err != nil {
		t.Fatal(err)
	}
	if a.Status.AuthorizationCode == nil || a.Status.AuthorizationCode.Code != "queryauthcode@@@used-once" {
		t.Fatalf("the push was not recorded: %+v", a.Status.AuthorizationCode)
	}
	a.Status.AuthorizationCode = nil
	if err := e.client.Status().Update(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if got := e.post(eventsPath, upperSignature(query), body); got.code != 200 {
		t.Fatalf("the replay got HTTP %d", got.code)
	}
	if err := e.client.Get(context.Background(), client.ObjectKeyFromObject(a), a); err != nil {
		t.Fatal(err)
	}
	if a.Status.AuthorizationCode != nil {
		t.Fatal("the replayed push recorded the used code again: one more api_query_auth")
	}
	if got := e.pushes(wxcrypto.InfoTypeAuthorized, resultDuplicate); got != 1 {
		t.Fatalf("duplicates = %v, want 1", got)
	}
}

func TestAMessageReplayedInUpperCaseOrWithSwappedNonceIsNotForwardedAgain(t *testing.T) {
	a := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, "success") })
	e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: a.srv.URL}))
	e.addAccount("shop", tAccountAppID, tAccountUser, nil)
	c, _ := wxcrypto.NewCrypter(tToken, tAESKey, tComponentAppID)
	enc, _ := c.Encrypt(wxMessage(tAccountUser, "text", "hello"))
	body := []byte("<xml><ToUserName><![CDATA[" + tAccountUser + "]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
	// A nonce that is also a timestamp inside the window: the signature sorts its inputs, so
	// the two can be swapped and it still verifies.
	ts, nonce := strconv.FormatInt(e.clock.Now().Unix(), 10), strconv.FormatInt(e.clock.Now().Unix()+1, 10)
	sig := wxcrypto.Signature(tToken, ts, nonce, enc)
	path := "/wechat/" + tNamespace + "/" + tComponent + "/messages/" + tAccountAppID
	for _, q := range []string{
		"timestamp=" + ts + "&nonce=" + nonce + "&msg_signature=" + sig,
		"timestamp=" + ts + "&nonce=" + nonce + "&msg_signature=" + strings.ToUpper(sig),
		"timestamp=" + nonce + "&nonce=" + ts + "&msg_signature=" + sig,
	} {
		if got := e.post(path, q, body); got.code != 200 {
			t.Fatalf("%s: HTTP %d %q", q, got.code, got.body)
		}
	}
	if n := len(a.received()); n != 1 {
		t.Fatalf("the app got the message %d times, want once", n)
	}
	if got := e.messages(resultDuplicate); got != 2 {
		t.Fatalf("duplicates = %v, want 2", got)
	}
}

// --- item 3: the appid of the URL is bound to the message ----------------------------------

func TestAMessageIsForwardedOnlyToTheAccountItIsFor(t *testing.T) {
	shopApp := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, "success") })
	cafeApp := newApp(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, "success") })
	e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: cafeApp.srv.URL}),
		func(_ *wechatv1alpha1.WeChatComponent, k *corev1.Secret, _ *Options) {
			k.Data[keyring.AuthorizerForwardKeyKey(tNamespace, "shop")] = []byte(tAuthorizerKey)
		})
	const cafeAppID, cafeUser, newAppID = "wx00000000000000bb", "gh_000000000000", "wx00000000000000cc"
	e.addAccount("shop", tAccountAppID, tAccountUser, &wechatv1alpha1.MessageForwarding{URL: shopApp.srv.URL})
	e.addAccount("cafe", cafeAppID, cafeUser, nil)
	e.addAccount("new", newAppID, "", nil) // its controller has not read its info yet

	// A message of shop, delivered to shop's URL, then replayed to cafe's.
	path, query, body := e.sealed(tAccountAppID, wxMessage(tAccountUser, "text", "for shop"), tComponentAppID)
	if got := e.post(path, query, body); got.code != 200 {
		t.Fatalf("HTTP %d", got.code)
	}
	cafePath := strings.Replace(path, tAccountAppID, cafeAppID, 1)
	if got := e.post(cafePath, query, body); got.code != 200 {
		t.Fatalf("HTTP %d", got.code)
	}
	// Another message of shop, sent to cafe's URL first (never seen at shop's).
	_, query2, body2 := e.sealedWithNonce(wxMessage(tAccountUser, "text", "for shop too"), "5555")
	if got := e.post(cafePath, query2, body2); got.code != 200 {
		t.Fatalf("HTTP %d", got.code)
	}
	// A message to an account whose original id is not known yet.
	_, query3, body3 := e.sealedWithNonce(wxMessage("gh_0000000000cc", "text", "hi"), "6666")
	body3 = bytes.Replace(body3, []byte(tAccountUser), []byte("gh_0000000000cc"), 1) // the envelope's ToUserName too
	if got := e.post(strings.Replace(path, tAccountAppID, newAppID, 1), query3, body3); got.code != 200 {
		t.Fatalf("HTTP %d", got.code)
	}
	if n := len(shopApp.received()); n != 1 {
		t.Errorf("shop's app got %d messages, want its one", n)
	}
	if n := len(cafeApp.received()); n != 0 {
		t.Errorf("cafe's app got %d of shop's messages", n)
	}
	if got := counterValue(e.metrics.Messages.WithLabelValues("text", accountMismatch, msgAnswered)); got != 1 {
		t.Errorf("messages answered for a mismatched account = %v, want 1", got)
	}
	if got := counterValue(e.metrics.Messages.WithLabelValues("text", accountUnbound, msgAnswered)); got != 1 {
		t.Errorf("messages answered for an account not bound yet = %v, want 1", got)
	}
	// The appid is not in the replay key: the replay to cafe's URL is a duplicate.
	if got := counterValue(e.metrics.Messages.WithLabelValues("text", accountMismatch, resultDuplicate)); got != 1 {
		t.Errorf("replays to another account's URL counted as duplicates = %v, want 1", got)
	}
}

// sealedWithNonce is sealed with another nonce, for a second message of the same second.
func (e *msgEnv) sealedWithNonce(msg []byte, nonce string) (string, string, []byte) {
	path, query, body := e.sealed(tAccountAppID, msg, tComponentAppID)
	q, _ := url.ParseQuery(query)
	s := string(body)
	enc := s[strings.Index(s, "<Encrypt><![CDATA[")+18 : strings.Index(s, "]]></Encrypt>")]
	q.Set("nonce", nonce)
	q.Set("msg_signature", wxcrypto.Signature(tToken, q.Get("timestamp"), nonce, enc))
	return path, q.Encode(), body
}

// --- item 4: check-then-record is atomic ----------------------------------------------------

func TestCopiesSentAtOnceAreForwardedOnce(t *testing.T) {
	const copies = 10
	release := make(chan struct{})
	a := newApp(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		// Hold the first copy inside its forward until every other copy was answered.
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "success")
	})
	e := newMsgEnv(t, withForward(&wechatv1alpha1.MessageForwarding{URL: a.srv.URL, Timeout: "2s"}))
	e.addAccount("shop", tAccountAppID, tAccountUser, nil)
	path, query, body := e.sealed(tAccountAppID, wxMessage(tAccountUser, "text", "hello"), tComponentAppID)

	statuses := make(chan int, copies)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range copies {
		wg.Go(func() {
			<-start
			resp, err := http.Post(e.url+path+"?"+query, "text/xml", bytes.NewReader(body))
			if err != nil {
				statuses <- 0
				return
			}
			_ = resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	close(start)
	counts := map[int]int{}
	for range copies - 1 {
		counts[<-statuses]++
	}
	close(release)
	counts[<-statuses]++
	wg.Wait()
	if n := len(a.received()); n != 1 {
		t.Fatalf("%d copies sent at once were forwarded %d times, want once", copies, n)
	}
	if counts[http.StatusOK] != 1 || counts[http.StatusServiceUnavailable] != copies-1 {
		t.Fatalf("answers %v: want one 200 and %d 503 (in flight: WeChat retries)", counts, copies-1)
	}
	if got := e.post(path, query, body); got.code != 200 || len(a.received()) != 1 {
		t.Fatalf("a retry after the first copy went through: HTTP %d, forwards %d", got.code, len(a.received()))
	}
}

func TestAPushAnswered5xxIsProcessedOnItsRetry(t *testing.T) {
	e := newMsgEnv(t)
	ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
	query, body := e.pushEvent(wxcrypto.TicketPush{AppID: tComponentAppID, Created: e.clock.Now().Unix(), Ticket: "ticket@@@1"}.XML(), ts, "77")
	e.failStatusWrites.Store(true)
	if got := e.post(eventsPath, query, body); got.code != http.StatusServiceUnavailable {
		t.Fatalf("with the API server refusing writes: HTTP %d, want 503", got.code)
	}
	e.failStatusWrites.Store(false)
	if got := e.post(eventsPath, query, body); got.code != 200 {
		t.Fatalf("the retry got HTTP %d", got.code)
	}
	if vt := e.component().Status.VerifyTicket; vt == nil || vt.Ticket != "ticket@@@1" {
		t.Fatalf("the retry was not applied: %+v", vt)
	}
	if got := e.pushes(wxcrypto.InfoTypeComponentVerifyTicket, resultApplied); got != 1 {
		t.Fatalf("applied = %v, want 1 (the retry, not a duplicate)", got)
	}
	if got := e.post(eventsPath, query, body); got.code != 200 || e.pushes(wxcrypto.InfoTypeComponentVerifyTicket, resultDuplicate) != 1 {
		t.Fatalf("a third copy: HTTP %d, not a duplicate", got.code)
	}
}

// --- item 5: the window is capped, and sizes the cache's memory -----------------------------

func TestTheTimestampWindowIsCappedAndBoundsTheReplayMemory(t *testing.T) {
	e := newMsgEnv(t, func(c *wechatv1alpha1.WeChatComponent, _ *corev1.Secret, o *Options) {
		o.TimestampWindow = 24 * time.Hour
		c.Spec.Receiver.TimestampWindow = "48h" // stored before the CRD refused it
	})
	old := strconv.FormatInt(e.clock.Now().Add(-MaxTimestampWindow-time.Second).Unix(), 10)
	query, body := e.pushEvent(wxcrypto.TicketPush{AppID: tComponentAppID, Created: 1, Ticket: "t@@@old"}.XML(), old, "1")
	if got := e.post(eventsPath, query, body); got.code != http.StatusBadRequest {
		t.Fatalf("a push older than %s got HTTP %d, want 400", MaxTimestampWindow, got.code)
	}

	e2 := newMsgEnv(t, func(c *wechatv1alpha1.WeChatComponent, _ *corev1.Secret, _ *Options) {
		c.Spec.Receiver.TimestampWindow = "1m"
	})
	for i := range 20 {
		ts := strconv.FormatInt(e2.clock.Now().Unix(), 10)
		q, b := e2.pushEvent(wxcrypto.TicketPush{AppID: tComponentAppID, Created: e2.clock.Now().Unix() + int64(i), Ticket: "t@@@" + strconv.Itoa(i)}.XML(), ts, strconv.Itoa(100+i))
		if got := e2.post(eventsPath, q, b); got.code != 200 {
			t.Fatalf("push %d: HTTP %d", i, got.code)
		}
	}
	if n := e2.server.replay.len(); n != 20 {
		t.Fatalf("the cache holds %d pushes, want 20", n)
	}
	// Once their timestamps are out of the 1-minute window, they are forgotten.
	e2.clock.Step(time.Minute + 2*time.Second)
	ts := strconv.FormatInt(e2.clock.Now().Unix(), 10)
	q, b := e2.pushEvent(wxcrypto.TicketPush{AppID: tComponentAppID, Created: e2.clock.Now().Unix() + 100, Ticket: "t@@@late"}.XML(), ts, "999")
	if got := e2.post(eventsPath, q, b); got.code != 200 {
		t.Fatalf("HTTP %d", got.code)
	}
	if n := e2.server.replay.len(); n != 1 {
		t.Fatalf("the cache holds %d pushes a window later, want 1: its retention is not the window's", n)
	}
}

// --- item 1: the receiver creates nothing ---------------------------------------------------

func TestAnAuthorizationWithoutAuthorizerIsLeftToTheManager(t *testing.T) {
	cases := map[string]struct {
		autoCreate  bool
		wantPending bool
		wantEvent   bool
	}{
		"autoCreate on: the code waits for the manager": {autoCreate: true, wantPending: true},
		"autoCreate off: an Event says what to do":      {autoCreate: false, wantEvent: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newMsgEnv(t, func(c *wechatv1alpha1.WeChatComponent, _ *corev1.Secret, _ *Options) {
				c.Spec.Authorizers.AutoCreate = tc.autoCreate
			})
			ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
			query, body := e.pushEvent(e.authorizedPush("queryauthcode@@@pushed"), ts, "31")
			if got := e.post(eventsPath, query, body); got.code != 200 {
				t.Fatalf("HTTP %d", got.code)
			}
			list := &wechatv1alpha1.WeChatAuthorizerList{}
			if err := e.client.List(context.Background(), list); err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 0 {
				t.Fatalf("the receiver created %s", list.Items[0].Name)
			}
			pending := e.component().Status.PendingAuthorizationCodes
			if tc.wantPending {
				if len(pending) != 1 || pending[0].Code != "queryauthcode@@@pushed" || pending[0].Source != wechatv1alpha1.AuthorizationCodeFromPush || pending[0].AuthorizerAppID != tAccountAppID ||
					!pending[0].ExpiresAt.Time.Equal(e.clock.Now().Add(time.Hour)) {
					t.Fatalf("pending = %+v, want the pushed code, verified", pending)
				}
			} else if len(pending) != 0 {
				t.Fatalf("pending = %+v, want nothing", pending)
			}
			var recorded []string
			for len(e.recorder.Events) > 0 {
				recorded = append(recorded, <-e.recorder.Events)
			}
			got := strings.Contains(strings.Join(recorded, "\n"), wechatv1alpha1.EventAuthorizationNotRecorded)
			if got != tc.wantEvent {
				t.Fatalf("events %q; want an AuthorizationNotRecorded: %v", recorded, tc.wantEvent)
			}
		})
	}
}

// --- item 8: junk is counted, its log lines sampled ----------------------------------------

func TestJunkIsCountedButNotLoggedLineByLine(t *testing.T) {
	e := newMsgEnv(t)
	path, query, body := e.sealed(tAccountAppID, wxMessage(tAccountUser, "text", "hello"), tComponentAppID)
	badSig := query[:len(query)-4] + "0000"
	const junk = 300
	for i := range junk {
		switch i % 3 {
		case 0:
			e.post(path, badSig, body)
		case 1:
			e.post(eventsPath, badSig, body)
		default:
			e.get("/wechat/" + tNamespace + "/" + tComponent + "/authorized?auth_code=queryauthcode@@@junk" + strconv.Itoa(i))
		}
	}
	lines := strings.Count(e.logs.String(), "not accepted")
	if lines > rejectLogBurst {
		t.Fatalf("%d junk requests made %d log lines, want at most %d", junk, lines, rejectLogBurst)
	}
	rejected := e.messages(resultRejected) + e.pushes("unknown", resultRejected) + e.pushes("redirect", resultRejected)
	suppressed := counterValue(e.metrics.RejectedLogsSuppressed)
	if rejected != junk || suppressed != float64(junk-lines) {
		t.Fatalf("counted %v rejected and %v lines left out; want %d and %d", rejected, suppressed, junk, junk-lines)
	}
	// A second later, one more line, saying how many were left out.
	e.clock.Step(rejectLogEvery)
	e.post(path, badSig, body)
	if !strings.Contains(e.logs.String(), fmt.Sprintf(`"suppressedSinceLast"=%d`, junk-lines)) {
		t.Fatalf("the next line does not say %d lines were left out:\n%s", junk-lines, lastLine(e.logs.String()))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func (e *msgEnv) get(path string) answer {
	e.t.Helper()
	resp, err := http.Get(e.url + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, strings.TrimSpace(string(b))}
}

var _ = metav1.Now
