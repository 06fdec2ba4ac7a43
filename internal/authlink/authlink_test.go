/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package authlink

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/authstate"
)

const (
	tToken  = "demoToken"
	tAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	tCode   = "preauthcode@@@Cx_Dk6qiBE0Dmx4EmlT3oRfArPvwSQ-oa3NL_fwHM7VI08r52wazoZX2Rhpz1dEw"
)

func TestASealedCodeOpensOnlyForItsComponentAndRequest(t *testing.T) {
	key := SealKey(tToken, tAESKey)
	sealed, err := Seal(key, "team-a", "platform", "request-0123456789", tCode)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "Cx_Dk6") || !strings.HasPrefix(sealed, "v1.") {
		t.Fatalf("sealed = %q: the code shows, or the version is missing", sealed)
	}
	got, err := Open(key, "team-a", "platform", "request-0123456789", sealed)
	if err != nil || got != tCode {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := Seal(key, "team-a", "platform", "request-0123456789", tCode)
	if other == sealed {
		t.Fatal("two seals of the same code are equal: the nonce is not random")
	}
	cases := map[string]struct {
		key                []byte
		ns, name, id, text string
		want               error
	}{
		"another request":             {key, "team-a", "platform", "request-other-00000", sealed, ErrForged},
		"another component":           {key, "team-a", "platform2", "request-0123456789", sealed, ErrForged},
		"another namespace":           {key, "team-b", "platform", "request-0123456789", sealed, ErrForged},
		"another platform's Token":    {SealKey("otherToken", tAESKey), "team-a", "platform", "request-0123456789", sealed, ErrForged},
		"the state key":               {authstate.Key(tToken, tAESKey), "team-a", "platform", "request-0123456789", sealed, ErrForged},
		"a flipped byte":              {key, "team-a", "platform", "request-0123456789", sealed[:10] + string(sealed[10]^1) + sealed[11:], nil},
		"no version":                  {key, "team-a", "platform", "request-0123456789", strings.TrimPrefix(sealed, "v1."), ErrMalformed},
		"padded base64":               {key, "team-a", "platform", "request-0123456789", sealed + "==", ErrMalformed},
		"too short":                   {key, "team-a", "platform", "request-0123456789", "v1.AAAA", ErrMalformed},
		"over the length cap":         {key, "team-a", "platform", "request-0123456789", "v1." + strings.Repeat("A", MaxSealedLength), ErrMalformed},
		"the code itself, not sealed": {key, "team-a", "platform", "request-0123456789", tCode, ErrMalformed},
	}
	for name, tc := range cases {
		got, err := Open(tc.key, tc.ns, tc.name, tc.id, tc.text)
		if err == nil || got != "" {
			t.Errorf("%s: Open = %q, %v; want refused", name, got, err)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
	}
	if _, err := Seal(key, "team-a", "platform", "r", strings.Repeat("x", maxCodeLength+1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("sealing an overlong code: %v", err)
	}
}

func TestWithStateSignsTheRedirectURIForTheLandingPage(t *testing.T) {
	key := authstate.Key(tToken, tAESKey)
	now := time.Unix(1_800_000_000, 0)
	got, err := WithState("https://wx.example.com/wechat/team-a/platform/authorized?from=page", key, "team-a", "platform", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.RawQuery, "from=page&state=") {
		t.Fatalf("query %q: the existing parameter must stay first, the state follow", u.RawQuery)
	}
	expires, err := authstate.Verify(key, "team-a", "platform", u.Query().Get(authstate.Param), now)
	if err != nil || !expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("the landing page's check: %v, expires %s", err, expires)
	}
	for _, bad := range []string{"ftp://wx.example.com/x", "/relative", "https://wx.example.com/x?state=1", "https://wx.example.com/x#frag", "https:///nohost"} {
		if _, err := WithState(bad, key, "team-a", "platform", now.Add(time.Hour)); err == nil {
			t.Errorf("WithState(%q) accepted", bad)
		}
	}
}

// FuzzOpen: a sealed value comes from status, which whoever holds the receiver's
// credentials can write; Open must refuse junk without panicking.
func FuzzOpen(f *testing.F) {
	key := SealKey(tToken, tAESKey)
	sealed, _ := Seal(key, "ns", "c", "id", tCode)
	f.Add(sealed)
	f.Add("v1.")
	f.Add("v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Open(key, "ns", "c", "id", s)
		// Only what Seal made opens: a forgery would need the key.
		if err == nil && (s != sealed || got != tCode) {
			t.Fatalf("Open accepted %q as %q", s, got)
		}
	})
}
