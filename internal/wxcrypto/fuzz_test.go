/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxcrypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// The committed corpus lives in testdata/fuzz/<Target>/; `go test` runs it as regular tests.
// Develop with e.g. `go test -run '^$' -fuzz '^FuzzDecrypt$' -fuzztime 60s ./internal/wxcrypto/`.

// refDecrypt is a plain, obviously-correct (and not constant-time) statement of the plaintext
// rules, used as the oracle for FuzzDecrypt.
func refDecrypt(plain []byte, appID string) ([]byte, error) {
	n := len(plain)
	if n == 0 || n%32 != 0 {
		return nil, ErrMalformed
	}
	pad := int(plain[n-1])
	if pad < 1 || pad > 32 {
		return nil, ErrBadPadding
	}
	for _, b := range plain[n-pad:] {
		if int(b) != pad {
			return nil, ErrBadPadding
		}
	}
	body := plain[:n-pad]
	if len(body) < 20 {
		return nil, ErrMalformed
	}
	l := int64(binary.BigEndian.Uint32(body[16:20]))
	if l > int64(len(body)-20) {
		return nil, ErrMalformed
	}
	if string(body[20+l:]) != appID {
		return nil, ErrBadAppID
	}
	return body[20 : 20+l], nil
}

func errClass(err error) error {
	for _, s := range []error{ErrBadSignature, ErrBadAppID, ErrBadPadding, ErrMalformed, ErrBadKey} {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

// FuzzDecrypt feeds Decrypt both an arbitrary Encrypt string and, to reach the checks behind
// AES, arbitrary plaintext blocks encrypted under the right key; results must match refDecrypt.
// Any message must also survive Encrypt/Decrypt.
func FuzzDecrypt(f *testing.F) {
	f.Add(vecEncrypt, []byte("hello"))
	f.Add(wxJavaEncrypt, frame(5, "hello", vecAppID, pkcs7(43)))
	f.Add("", []byte{})
	f.Add("QUJD", bytes.Repeat([]byte{32}, 32))
	f.Fuzz(func(t *testing.T, enc string, plain []byte) {
		c := vecCrypter(t)
		msg, err := c.Decrypt(enc)
		if err != nil {
			if msg != nil {
				t.Fatal("message returned with an error")
			}
			if errClass(err) == err { //nolint:errorlint // identity: errClass maps every error to its sentinel
				t.Fatalf("untyped error %v", err)
			}
			if strings.Contains(err.Error(), vecKey) || strings.Contains(err.Error(), vecToken) {
				t.Fatalf("error leaks key material: %v", err)
			}
		} else {
			// A ciphertext that decrypts must be canonical base64 of whole 32-byte blocks.
			raw, derr := base64.StdEncoding.Strict().DecodeString(enc)
			if derr != nil || len(raw)%32 != 0 || base64.StdEncoding.EncodeToString(raw) != enc {
				t.Fatalf("accepted non-canonical ciphertext %q", enc)
			}
		}

		// Arbitrary plaintext blocks, encrypted without framing.
		if n := len(plain) &^ 31; n > 0 {
			key, _ := ParseEncodingAESKey(vecKey)
			block, _ := aes.NewCipher(key)
			ct := make([]byte, n)
			cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(ct, plain[:n])
			got, err := c.Decrypt(base64.StdEncoding.EncodeToString(ct))
			want, werr := refDecrypt(plain[:n], vecAppID)
			if errClass(err) != werr || !bytes.Equal(got, want) { //nolint:errorlint // both are sentinels
				t.Fatalf("Decrypt = %q, %v; reference %q, %v", got, err, want, werr)
			}
		}

		// Round trip of the input as a message.
		c.SetRand(bytes.NewReader(bytes.Repeat([]byte{7}, 16)))
		ct, err := c.Encrypt(plain)
		if err != nil {
			t.Fatalf("Encrypt: %v", err)
		}
		back, err := c.Decrypt(ct)
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("round trip = %q, %v", back, err)
		}
	})
}

// FuzzParseEnvelope checks that the scanner never panics, that every envelope it accepts is
// read identically by encoding/xml, and that accepted envelopes survive re-sealing.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte("<xml><AppId><![CDATA[wx1]]></AppId><Encrypt><![CDATA[QUJD]]></Encrypt></xml>"))
	f.Add([]byte("<xml>\n<ToUserName><![CDATA[gh_1]]></ToUserName>\n<Encrypt><![CDATA[" + vecEncrypt + "]]></Encrypt>\n</xml>"))
	f.Add([]byte("<?xml version=\"1.0\" encoding=\"utf-8\"?><!--c--><xml a='&amp;'><AppId>w&#x78;&lt;</AppId><Encrypt>Q<![CDATA[U]]>JD</Encrypt><x><y/></x></xml>"))
	f.Add([]byte("<xml><AppId>a\r\nb</AppId><Encrypt><![CDATA[Q\r]]>UJD</Encrypt></xml>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := ParseEnvelope(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || env != (Envelope{}) {
				t.Fatalf("ParseEnvelope = %+v, %v", env, err)
			}
			return
		}
		if env.Encrypt == "" {
			t.Fatalf("accepted envelope without required fields: %+v", env)
		}
		if d := diffEnvelope(body, env); d != "" {
			t.Fatal(d)
		}
	})
}

