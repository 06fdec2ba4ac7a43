/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package cryptocompare benchmarks the receiver's per-push work (verify + decrypt + parse of a
// realistic component_verify_ticket push) three ways in one run:
//
//   - wxcrypto:   this project's internal/wxcrypto (Crypter.OpenPush);
//   - silenceper: github.com/silenceper/wechat/v2 v2.1.10 doing what its server does for the
//     same push: decode the envelope with encoding/xml, util.Signature and compare,
//     util.DecryptMsg, xml.Unmarshal into message.MixMessage;
//   - floor:      the unavoidable cryptographic work alone, no XML: SHA1 over the sorted
//     signature inputs, base64 decoding and AES-256-CBC decryption with an expanded key.
//
// It is in a separate module (test/bench/sdkcompare) so the product's go.mod never depends on
// silenceper/wechat.
// Run it through hack/bench-crypto.sh, which prints the ratios.
package cryptocompare
