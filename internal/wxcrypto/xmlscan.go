/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxcrypto

import (
	"bytes"
	"encoding/binary"
	"strings"
	"unicode/utf8"
)

// This file holds a small, strict, allocation-free XML scanner for the flat documents WeChat
// sends (<xml><Field>value</Field>...</xml>). It accepts a subset of XML 1.0 and rejects
// everything outside it with ErrMalformed:
//
//   - an optional XML declaration at the very start (version 1.0; encoding, if given, UTF-8);
//   - comments and whitespace before and after the root element, nothing else;
//   - exactly one root element, which must be named "xml";
//   - elements with ASCII names (no namespace prefixes), optional attributes with quoted values;
//   - character data with the predefined entities (&lt; &gt; &amp; &apos; &quot;) and numeric
//     character references, CDATA sections and comments;
//   - only characters XML allows (valid UTF-8, no control characters except TAB, LF, CR);
//   - nesting up to maxDepth, with every end tag matching its start tag.
//
// DOCTYPE declarations (and so custom entities) and processing instructions after the prolog are
// rejected. Values are decoded as encoding/xml does (entities resolved, CDATA unwrapped, CR and
// CRLF normalised to LF); FuzzXMLDifferential checks this against encoding/xml.

const maxDepth = 32

// field is the scan result for one wanted child element of the root.
type field struct {
	start, end int  // content span in the document (between start and end tag)
	set        bool // element seen
	nested     bool // content contains child elements
}

// scanDoc validates doc and fills out[k] for every child element of the root whose name is
// names[k]. A wanted name that appears twice is an error: a second AppId or Encrypt would make
// the document ambiguous.
func scanDoc(doc []byte, names []string, out []field) error {
	s := scanner{b: doc}
	if err := s.prolog(); err != nil {
		return err
	}
	// Root start tag.
	if s.i >= len(s.b) || s.b[s.i] != '<' {
		return errorf(ErrMalformed, "missing root element")
	}
	s.i++
	ns, ne, ok := s.name()
	if !ok || string(doc[ns:ne]) != "xml" {
		return errorf(ErrMalformed, "root element must be <xml>")
	}
	selfClose, ok := s.attrs()
	if !ok {
		return errorf(ErrMalformed, "bad root start tag")
	}
	if !selfClose {
		if err := s.content(ns, ne, names, out); err != nil {
			return err
		}
	}
	return s.epilog()
}

type scanner struct {
	b []byte
	i int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) skipSpace() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

func (s *scanner) hasPrefix(p string) bool {
	return len(s.b)-s.i >= len(p) && string(s.b[s.i:s.i+len(p)]) == p
}

func (s *scanner) prolog() error {
	if s.hasPrefix("<?xml") && len(s.b) > s.i+5 && isSpace(s.b[s.i+5]) {
		end := bytes.Index(s.b[s.i+5:], []byte("?>"))
		if end < 0 {
			return errorf(ErrMalformed, "unterminated XML declaration")
		}
		decl := s.b[s.i+5 : s.i+5+end]
		if !validChars(decl) || !declOK(decl) {
			return errorf(ErrMalformed, "unsupported XML declaration")
		}
		s.i += 5 + end + 2
	}
	return s.misc()
}

func (s *scanner) epilog() error {
	if err := s.misc(); err != nil {
		return err
	}
	if s.i != len(s.b) {
		return errorf(ErrMalformed, "content after root element")
	}
	return nil
}

// misc skips whitespace and comments outside the root element.
func (s *scanner) misc() error {
	for {
		s.skipSpace()
		if !s.hasPrefix("<!--") {
			return nil
		}
		if !s.comment() {
			return errorf(ErrMalformed, "bad comment")
		}
	}
}

