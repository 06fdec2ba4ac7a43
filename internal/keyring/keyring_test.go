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
