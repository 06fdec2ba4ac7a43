/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package authstate

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

const testAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

func TestAStateVerifiesOnlyForItsPlatformAndUntilItExpires(t *testing.T) {
	key := Key("platform-token", testAESKey)
	state, err := Sign(key, "team-a", "platform", now.Add(DefaultLifetime))
	if err != nil {
		t.Fatal(err)
	}
	if len(state) > MaxLength {
		t.Fatalf("a signed state is %d characters, over MaxLength %d", len(state), MaxLength)
	}
	expires, err := Verify(key, "team-a", "platform", state, now)
	if err != nil || !expires.Equal(now.Add(DefaultLifetime)) {
		t.Fatalf("Verify = %s, %v; want the expiry it was signed with", expires, err)
	}
	other, _ := Sign(key, "team-a", "platform", now.Add(DefaultLifetime))
	if other == state {
		t.Fatal("two states are equal: the nonce is not random")
	}
	// One bit of the MAC flipped, re-encoded canonically: flipping a bit of its text could
	// give a character outside base64 (malformed, not forged), depending on the nonce.
	parts := strings.Split(state, ".")
	mac, err := b64.DecodeString(parts[3])
	if err != nil {
		t.Fatal(err)
	}
	mac[len(mac)/2] ^= 1
	parts[3] = b64.EncodeToString(mac)
	flipped := strings.Join(parts, ".")
	cases := map[string]struct {
		key             []byte
		namespace, name string
		state           string
		at              time.Time
		want            error
	}{
		"another platform's token":         {Key("other-token", testAESKey), "team-a", "platform", state, now, ErrForged},
		"another component name":           {key, "team-a", "platform2", state, now, ErrForged},
		"another namespace":                {key, "team-b", "platform", state, now, ErrForged},
		"a flipped bit":                    {key, "team-a", "platform", flipped, now, ErrForged},
		"a second before it expires":       {key, "team-a", "platform", state, now.Add(DefaultLifetime - time.Second), nil},
		"the second it expires":            {key, "team-a", "platform", state, now.Add(DefaultLifetime), ErrExpired},
		"no state":                         {key, "team-a", "platform", "", now, ErrMalformed},
		"an upper-case version":            {key, "team-a", "platform", "V" + state[1:], now, ErrMalformed},
		"a state with a part added":        {key, "team-a", "platform", state + ".x", now, ErrMalformed},
		"a state far too long":             {key, "team-a", "platform", strings.Repeat("a", MaxLength+1), now, ErrMalformed},
		"an expiry with a leading zero":    {key, "team-a", "platform", strings.Replace(state, ".", ".0", 1), now, ErrMalformed},
		"an expiry with a plus sign":       {key, "team-a", "platform", strings.Replace(state, ".", ".+", 1), now, ErrMalformed},
		"a nonce in padded base64":         {key, "team-a", "platform", padNonce(state), now, ErrMalformed},
		"the same link a day and more off": {key, "team-a", "platform", state, now.Add(-MaxLifetime), ErrExpired},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(tc.key, tc.namespace, tc.name, tc.state, tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func padNonce(state string) string {
	p := strings.Split(state, ".")
	p[2] += "=="
	return strings.Join(p, ".")
}

func TestTheKeyDependsOnTheTokenAndIsNotTheToken(t *testing.T) {
	a, b := Key("token-a", testAESKey), Key("token-b", testAESKey)
	if string(a) == string(b) {
		t.Fatal("two tokens give the same key")
	}
	if strings.Contains(string(a), "token-a") || len(a) != 32 {
		t.Fatalf("the key is %d bytes and contains the token", len(a))
	}
}

func FuzzParse(f *testing.F) {
	key := Key("fuzz-token", testAESKey)
	// A fixed nonce: fuzz workers are other processes and must agree on the one good state.
	good := sign(key, "ns", "c", now.Add(time.Hour), make([]byte, nonceLen))
	f.Add(good)
	f.Add("v1.1.AAAAAAAAAAAAAAAA.")
	f.Add("v1..." + strings.Repeat("A", 43))
	f.Add("")
	f.Fuzz(func(t *testing.T, state string) {
		p, err := Parse(state)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v is not ErrMalformed", err)
			}
			return
		}
		if len(state) > MaxLength || len(p.MAC) != macLen || p.Expires.Unix() <= 0 {
			t.Fatalf("accepted %q as %+v", state, p)
		}
		// Only the canonical form parses: re-assembling it gives back the input.
		if version+"."+p.expiresText+"."+p.Nonce+"."+b64.EncodeToString(p.MAC) != state {
			t.Fatalf("%q is not canonical but parsed", state)
		}
		if _, err := Verify(key, "ns", "c", state, now); err == nil && state != good {
			t.Fatalf("a state not signed here verified: %q", state)
		}
	})
}

// A link's state is handed to people outside the cluster (the administrator who authorizes,
// and whoever sees the link). WeChat's Token is 3 to 32 letters and digits, often short: were
// the key derived from it alone, one state would let its holder test Token guesses offline.
// The EncodingAESKey (43 characters, 256 bits) is in the key, so a guess must cover it too.
func TestTheKeyIsNotDerivedFromTheTokenAlone(t *testing.T) {
	const token = "abc123"
	a := Key(token, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
	b := Key(token, "bbcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
	if string(a) == string(b) {
		t.Fatal("two platforms with the same Token but different EncodingAESKeys have the same state key")
	}
	if string(Key("abc124", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")) == string(a) {
		t.Fatal("the Token is not in the key: changing it would not revoke outstanding links")
	}
}
