/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package wxcrypto implements WeChat's message encryption (WXBizMsgCrypt) for third-party
// platforms and the parsing of the pushes WeChat sends to the 授权事件接收URL. It uses the
// standard library only.
//
// # Crypto
//
//   - EncodingAESKey: exactly 43 characters of [A-Za-z0-9]; the AES-256 key is
//     base64(EncodingAESKey + "="), see ParseEncodingAESKey.
//   - msg_signature: lower-case hex SHA1 of the concatenation of token, timestamp, nonce and
//     Encrypt sorted as byte strings (Signature). Verification is constant time
//     (crypto/subtle) and accepts hex digits of either case.
//   - Encrypt: base64 (canonical, padded, no line breaks) of AES-256-CBC with IV = key[:16] over
//     16 random bytes || uint32 big-endian message length || message || appid, padded with
//     strict PKCS#7 to 32-byte blocks (pad 1..32, all pad bytes equal, checked in constant
//     time). The length is bounds-checked and the appid must equal the Crypter's.
//
// # Receiving
//
// A receiver calls Crypter.Open (or Crypter.OpenPush) once per push with the body and the
// timestamp, nonce and msg_signature query parameters; the signature is verified before anything
// is decrypted. ParsePush turns the message into a TicketPush, AuthorizedPush,
// UnauthorizedPush or OtherPush (value types; type-switch on them). Freshness of timestamps
// and replay protection are the receiver's job.
//
// # Names
//
// The Push interface has the methods InfoType, ComponentAppID and CreateTime. So that the
// concrete types can have them, their fields are named AppID (component appid), Created (the
// <CreateTime> value) and, where the InfoType varies, Type. The builders that produce
// WeChat-shaped plaintext pushes are named XML() (not MarshalXML, which would collide with
// encoding/xml.Marshaler): TicketPush.XML, AuthorizedPush.XML, UnauthorizedPush.XML,
// OtherPush.XML. Crypter.SealPush wraps such a message the way WeChat does, and
// Crypter.SealReply builds the encrypted passive-reply envelope.
//
// # XML
//
// Envelopes and pushes are read by a small strict scanner (see xmlscan.go) instead of
// encoding/xml: it accepts one root element named xml, ASCII element names, CDATA, comments,
// the predefined entities and character references, and rejects DOCTYPE, processing
// instructions after the prolog, invalid characters, trailing content, duplicated fields and
// child elements inside the fields it reads. Values decode exactly as encoding/xml decodes
// them; a differential fuzz target checks this.
//
// # Errors
//
// Every error wraps one of ErrBadSignature, ErrBadAppID, ErrBadPadding, ErrMalformed or
// ErrBadKey (use errors.Is). Messages never contain keys, tokens, tickets, codes or plaintext.
package wxcrypto
