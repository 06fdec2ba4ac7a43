/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package refreshtokens

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// Tokens in these tests are spelled so that any leak is found by one substring search.
const leak = "SECRET"

func TestParseRefreshTokens(t *testing.T) {
	const (
		a = "wx00000000000000a1"
		b = "wx00000000000000b2"
	)
	cases := []struct {
		name  string
		in    string
		want  []Line
		lines []string // the line errors, in order; each must name its line
	}{
		{name: "comments, blank lines, CRLF, spaces, header",
			in:   "# exported from redis\r\nappid,refresh_token\r\n\r\n  " + a + " , r1" + leak + "  \r\n\n# x\n" + b + ",r2" + leak,
			want: []Line{{Line: 4, AppID: a, RefreshToken: "r1" + leak}, {Line: 7, AppID: b, RefreshToken: "r2" + leak}}},
		{name: "empty input", in: "", want: nil},
		{name: "a header after data is data", in: a + ",r1" + leak + "\nappid,refresh_token\n",
			lines: []string{"line 2: the appid is not"}},
		{name: "no comma", in: a + " r1" + leak + "\n", lines: []string{"line 1: want appid,refresh_token"}},
		{name: "fields swapped: the token is not quoted as an appid", in: "\n" + "refresh" + leak + "," + a + "\n",
			lines: []string{"line 2: the appid is not wx"}},
		{name: "uppercase appid", in: "wx00000000000000A1,r" + leak, lines: []string{"line 1: the appid is not"}},
		{name: "empty token", in: a + ",\n", lines: []string{"line 1: appid " + a + " has an empty refresh token"}},
		{name: "three fields", in: a + ",r1" + leak + ",extra" + leak, lines: []string{"line 1: appid " + a + ": the refresh token contains a comma"}},
		{name: "space inside the token", in: a + ",r1 " + leak, lines: []string{"line 1: appid " + a + ": the refresh token contains"}},
		{name: "duplicate appid, all errors reported", in: a + ",r1" + leak + "\n" + b + ",r2" + leak + "\n" + a + ",r3" + leak + "\nnocomma" + leak,
			lines: []string{"line 3: appid " + a + " is already on line 1", "line 4: want appid,refresh_token"}},
		{name: "line too long", in: a + ",r1" + leak + "\n" + a + "," + strings.Repeat(leak, maxRefreshTokenLine) + "\n",
			lines: []string{"line 2: longer than"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in))
			if tc.lines == nil {
				if err != nil || !slices.Equal(got, tc.want) {
					t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			var le *LineErrors
			if !errors.As(err, &le) || got != nil {
				t.Fatalf("got %+v, %v; want line errors", got, err)
			}
			if len(le.Lines) != len(tc.lines) {
				t.Fatalf("errors %q, want %d", le.Lines, len(tc.lines))
			}
			for i, want := range tc.lines {
				if !strings.HasPrefix(le.Lines[i], want) {
					t.Errorf("error %d = %q, want prefix %q", i, le.Lines[i], want)
				}
			}
			if strings.Contains(err.Error(), leak) {
				t.Fatalf("an error quotes a token: %q", err)
			}
		})
	}
}

func TestParseRefreshTokensCapsErrors(t *testing.T) {
	in := strings.Repeat("bad"+leak+"\n", maxLineErrors+5)
	_, err := Parse(strings.NewReader(in))
	var le *LineErrors
	if !errors.As(err, &le) || le.Total != maxLineErrors+5 || len(le.Lines) != maxLineErrors ||
		!strings.HasSuffix(err.Error(), "and 5 more invalid lines") {
		t.Fatalf("got %v", err)
	}
}

func TestFormatRefreshTokensRoundTrip(t *testing.T) {
	in := []Line{{AppID: "wx00000000000000a1", RefreshToken: "r1@@@x"}, {AppID: "wx00000000000000b2", RefreshToken: "r2"}}
	var buf bytes.Buffer
	if err := Format(&buf, "two\nlines", in); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].Line = 0
	}
	if !slices.Equal(got, in) {
		t.Fatalf("round trip %+v, want %+v", got, in)
	}
}

// FuzzParseRefreshTokens: any input either parses into valid accounts or yields errors
// that quote no token-looking field; what parses formats back to the same accounts.
func FuzzParseRefreshTokens(f *testing.F) {
	f.Add("wx00000000000000a1,r1\n# c\n\nwx00000000000000b2, r2\r\n")
	f.Add("appid,refresh_token\nr1,wx00000000000000a1\n")
	f.Add("wx00000000000000a1,r1\nwx00000000000000a1,r2\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Parse(strings.NewReader(in))
		if err != nil {
			var le *LineErrors
			if errors.As(err, &le) {
				for _, e := range le.Lines {
					// An error may quote only a validated appid.
					for _, w := range strings.Fields(e) {
						if strings.HasPrefix(w, "wx") && len(w) > 2 && !AppIDPattern.MatchString(strings.TrimRight(w, ":")) {
							t.Fatalf("error quotes %q: %q", w, e)
						}
					}
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, l := range got {
			if !AppIDPattern.MatchString(l.AppID) || l.RefreshToken == "" || seen[l.AppID] {
				t.Fatalf("accepted %+v", l)
			}
			seen[l.AppID] = true
		}
		var buf bytes.Buffer
		if err := Format(&buf, "c", got); err != nil {
			t.Fatal(err)
		}
		again, err := Parse(&buf)
		if err != nil || len(again) != len(got) {
			t.Fatalf("reformatted: %v, %d accounts, want %d", err, len(again), len(got))
		}
		for i := range got {
			if again[i].AppID != got[i].AppID || again[i].RefreshToken != got[i].RefreshToken {
				t.Fatalf("reformatted %+v, want %+v", again[i], got[i])
			}
		}
	})
}
