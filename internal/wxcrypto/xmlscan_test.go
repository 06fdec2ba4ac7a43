/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxcrypto

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// refValidChars is the obvious statement of validChars.
func refValidChars(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !isXMLRune(r) {
			return false
		}
	}
	return true
}

// TestValidChars puts every byte value at every position of buffers that straddle the
// eight-byte fast path, and a few multi-byte sequences, and compares with refValidChars.
func TestValidChars(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 16, 17} {
		for pos := 0; pos < n; pos++ {
			for v := 0; v < 256; v++ {
				b := bytes.Repeat([]byte{'a'}, n)
				b[pos] = byte(v)
				if got, want := validChars(b), refValidChars(b); got != want {
					t.Fatalf("validChars(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	for _, s := range []string{"我是中文abcd123", "\uFFFD", "\uFFFE", "\uFFFF", "\U0001F600", "\xed\xa0\x80", "abcdefg\u00e9", "\u0085", "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f", "\t\n\r        "} {
		if got, want := validChars([]byte(s)), refValidChars([]byte(s)); got != want {
			t.Errorf("validChars(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestParseRef(t *testing.T) {
	cases := []struct {
		in string
		r  rune
		n  int
	}{
		{"&lt;", '<', 4}, {"&gt;x", '>', 4}, {"&amp;", '&', 5}, {"&apos;", '\'', 6}, {"&quot;", '"', 6},
		{"&#65;", 'A', 5}, {"&#x41;", 'A', 6}, {"&#X41;", 0, 0}, {"&#x1F600;", 0x1F600, 9},
		{"&#0;", 0, 0}, {"&#x110000;", 0, 0}, {"&#xD800;", 0, 0}, {"&#9;", '\t', 4},
		{"&;", 0, 0}, {"&#;", 0, 0}, {"&#x;", 0, 0}, {"&nbsp;", 0, 0}, {"&lt", 0, 0}, {"&#123456789;", 0, 0},
	}
	for _, tc := range cases {
		r, n := parseRef([]byte(tc.in))
		if r != tc.r || n != tc.n {
			t.Errorf("parseRef(%q) = %q, %d; want %q, %d", tc.in, r, n, tc.r, tc.n)
		}
	}
}

func TestAppendCDATA(t *testing.T) {
	for _, s := range []string{"", "a", "]]>", "a]]>b]]>c", "]]]]>>", "<&>"} {
		doc := append(append([]byte("<xml><v>"), appendCDATA(nil, s)...), "</v></xml>"...)
		var f [1]field
		if err := scanDoc(doc, []string{"v"}, f[:]); err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		v, err := value(doc, f[0])
		if err != nil || string(v) != s {
			t.Fatalf("%q decodes to %q, %v; want %q", doc, v, err, s)
		}
	}
}
