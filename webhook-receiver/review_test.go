/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"testing"
	"time"
)

// An expires_in past what a Duration holds in nanoseconds must not wrap around into a
// negative lifetime: the code would be written already expired (a wasted status write and
// rate-limit token, and a genuine code lost to the manager).
func TestTheRedirectPageCapsAnExpiresInThatOverflows(t *testing.T) {
	e := newMsgEnv(t)
	state := e.state(tToken, tComponent, e.clock.Now().Add(time.Hour))
	for _, expiresIn := range []string{"9223372037", "18446744073"} {
		code := "queryauthcode@@@overflow" + expiresIn
		if got := e.redirect(code, expiresIn, state); got.code != 200 {
			t.Fatalf("expires_in=%s: HTTP %d", expiresIn, got.code)
		}
		var found bool
		for _, p := range e.component().Status.PendingAuthorizationCodes {
			if p.Code != code {
				continue
			}
			found = true
			if !p.ExpiresAt.Time.Equal(e.clock.Now().Add(maxCodeLifetime)) {
				t.Errorf("expires_in=%s: the code expires at %s, want an hour from now (%s)", expiresIn, p.ExpiresAt.Time, e.clock.Now().Add(maxCodeLifetime))
			}
		}
		if !found {
			t.Errorf("expires_in=%s: the code was not recorded", expiresIn)
		}
	}
}
