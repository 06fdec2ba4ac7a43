/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import "net/http"

// SetListRefreshTokens says whether api_get_authorizer_list of a component lists each
// account's refresh_token (the default) or leaves it empty, as WeChat did for some
// platforms in 2023. Everything else about the list, and api_authorizer_token with the real
// refresh token, is unchanged.
func (s *Simulator) SetListRefreshTokens(componentAppID string, listed bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.components[componentAppID]
	if !ok {
		return ErrUnknownComponent
	}
	c.listOmitsRefreshTokens = !listed
	return nil
}

func (s *Simulator) adminListRefreshTokens(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ComponentAppID string `json:"component_appid"`
		Listed         bool   `json:"listed"`
	}
	if !decodeAdmin(w, r, &body) {
		return
	}
	if err := s.SetListRefreshTokens(body.ComponentAppID, body.Listed); err != nil {
		adminError(w, statusFor(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"component_appid": body.ComponentAppID, "listed": body.Listed})
}
