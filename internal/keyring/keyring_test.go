/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package keyring

import "testing"

func TestParseKey(t *testing.T) {
	cases := map[string]struct {
		key       string
		ns, name  string
		wantValid bool
	}{
		"token entry":               {TokenKey("team-a", "platform"), "team-a", "platform", true},
		"key entry":                 {AESKeyKey("team-a", "platform"), "team-a", "platform", true},
		"a resource name with dots": {TokenKey("team-a", "platform.v2"), "team-a", "platform.v2", true},
		"an unknown suffix":         {"team-a.platform.appSecret", "", "", false},
		"no namespace":              {".platform.token", "", "", false},
		"nothing before the suffix": {".token", "", "", false},
		"a namespace but no name":   {"team-a..token", "", "", false},
		"forward key entry":         {ForwardKeyKey("team-a", "platform"), "team-a", "platform", true},
		"an authorizer's entry":     {AuthorizerForwardKeyKey("team-a", "platform"), "", "", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns, n, ok := ParseKey(tc.key)
			if ok != tc.wantValid || (ok && (ns != tc.ns || n != tc.name)) {
				t.Errorf("ParseKey(%q) = %q, %q, %v; want %q, %q, %v", tc.key, ns, n, ok, tc.ns, tc.name, tc.wantValid)
			}
		})
	}
}

func TestParseAuthorizerKey(t *testing.T) {
	cases := map[string]struct {
		key       string
		ns, name  string
		wantValid bool
	}{
		"forward key entry":                     {AuthorizerForwardKeyKey("team-a", "shop"), "team-a", "shop", true},
		"a name with dots":                      {AuthorizerForwardKeyKey("team-a", "shop.v2"), "team-a", "shop.v2", true},
		"a component's forward key":             {ForwardKeyKey("team-a", "shop"), "", "", false},
		"a component's token":                   {TokenKey("team-a", "shop"), "", "", false},
		"a component named like the suffix":     {TokenKey("team-a", "x.authorizerForwardKey"), "", "", false},
		"nothing before the suffix":             {".authorizerForwardKey", "", "", false},
		"a namespace but no name":               {"team-a..authorizerForwardKey", "", "", false},
		"an authorizer named like a token key":  {AuthorizerForwardKeyKey("team-a", "shop.token"), "team-a", "shop.token", true},
		"suffix case differs (keys are binary)": {"team-a.shop.AuthorizerForwardKey", "", "", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns, n, ok := ParseAuthorizerKey(tc.key)
			if ok != tc.wantValid || (ok && (ns != tc.ns || n != tc.name)) {
				t.Errorf("ParseAuthorizerKey(%q) = %q, %q, %v; want %q, %q, %v", tc.key, ns, n, ok, tc.ns, tc.name, tc.wantValid)
			}
		})
	}
}

func TestKindsNeverShareAnEntry(t *testing.T) {
	// A component and an authorizer of the same name in the same namespace.
	entries := []string{TokenKey("ns", "x"), AESKeyKey("ns", "x"), ForwardKeyKey("ns", "x"), AuthorizerForwardKeyKey("ns", "x")}
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e] {
			t.Fatalf("entry %q is used twice", e)
		}
		seen[e] = true
	}
}
