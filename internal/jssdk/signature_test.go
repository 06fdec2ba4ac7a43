/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package jssdk_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wechat-operator/wechat-operator/internal/jssdk"
)

// WeChat's published example (JS-SDK documentation, appendix 1: the signature algorithm).
const (
	vectorTicket    = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
	vectorNonce     = "Wm3WZYTPz0wzccnW"
	vectorTimestamp = 1414587457
	vectorURL       = "http://mp.weixin.qq.com?params=value"
	vectorSignature = "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
)

func TestSignatureMatchesWeChatsExample(t *testing.T) {
	if got := jssdk.Signature(vectorTicket, vectorNonce, vectorTimestamp, vectorURL); got != vectorSignature {
		t.Fatalf("signature %s, want %s", got, vectorSignature)
	}
	if got := jssdk.Signature(vectorTicket, vectorNonce, vectorTimestamp+1, vectorURL); got == vectorSignature {
		t.Fatal("the timestamp does not enter the signature")
	}
}

// The app in docs/consuming-tokens.md reads the ticket from the mounted token Secret.
func Example() {
	dir, _ := os.MkdirTemp("", "token")
	defer func() { _ = os.RemoveAll(dir) }()
	_ = os.WriteFile(filepath.Join(dir, "jsapi_ticket"), []byte(vectorTicket), 0o600) // as the Secret volume holds it

	ticket, err := os.ReadFile(filepath.Join(dir, "jsapi_ticket")) // read on every request: the file changes on refresh
	if err != nil {
		panic(err)
	}
	fmt.Println(jssdk.Signature(string(ticket), "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value"))
	// Output: 0f9de62fce790f9a083d5c99e95740ceb90c27ed
}

// The snippet in docs/consuming-tokens.md is this package's function: its lines that build
// and hash the string are the same, so the doc signs what the vector test checks.
func TestDocSnippetIsThisFunction(t *testing.T) {
	doc, err := os.ReadFile("../../docs/consuming-tokens.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("signature.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`s := "jsapi_ticket=" + jsapiTicket + "&noncestr=" + nonceStr + "&timestamp=" + strconv.FormatInt(timestamp, 10) + "&url=" + url`,
		`return hex.EncodeToString(sum[:])`,
		`sum := sha1.Sum([]byte(s))`,
	} {
		if !strings.Contains(string(src), line) {
			t.Errorf("signature.go lacks %q", line)
		}
		if !strings.Contains(string(doc), line) {
			t.Errorf("the doc's snippet lacks %q", line)
		}
	}
	if !strings.Contains(string(doc), vectorSignature) || !strings.Contains(string(doc), vectorTicket) {
		t.Error("the doc does not quote the test vector")
	}
}