// comment consumes "<!--...-->" at s.i; "--" may not occur inside.
func (s *scanner) comment() bool {
	body := s.b[s.i+4:]
	end := bytes.Index(body, []byte("--"))
	if end < 0 || end+2 >= len(body) || body[end+2] != '>' || !validChars(body[:end]) {
		return false
	}
	s.i += 4 + end + 3
	return true
}

// declOK accepts the body of an XML declaration (after "<?xml", before "?>") only in the
// form XML 1.0 defines: version="1.0", then optionally encoding="UTF-8" (any case)
// and standalone="yes"|"no", separated by whitespace, single or double quotes.
func declOK(decl []byte) bool {
	params := [3]string{"version", "encoding", "standalone"}
	for k, p := range params {
		rest := bytes.TrimLeft(decl, " \t\r\n")
		if len(rest) == len(decl) || !bytes.HasPrefix(rest, []byte(p)) {
			if k == 0 {
				return false // version is required
			}
			continue
		}
		rest = bytes.TrimLeft(rest[len(p):], " \t\r\n")
		if len(rest) == 0 || rest[0] != '=' {
			return false
		}
		rest = bytes.TrimLeft(rest[1:], " \t\r\n")
		if len(rest) < 2 || (rest[0] != '"' && rest[0] != '\'') {
			return false
		}
		end := bytes.IndexByte(rest[1:], rest[0])
		if end < 0 {
			return false
		}
		v := rest[1 : 1+end]
		switch k {
		case 0:
			if string(v) != "1.0" {
				return false
			}
		case 1:
			if !bytes.EqualFold(v, []byte("utf-8")) {
				return false
			}
		case 2:
			if string(v) != "yes" && string(v) != "no" {
				return false
			}
		}
		decl = rest[2+end:]
	}
	return len(bytes.TrimLeft(decl, " \t\r\n")) == 0
}

func isNameStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
}

func isNameChar(c byte) bool {
	return isNameStart(c) || '0' <= c && c <= '9' || c == '-' || c == '.'
}

// name consumes an ASCII element or attribute name at s.i and returns its span.
func (s *scanner) name() (start, end int, ok bool) {
	start = s.i
	if s.i >= len(s.b) || !isNameStart(s.b[s.i]) {
		return 0, 0, false
	}
	s.i++
	for s.i < len(s.b) && isNameChar(s.b[s.i]) {
		s.i++
	}
	return start, s.i, true
}

// attrs consumes the rest of a start tag after its name: attributes, optional whitespace and
// "/>" or ">". It reports whether the element was self-closing.
func (s *scanner) attrs() (selfClose, ok bool) {
	for {
		hadSpace := s.i < len(s.b) && isSpace(s.b[s.i])
		s.skipSpace()
		if s.i >= len(s.b) {
			return false, false
		}
		switch s.b[s.i] {
		case '>':
			s.i++
			return false, true
		case '/':
			if s.i+1 < len(s.b) && s.b[s.i+1] == '>' {
				s.i += 2
				return true, true
			}
			return false, false
		}
		if !hadSpace {
			return false, false
		}
		if _, _, ok := s.name(); !ok {
			return false, false
		}
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != '=' {
			return false, false
		}
		s.i++
		s.skipSpace()
		if s.i >= len(s.b) || (s.b[s.i] != '"' && s.b[s.i] != '\'') {
			return false, false
		}
		q := s.b[s.i]
		s.i++
		end := bytes.IndexByte(s.b[s.i:], q)
		if end < 0 {
			return false, false
		}
		val := s.b[s.i : s.i+end]
		if bytes.IndexByte(val, '<') >= 0 || !validText(val) {
			return false, false
		}
		s.i += end + 1
	}
}

