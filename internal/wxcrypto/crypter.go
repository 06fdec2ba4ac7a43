/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxcrypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"io"
	"math"
)

const (
	// blockSize is the PKCS#7 block size WXBizMsgCrypt pads to (twice the AES block size).
	blockSize = 32
	// randomLen is the length of the random prefix of every plaintext.
	randomLen = 16
	// headerLen is the random prefix plus the 4-byte big-endian message length.
	headerLen = randomLen + 4
)

// b64 is the ciphertext encoding: standard alphabet, padded, canonical (strict) form.
var b64 = base64.StdEncoding.Strict()

// Crypter holds one component's token, AES key and appid. It is safe for concurrent use,
// except that SetRand must not be called concurrently with Encrypt or the Seal methods.
type Crypter struct {
	token string
	appID string
	key   []byte // 32 bytes; the IV is key[:16]
	block cipher.Block
	rand  io.Reader
}

// NewCrypter validates the key material and returns a Crypter. The token and appID must be
// non-empty; the EncodingAESKey must satisfy ParseEncodingAESKey.
func NewCrypter(token, encodingAESKey, appID string) (*Crypter, error) {
	if token == "" {
		return nil, errorf(ErrBadKey, "token must not be empty")
	}
	if appID == "" {
		return nil, errorf(ErrBadAppID, "appid must not be empty")
	}
	key, err := ParseEncodingAESKey(encodingAESKey)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, errorf(ErrBadKey, "cannot create AES cipher")
	}
	return &Crypter{token: token, appID: appID, key: key, block: block}, nil
}

// AppID returns the appid this Crypter expects in (and writes into) every plaintext.
func (c *Crypter) AppID() string { return c.appID }

// SetRand replaces the source of the 16 random plaintext bytes used by Encrypt (nil restores
// crypto/rand.Reader). Use it only for deterministic tests.
func (c *Crypter) SetRand(r io.Reader) { c.rand = r }

func (c *Crypter) random() io.Reader {
	if c.rand == nil {
		return rand.Reader
	}
	return c.rand
}

// VerifySignature checks msgSignature against Signature(token, timestamp, nonce, encrypt) in
// constant time. Hex digits are accepted in either case.
func (c *Crypter) VerifySignature(timestamp, nonce, encrypt, msgSignature string) error {
	return verifySum(signatureSum(c.token, timestamp, nonce, []byte(encrypt)), msgSignature)
}

// Decrypt turns the base64 Encrypt value into the message, checking strict PKCS#7 padding
// (32-byte blocks), the length field and the appid. It does not check any signature: use Open
// (or VerifySignature first) for input from the network.
func (c *Crypter) Decrypt(encrypt string) ([]byte, error) {
	return c.decrypt([]byte(encrypt))
}

func (c *Crypter) decrypt(encrypt []byte) ([]byte, error) {
	if len(encrypt) == 0 || len(encrypt)%4 != 0 || bytes.IndexByte(encrypt, '\n') >= 0 || bytes.IndexByte(encrypt, '\r') >= 0 {
		return nil, errorf(ErrMalformed, "ciphertext is not canonical base64")
	}
	buf := make([]byte, b64.DecodedLen(len(encrypt)))
	n, err := b64.Decode(buf, encrypt)
	if err != nil {
		return nil, errorf(ErrMalformed, "ciphertext is not canonical base64")
	}
	if n == 0 || n%blockSize != 0 {
		return nil, errorf(ErrMalformed, "ciphertext length is not a multiple of 32 bytes")
	}
	p := buf[:n]
	cipher.NewCBCDecrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(p, p)

	// Strict PKCS#7 with 32-byte blocks, checked in constant time: 1 <= pad <= 32 and the
	// last pad bytes all equal pad.
	pad := int(p[n-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, blockSize)
	for i := 0; i < blockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i+1, pad)
		eq := subtle.ConstantTimeByteEq(p[n-1-i], byte(pad))
		good &= subtle.ConstantTimeSelect(inPad, eq, 1)
	}
	if good != 1 {
		return nil, errorf(ErrBadPadding, "invalid PKCS#7 padding")
	}
	p = p[:n-pad]
	if len(p) < headerLen {
		return nil, errorf(ErrMalformed, "plaintext too short")
	}
	msgLen := binary.BigEndian.Uint32(p[randomLen:headerLen])
	if uint64(msgLen) > uint64(len(p)-headerLen) {
		return nil, errorf(ErrMalformed, "message length out of range")
	}
	end := headerLen + int(msgLen)
	if string(p[end:]) != c.appID {
		return nil, errorf(ErrBadAppID, "plaintext appid does not match")
	}
	return p[headerLen:end:end], nil
}

