/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/officialaccount/message"
	"github.com/silenceper/wechat/v2/openplatform"
	opconfig "github.com/silenceper/wechat/v2/openplatform/config"

	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

// The two servers the receiver is compared with, each run as its own process (this program
// with --serve), so that each one's CPU time is its own:
//
//   - sdk:   github.com/silenceper/wechat/v2's open-platform message server, as its README
//     shows it (GetServer per request, SetMessageHandler, Serve, Send), with a handler that
//     checks the account binding and forwards the decrypted message the way the receiver
//     does (same headers, same HMAC), turning an app's reply into the SDK's reply type;
//   - floor: the same HTTP round trips with the cryptographic work alone: SHA1 over the
//     sorted signature inputs, base64 and AES-256-CBC, the forward's HMAC, and for a reply
//     AES, base64 and SHA1 again; no XML parsing but finding <Encrypt>, no lookups.
//
// Both forward with one keep-alive pool per process, as the receiver does.

// serveFlags are the flags of a --serve process.
type serveFlags struct {
	mode, listen, forwardURL string
	accounts                 int
}

func serve(f serveFlags) error {
	var h http.Handler
	fw := newForwarder(f.forwardURL, []byte(forwardKey))
	switch f.mode {
	case "sdk":
		h = newSDKServer(fw, f.accounts)
	case "floor":
		fl, err := newFloorServer(fw)
		if err != nil {
			return err
		}
		h = fl
	default:
		return fmt.Errorf("--serve %q: want sdk or floor", f.mode)
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	srv := receiver.NewHTTPServer(f.listen, h)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// forwarder POSTs a decrypted message to the app stand-in as the receiver does: the same
// headers, signed with receiver.ForwardSignature, a keep-alive pool sized for the senders.
type forwarder struct {
	url    string
	key    []byte
	client *http.Client
}

func newForwarder(url string, key []byte) *forwarder {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConnsPerHost = 256
	return &forwarder{url: url, key: key, client: &http.Client{Transport: t, Timeout: receiver.DefaultForwardTimeout}}
}

// forward returns the app's reply, or nil when it answered empty or "success".
func (f *forwarder) forward(ctx context.Context, appID string, plaintext []byte) []byte {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(plaintext))
	if err != nil {
		return nil
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("User-Agent", "wechat-operator-receiver")
	req.Header.Set(receiver.HeaderTimestamp, ts)
	req.Header.Set(receiver.HeaderAuthorizerAppID, appID)
	req.Header.Set(receiver.HeaderComponent, benchNamespace+"/"+componentName)
	req.Header.Set(receiver.HeaderSignature, receiver.ForwardSignature(f.key, ts, appID, plaintext))
	resp, err := f.client.Do(req)
	if err != nil {
		return nil
	}
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, receiver.DefaultMaxBodyBytes+1))
	if err != nil || resp.StatusCode/100 != 2 {
		return nil
	}
	answer = bytes.TrimSpace(answer)
	if len(answer) == 0 || string(answer) == "success" || !bytes.HasPrefix(answer, []byte("<xml")) {
		return nil
	}
	return answer
}

