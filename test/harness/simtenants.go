/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"context"
	"net/http"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// More of wechat-sim's admin API (docs/simulator.md): the fault tests add a platform and its
// accounts per scenario to a running simulator, and look at its pushes.

// PutComponent adds a platform to the simulator, or updates its secrets and receiver URL.
func (a admin) PutComponent(ctx context.Context, seed wxsim.ComponentSeed) error {
	return a.Do(ctx, http.MethodPost, "/admin/components", seed, nil)
}

// PutAuthorizer adds or updates an account profile (authorized silently if seed.Authorized).
func (a admin) PutAuthorizer(ctx context.Context, seed wxsim.AuthorizerSeed) error {
	return a.Do(ctx, http.MethodPost, "/admin/authorizers", seed, nil)
}

// PushRecord is the outcome of one push of the simulator (no secret in it).
type PushRecord struct {
	ID              int       `json:"id"`
	ComponentAppID  string    `json:"component_appid"`
	InfoType        string    `json:"info_type"`
	AuthorizerAppID string    `json:"authorizer_appid"`
	CreateTime      time.Time `json:"create_time"`
	Attempts        int       `json:"attempts"`
	Delivered       bool      `json:"delivered"`
	LastError       string    `json:"last_error"`
}

// Pushes lists the simulator's last pushes, oldest first.
func (a admin) Pushes(ctx context.Context) ([]PushRecord, error) {
	var out struct {
		Pushes []PushRecord `json:"pushes"`
	}
	err := a.Do(ctx, http.MethodGet, "/admin/pushes", nil, &out)
	return out.Pushes, err
}

// Faults lists the scripted faults still armed, with the calls each has left in Count.
func (a admin) Faults(ctx context.Context) ([]Fault, error) {
	var out struct {
		Faults []Fault `json:"faults"`
	}
	err := a.Do(ctx, http.MethodGet, "/admin/faults", nil, &out)
	return out.Faults, err
}