// FuzzParsePush checks that ParsePush never panics, agrees with encoding/xml on every field it
// reads, and that typed pushes survive XML() and ParsePush again.
func FuzzParsePush(f *testing.F) {
	f.Add(TicketPush{AppID: "wx3f8d3c2f4c2e6a1b", Created: 1413192605, Ticket: "ticket@@@abc"}.XML())
	f.Add(AuthorizedPush{AppID: "c", Created: 2, Type: InfoTypeUpdateAuthorized, AuthorizerAppID: "wxa", AuthorizationCode: "q", AuthorizationCodeExpiredTime: 3, PreAuthCode: "p"}.XML())
	f.Add(UnauthorizedPush{AppID: "c", Created: 4, AuthorizerAppID: "wxa"}.XML())
	f.Add([]byte("<xml><AppId>c</AppId><CreateTime>5</CreateTime><InfoType>notify_third_fasteregister</InfoType><info><name>n</name></info></xml>"))
	f.Add([]byte("<xml>\n<AppId>some_appid</AppId>\n<CreateTime> 1413192605 </CreateTime>\n<InfoType>component_verify_ticket</InfoType>\n<ComponentVerifyTicket>a&amp;b<!--x--></ComponentVerifyTicket>\n</xml>"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		p, err := ParsePush(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || p != nil {
				t.Fatalf("ParsePush = %#v, %v", p, err)
			}
			return
		}
		if d := diffPush(msg, p); d != "" {
			t.Fatal(d)
		}
		var again Push
		switch v := p.(type) {
		case TicketPush:
			again, err = ParsePush(v.XML())
		case AuthorizedPush:
			again, err = ParsePush(v.XML())
		case UnauthorizedPush:
			again, err = ParsePush(v.XML())
		case OtherPush:
			if !bytes.Equal(v.Raw, msg) {
				t.Fatal("OtherPush.Raw differs from the message")
			}
			return
		default:
			t.Fatalf("unexpected type %T", p)
		}
		if validXMLString(p) && (err != nil || again != p) {
			t.Fatalf("XML round trip = %#v, %v; want %#v", again, err, p)
		}
	})
}

// validXMLString reports whether every string field of p can be written as XML text: after
// decoding, a value can hold any XML character, and XML() keeps it as CDATA, except CR, which
// XML parsing always normalises away.
func validXMLString(p Push) bool {
	return !strings.Contains(fmt.Sprintf("%#v", p), `\r`)
}

