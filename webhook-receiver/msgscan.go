/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"bytes"
	"unicode/utf8"
)

// scanFlatMessage reads a decrypted message of the shape WeChat sends: <xml>, then child
// elements each holding one CDATA section or plain text, then </xml>. It reads only that
// shape, where its result is what encoding/xml gives (FuzzParseMessage compares them), and
// reports false for anything else (a prolog, comments, attributes, nested elements,
// entities, carriage returns, control characters, invalid UTF-8, a repeated field), which
// parseMessage then hands to encoding/xml. It exists because encoding/xml was the largest
// cost of a message after the crypto and the HTTP round trips.
func scanFlatMessage(doc []byte, m *message) bool {
	b := bytes.TrimLeft(doc, " \t\n")
	b, ok := bytes.CutPrefix(b, []byte("<xml>"))
	if !ok {
		return false
	}
	var seen [5]bool
	for {
		b = bytes.TrimLeft(b, " \t\n")
		if rest, ok := bytes.CutPrefix(b, []byte("</xml>")); ok {
			return len(bytes.TrimLeft(rest, " \t\n")) == 0
		}
		if len(b) == 0 || b[0] != '<' {
			return false
		}
		end := bytes.IndexByte(b, '>')
		if end < 2 {
			return false
		}
		name := b[1:end]
		if name[0] >= '0' && name[0] <= '9' {
			return false // not an XML name: encoding/xml refuses the document
		}
		for _, c := range name {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
		b = b[end+1:]
		var value []byte
		if rest, ok := bytes.CutPrefix(b, []byte("<![CDATA[")); ok {
			i := bytes.Index(rest, []byte("]]>"))
			if i < 0 {
				return false
			}
			value, b = rest[:i], rest[i+3:]
		} else {
			i := bytes.IndexByte(b, '<')
			if i < 0 {
				return false
			}
			value, b = b[:i], b[i:]
			if bytes.IndexByte(value, '&') >= 0 || bytes.IndexByte(value, '>') >= 0 {
				return false
			}
		}
		if !plainChars(value) {
			return false
		}
		b, ok = bytes.CutPrefix(b, []byte("</"))
		if !ok {
			return false
		}
		if b, ok = bytes.CutPrefix(b, name); !ok {
			return false
		}
		if b, ok = bytes.CutPrefix(b, []byte(">")); !ok {
			return false
		}
		var field *string
		var i int
		switch string(name) {
		case "ToUserName":
			field, i = &m.ToUserName, 0
		case "FromUserName":
			field, i = &m.FromUserName, 1
		case "MsgType":
			field, i = &m.MsgType, 2
		case "Content":
			field, i = &m.Content, 3
		case "Event":
			field, i = &m.Event, 4
		default:
			continue
		}
		if seen[i] {
			return false
		}
		seen[i] = true
		*field = string(value)
	}
}

// plainChars reports that v is valid UTF-8 with no character encoding/xml would refuse or
// rewrite: no control character but tab and newline (a carriage return is normalised), no
// U+FFFE or U+FFFF.
func plainChars(v []byte) bool {
	for i := 0; i < len(v); {
		c := v[i]
		if c < 0x80 {
			if c < 0x20 && c != '\t' && c != '\n' {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(v[i:])
		if r == utf8.RuneError || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF) {
			return false
		}
		i += n
	}
	return true
}