// Encrypt turns msg into the base64 Encrypt value: AES-256-CBC (IV = key[:16]) over 16 random
// bytes, the 4-byte big-endian length of msg, msg and the appid, PKCS#7-padded to 32 bytes.
func (c *Crypter) Encrypt(msg []byte) (string, error) {
	if uint64(len(msg)) > math.MaxUint32-uint64(headerLen+len(c.appID)+blockSize) {
		return "", errorf(ErrMalformed, "message too long")
	}
	n := headerLen + len(msg) + len(c.appID)
	pad := blockSize - n%blockSize
	p := make([]byte, n+pad)
	if _, err := io.ReadFull(c.random(), p[:randomLen]); err != nil {
		return "", errorf(ErrMalformed, "reading random bytes failed")
	}
	binary.BigEndian.PutUint32(p[randomLen:headerLen], uint32(len(msg)))
	copy(p[headerLen:], msg)
	copy(p[headerLen+len(msg):], c.appID)
	for i := n; i < len(p); i++ {
		p[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(p, p)
	return b64.EncodeToString(p), nil
}

// Open is the receiver's one call per push: it parses the envelope body
// (<xml><AppId/> or <ToUserName/> and <Encrypt/></xml>), verifies msgSignature over its Encrypt
// in constant time, and decrypts it. If the envelope carries AppId it must be this component's.
// The returned message is the decrypted plaintext message (typically the push XML).
func (c *Crypter) Open(body []byte, timestamp, nonce, msgSignature string) ([]byte, error) {
	var f [3]field
	if err := scanDoc(body, envelopeNames[:], f[:]); err != nil {
		return nil, err
	}
	enc, err := envelopeEncrypt(body, &f)
	if err != nil {
		return nil, err
	}
	if err := verifySum(signatureSum(c.token, timestamp, nonce, enc), msgSignature); err != nil {
		return nil, err
	}
	if f[envAppID].set {
		appID, err := value(body, f[envAppID])
		if err != nil {
			return nil, err
		}
		if string(appID) != c.appID {
			return nil, errorf(ErrBadAppID, "envelope AppId does not match")
		}
	}
	return c.decrypt(enc)
}

// OpenPush is Open followed by ParsePush, and additionally checks that the push's AppId is this
// component's appid.
func (c *Crypter) OpenPush(body []byte, timestamp, nonce, msgSignature string) (Push, error) {
	msg, err := c.Open(body, timestamp, nonce, msgSignature)
	if err != nil {
		return nil, err
	}
	p, err := ParsePush(msg)
	if err != nil {
		return nil, err
	}
	if p.ComponentAppID() != c.appID {
		return nil, errorf(ErrBadAppID, "push AppId does not match")
	}
	return p, nil
}

// SealPush builds an inbound push the way WeChat sends it to the 授权事件接收URL (used by the
// simulator): the body <xml><AppId><![CDATA[appid]]></AppId><Encrypt><![CDATA[...]]></Encrypt></xml>
// and the msg_signature for the query string.
func (c *Crypter) SealPush(msg []byte, timestamp, nonce string) (body []byte, msgSignature string, err error) {
	if err := checkQueryValue(timestamp, nonce); err != nil {
		return nil, "", err
	}
	enc, err := c.Encrypt(msg)
	if err != nil {
		return nil, "", err
	}
	body = make([]byte, 0, len(enc)+len(c.appID)+96)
	body = append(body, "<xml><AppId>"...)
	body = appendCDATA(body, c.appID)
	body = append(body, "</AppId><Encrypt>"...)
	body = appendCDATA(body, enc)
	body = append(body, "</Encrypt></xml>"...)
	return body, Signature(c.token, timestamp, nonce, enc), nil
}

// SealReply builds the encrypted passive-reply envelope WeChat expects:
//
//	<xml><Encrypt><![CDATA[...]]></Encrypt><MsgSignature><![CDATA[...]]></MsgSignature>
//	<TimeStamp>timestamp</TimeStamp><Nonce><![CDATA[nonce]]></Nonce></xml>
func (c *Crypter) SealReply(msg []byte, timestamp, nonce string) ([]byte, error) {
	if err := checkQueryValue(timestamp, nonce); err != nil {
		return nil, err
	}
	enc, err := c.Encrypt(msg)
	if err != nil {
		return nil, err
	}
	sig := Signature(c.token, timestamp, nonce, enc)
	out := make([]byte, 0, len(enc)+len(sig)+len(timestamp)+len(nonce)+160)
	out = append(out, "<xml>\n<Encrypt>"...)
	out = appendCDATA(out, enc)
	out = append(out, "</Encrypt>\n<MsgSignature>"...)
	out = appendCDATA(out, sig)
	out = append(out, "</MsgSignature>\n<TimeStamp>"...)
	out = appendEscaped(out, timestamp)
	out = append(out, "</TimeStamp>\n<Nonce>"...)
	out = appendCDATA(out, nonce)
	out = append(out, "</Nonce>\n</xml>"...)
	return out, nil
}

// checkQueryValue rejects timestamps and nonces that could not have come from a query string
// WeChat signs: empty, or containing characters XML cannot carry.
func checkQueryValue(timestamp, nonce string) error {
	if timestamp == "" || nonce == "" {
		return errorf(ErrMalformed, "timestamp and nonce must not be empty")
	}
	if !validChars([]byte(timestamp)) || !validChars([]byte(nonce)) {
		return errorf(ErrMalformed, "timestamp or nonce contains invalid characters")
	}
	return nil
}