// FuzzOpen signs whatever Encrypt an envelope carries, so that the whole Open path (scan,
// verify, decrypt) is exercised, and checks Open never accepts a wrong signature.
func FuzzOpen(f *testing.F) {
	c := vecCrypter(f)
	c.SetRand(zeroReader{})
	body, _, _ := c.SealPush([]byte("<xml/>"), "1", "2")
	f.Add(body, "1", "2")
	f.Add([]byte("<xml><ToUserName>x</ToUserName><Encrypt>"+vecEncrypt+"</Encrypt></xml>"), vecTimestamp, vecNonce)
	f.Fuzz(func(t *testing.T, body []byte, ts, nonce string) {
		c := vecCrypter(t)
		env, err := ParseEnvelope(body)
		sig := "0000000000000000000000000000000000000000"
		if err == nil {
			sig = Signature(vecToken, ts, nonce, env.Encrypt)
		}
		msg, oerr := c.Open(body, ts, nonce, sig)
		if err != nil {
			if oerr == nil {
				t.Fatal("Open accepted an envelope ParseEnvelope rejects")
			}
			return
		}
		if oerr == nil {
			want, derr := c.Decrypt(env.Encrypt)
			if derr != nil || !bytes.Equal(msg, want) || (env.AppID != "" && env.AppID != vecAppID) {
				t.Fatalf("Open = %q; Decrypt = %q, %v", msg, want, derr)
			}
		} else if errClass(oerr) == ErrBadSignature { //nolint:errorlint // errClass returns the sentinel itself
			t.Fatalf("Open rejected a correct signature: %v", oerr)
		}
		if wrong := strings.Repeat("f", 40); sig != wrong {
			if _, err := c.Open(body, ts, nonce, wrong); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Open with a wrong signature: %v", err)
			}
		}
	})
}

// diffPush compares an accepted push with encoding/xml's reading of the same message.
func diffPush(msg []byte, p Push) string {
	var ref struct {
		AppID                        *string `xml:"AppId"`
		CreateTime                   *string `xml:"CreateTime"`
		InfoType                     *string `xml:"InfoType"`
		ComponentVerifyTicket        *string `xml:"ComponentVerifyTicket"`
		AuthorizerAppid              *string `xml:"AuthorizerAppid"`
		AuthorizationCode            *string `xml:"AuthorizationCode"`
		AuthorizationCodeExpiredTime *string `xml:"AuthorizationCodeExpiredTime"`
		PreAuthCode                  *string `xml:"PreAuthCode"`
	}
	if err := xml.Unmarshal(msg, &ref); err != nil {
		return fmt.Sprintf("ParsePush accepted %q, encoding/xml rejected it: %v", msg, err)
	}
	s := func(v *string) string {
		if v == nil {
			return ""
		}
		return *v
	}
	i := func(v *string) int64 {
		if v == nil {
			return 0
		}
		n, err := strconv.ParseInt(strings.Trim(*v, " \t\r\n"), 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	var want Push
	switch s(ref.InfoType) {
	case InfoTypeComponentVerifyTicket:
		want = TicketPush{AppID: s(ref.AppID), Created: i(ref.CreateTime), Ticket: s(ref.ComponentVerifyTicket)}
	case InfoTypeAuthorized, InfoTypeUpdateAuthorized:
		want = AuthorizedPush{AppID: s(ref.AppID), Created: i(ref.CreateTime), Type: s(ref.InfoType), AuthorizerAppID: s(ref.AuthorizerAppid),
			AuthorizationCode: s(ref.AuthorizationCode), AuthorizationCodeExpiredTime: i(ref.AuthorizationCodeExpiredTime), PreAuthCode: s(ref.PreAuthCode)}
	case InfoTypeUnauthorized:
		want = UnauthorizedPush{AppID: s(ref.AppID), Created: i(ref.CreateTime), AuthorizerAppID: s(ref.AuthorizerAppid)}
	default:
		want = OtherPush{AppID: s(ref.AppID), Created: i(ref.CreateTime), Type: s(ref.InfoType), Raw: msg}
	}
	if fmt.Sprintf("%#v", p) != fmt.Sprintf("%#v", want) {
		return fmt.Sprintf("ParsePush %#v, encoding/xml %#v for %q", p, want, msg)
	}
	return ""
}