// content scans the root element's content up to and including its end tag.
func (s *scanner) content(rootStart, rootEnd int, names []string, out []field) error {
	var stack [maxDepth]struct{ start, end int }
	stack[0].start, stack[0].end = rootStart, rootEnd
	depth := 1
	cur := -1 // index into names of the open depth-1 element, or -1
	for {
		// Character data up to the next '<'.
		lt := bytes.IndexByte(s.b[s.i:], '<')
		if lt < 0 {
			return errorf(ErrMalformed, "unterminated element")
		}
		if !validText(s.b[s.i : s.i+lt]) {
			return errorf(ErrMalformed, "bad character data")
		}
		s.i += lt
		switch {
		case s.hasPrefix("<![CDATA["):
			body := s.b[s.i+9:]
			end := bytes.Index(body, []byte("]]>"))
			if end < 0 || !validChars(body[:end]) {
				return errorf(ErrMalformed, "bad CDATA section")
			}
			s.i += 9 + end + 3
		case s.hasPrefix("<!--"):
			if !s.comment() {
				return errorf(ErrMalformed, "bad comment")
			}
		case s.hasPrefix("</"):
			s.i += 2
			ns, ne, ok := s.name()
			if !ok {
				return errorf(ErrMalformed, "bad end tag")
			}
			s.skipSpace()
			if s.i >= len(s.b) || s.b[s.i] != '>' {
				return errorf(ErrMalformed, "bad end tag")
			}
			s.i++
			open := stack[depth-1]
			if string(s.b[ns:ne]) != string(s.b[open.start:open.end]) {
				return errorf(ErrMalformed, "mismatched end tag")
			}
			depth--
			if depth == 0 {
				return nil
			}
			if depth == 1 && cur >= 0 {
				out[cur].end = ns - 2
				cur = -1
			}
		default:
			s.i++
			ns, ne, ok := s.name()
			if !ok {
				return errorf(ErrMalformed, "bad start tag")
			}
			selfClose, ok := s.attrs()
			if !ok {
				return errorf(ErrMalformed, "bad start tag")
			}
			if depth == 1 {
				k := lookup(names, s.b[ns:ne])
				if k >= 0 {
					if out[k].set {
						return errorf(ErrMalformed, "duplicate element")
					}
					out[k] = field{start: s.i, end: s.i, set: true}
					if !selfClose {
						cur = k
					}
				}
			} else if cur >= 0 {
				out[cur].nested = true
			}
			if !selfClose {
				if depth == maxDepth {
					return errorf(ErrMalformed, "elements nested too deeply")
				}
				stack[depth].start, stack[depth].end = ns, ne
				depth++
			}
		}
	}
}

func lookup(names []string, name []byte) int {
	for k, n := range names {
		if n == string(name) {
			return k
		}
	}
	return -1
}

// validChars reports whether b is valid UTF-8 made of XML Char only.
func validChars(b []byte) bool {
	for i := 0; i < len(b); {
		// Fast path: eight printable ASCII bytes at a time. A byte below 0x20 borrows in the
		// subtraction and sets its high bit; a byte of 0x80 or more has it set already.
		if i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			if (x|(x-0x2020202020202020))&0x8080808080808080 == 0 {
				i += 8
				continue
			}
		}
		c := b[i]
		if c >= 0x20 && c < 0x80 {
			i++
			continue
		}
		if c < 0x20 {
			if c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 || !isXMLRune(r) {
			return false
		}
		i += n
	}
	return true
}