// newSDKServer is silenceper/wechat's server for the platform's keys.
func newSDKServer(fw *forwarder, accounts int) http.Handler {
	op := openplatform.NewOpenPlatform(&opconfig.Config{AppID: platformAppID, AppSecret: "bench",
		Token: token, EncodingAESKey: encodingAESKey, Cache: cache.NewMemory()})
	// The account binding the receiver checks (ToUserName is the URL account's original id),
	// from a map: the SDK has no resources to look it up in.
	originalIDs := make(map[string]string, accounts)
	for i := range accounts {
		originalIDs[accountAppID(i)] = originalID(i)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /messages/{appid}", func(w http.ResponseWriter, r *http.Request) {
		appID := r.PathValue("appid")
		srv := op.GetServer(r, w)
		srv.SetMessageHandler(func(m *message.MixMessage) *message.Reply {
			if originalIDs[appID] != string(m.ToUserName) {
				return nil
			}
			answer := fw.forward(r.Context(), appID, srv.RequestRawXMLMsg)
			if answer == nil {
				return nil
			}
			var text message.Text
			if err := xml.Unmarshal(answer, &text); err != nil || text.MsgType != message.MsgTypeText {
				return nil
			}
			return &message.Reply{MsgType: message.MsgTypeText, MsgData: message.NewText(string(text.Content))}
		})
		if err := srv.Serve(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if srv.ResponseMsg == nil {
			// Nothing to reply: answer as the receiver does (Send would encrypt an empty reply).
			_, _ = io.WriteString(w, "success")
			return
		}
		if err := srv.Send(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	return mux
}

// floorServer does the unavoidable work of a message and nothing else.
type floorServer struct {
	fw    *forwarder
	block cipher.Block
	key   []byte
}

func newFloorServer(fw *forwarder) (*floorServer, error) {
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &floorServer{fw: fw, block: block, key: key}, nil
}

func (s *floorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, receiver.DefaultMaxBodyBytes))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	enc := between(body, "<Encrypt><![CDATA[", "]]></Encrypt>")
	want := sha1Hex(token, ts, nonce, string(enc))
	if subtle.ConstantTimeCompare([]byte(want), []byte(q.Get("msg_signature"))) != 1 {
		http.Error(w, "signature", http.StatusForbidden)
		return
	}
	ct := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(ct, enc)
	if err != nil || n == 0 || n%aes.BlockSize != 0 {
		http.Error(w, "base64", http.StatusBadRequest)
		return
	}
	ct = ct[:n]
	cipher.NewCBCDecrypter(s.block, s.key[:aes.BlockSize]).CryptBlocks(ct, ct)
	pad := int(ct[len(ct)-1])
	if pad < 1 || pad > 32 || pad > len(ct)-20 {
		http.Error(w, "padding", http.StatusBadRequest)
		return
	}
	ct = ct[:len(ct)-pad]
	msgLen := int(binary.BigEndian.Uint32(ct[16:20]))
	if 20+msgLen > len(ct) || string(ct[20+msgLen:]) != platformAppID {
		http.Error(w, "appid", http.StatusBadRequest)
		return
	}
	answer := s.fw.forward(r.Context(), r.PathValue("appid"), ct[20:20+msgLen])
	if answer == nil {
		_, _ = io.WriteString(w, "success")
		return
	}
	// Encrypt the reply as it came: random(16) | length | message | appid, PKCS#7 to 32.
	n = 20 + len(answer) + len(platformAppID)
	pad = 32 - n%32
	p := make([]byte, n+pad)
	_, _ = rand.Read(p[:16])
	binary.BigEndian.PutUint32(p[16:20], uint32(len(answer)))
	copy(p[20:], answer)
	copy(p[20+len(answer):], platformAppID)
	for i := n; i < len(p); i++ {
		p[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(s.block, s.key[:aes.BlockSize]).CryptBlocks(p, p)
	out := base64.StdEncoding.EncodeToString(p)
	rts := strconv.FormatInt(time.Now().Unix(), 10)
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	_, _ = io.WriteString(w, "<xml><Encrypt><![CDATA["+out+"]]></Encrypt><MsgSignature><![CDATA["+
		sha1Hex(token, rts, nonce, out)+"]]></MsgSignature><TimeStamp>"+rts+"</TimeStamp><Nonce><![CDATA["+nonce+"]]></Nonce></xml>")
}

// elem is the text of the first <name> element of b, without a CDATA wrapper.
func elem(b []byte, name string) []byte {
	v := between(b, "<"+name+">", "</"+name+">")
	if c, ok := bytes.CutPrefix(v, []byte("<![CDATA[")); ok {
		v, _ = bytes.CutSuffix(c, []byte("]]>"))
	}
	return v
}

// between is the bytes of b between the first open and the close after it.
func between(b []byte, open, close string) []byte {
	i := bytes.Index(b, []byte(open))
	if i < 0 {
		return nil
	}
	b = b[i+len(open):]
	j := bytes.Index(b, []byte(close))
	if j < 0 {
		return nil
	}
	return b[:j]
}

// sha1Hex is WeChat's signature: SHA1 over the sorted parts, concatenated, in hex.
func sha1Hex(parts ...string) string {
	sort.Strings(parts)
	h := sha1.New()
	for _, p := range parts {
		_, _ = io.WriteString(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "messagebench:", err)
	os.Exit(1)
}