func isXMLRune(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// validText checks character data (no '<' inside): valid characters, valid references and no
// "]]>" (which XML allows only to end a CDATA section).
func validText(b []byte) bool {
	if bytes.Contains(b, []byte("]]>")) {
		return false
	}
	for {
		amp := bytes.IndexByte(b, '&')
		if amp < 0 {
			return validChars(b)
		}
		if !validChars(b[:amp]) {
			return false
		}
		_, n := parseRef(b[amp:])
		if n == 0 {
			return false
		}
		b = b[amp+n:]
	}
}

// parseRef decodes the reference at the start of b ("&...;"). It returns the rune and the
// number of bytes consumed, or n == 0 if b does not start with a valid reference.
func parseRef(b []byte) (r rune, n int) {
	semi := bytes.IndexByte(b, ';')
	if semi < 2 || semi > 12 {
		return 0, 0
	}
	ref := b[1:semi]
	switch string(ref) {
	case "lt":
		return '<', semi + 1
	case "gt":
		return '>', semi + 1
	case "amp":
		return '&', semi + 1
	case "apos":
		return '\'', semi + 1
	case "quot":
		return '"', semi + 1
	}
	if ref[0] != '#' || len(ref) < 2 {
		return 0, 0
	}
	digits, base := ref[1:], rune(10)
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 || len(digits) > 8 {
		return 0, 0
	}
	for _, c := range digits {
		var d rune
		switch {
		case '0' <= c && c <= '9':
			d = rune(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && 'A' <= c && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return 0, 0
		}
		r = r*base + d
		if r > utf8.MaxRune {
			return 0, 0
		}
	}
	if !isXMLRune(r) {
		return 0, 0
	}
	return r, semi + 1
}

// value returns the decoded text of a scanned element's content. The common shapes, a single
// CDATA section or plain text without references or CR, are returned as a sub-slice of doc
// without copying; anything else is decoded into a new slice. Content with child elements is
// rejected: no field this package reads has any.
func value(doc []byte, f field) ([]byte, error) {
	if f.nested {
		return nil, errorf(ErrMalformed, "unexpected child element")
	}
	c := doc[f.start:f.end]
	if len(c) >= 12 && string(c[:9]) == "<![CDATA[" && string(c[len(c)-3:]) == "]]>" {
		inner := c[9 : len(c)-3]
		if !bytes.Contains(inner, []byte("]]>")) && bytes.IndexByte(inner, '\r') < 0 {
			return inner, nil
		}
	} else if bytes.IndexByte(c, '<') < 0 && bytes.IndexByte(c, '&') < 0 && bytes.IndexByte(c, '\r') < 0 {
		return c, nil
	}
	return decodeText(make([]byte, 0, len(c)), c), nil
}

// decodeText appends the decoded form of already-validated content without child elements.
func decodeText(dst, c []byte) []byte {
	for i := 0; i < len(c); {
		switch ch := c[i]; ch {
		case '<':
			if string(c[i:min(i+9, len(c))]) == "<![CDATA[" {
				end := bytes.Index(c[i+9:], []byte("]]>"))
				dst = appendNormalized(dst, c[i+9:i+9+end])
				i += 9 + end + 3
			} else { // comment
				end := bytes.Index(c[i+4:], []byte("-->"))
				i += 4 + end + 3
			}
		case '&':
			r, n := parseRef(c[i:])
			dst = utf8.AppendRune(dst, r)
			i += n
		case '\r':
			dst = append(dst, '\n')
			i++
			if i < len(c) && c[i] == '\n' {
				i++
			}
		default:
			dst = append(dst, ch)
			i++
		}
	}
	return dst
}

// appendNormalized appends b with CRLF and CR turned into LF.
func appendNormalized(dst, b []byte) []byte {
	for i := 0; i < len(b); i++ {
		if b[i] == '\r' {
			dst = append(dst, '\n')
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
			continue
		}
		dst = append(dst, b[i])
	}
	return dst
}

// appendCDATA writes s as CDATA, splitting any "]]>" so the output always parses back to s.
func appendCDATA(dst []byte, s string) []byte {
	dst = append(dst, "<![CDATA["...)
	for {
		i := strings.Index(s, "]]>")
		if i < 0 {
			break
		}
		dst = append(dst, s[:i+2]...)
		dst = append(dst, "]]><![CDATA["...)
		s = s[i+2:]
	}
	dst = append(dst, s...)
	return append(dst, "]]>"...)
}

// appendEscaped writes s as character data.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '&':
			dst = append(dst, "&amp;"...)
		case '\r':
			dst = append(dst, "&#xD;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
