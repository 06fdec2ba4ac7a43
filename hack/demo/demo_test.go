/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// The demo seeds the simulator from config/samples; a sample edited into something the
// simulator (or the demo) cannot use must fail here, not minutes into `make demo-check`.
func TestSamplesSeedTheSimulator(t *testing.T) {
	dir := filepath.Join("..", "..", "config", "samples")
	// kubectl reads the files in a subprocess, unseen by Go's test cache; read them here too.
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	s, err := readSamples(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.componentSecret != s.componentName+"-component-token" || s.authorizerSecret != s.authorizerName+"-token" {
		t.Errorf("token Secret names %q, %q do not follow the defaults the consumer example mounts", s.componentSecret, s.authorizerSecret)
	}
	sim, err := wxsim.New(wxsim.Options{
		Components: []wxsim.ComponentSeed{{
			AppID: s.componentAppID, AppSecret: s.appSecret, Token: s.token, EncodingAESKey: s.encodingAESKey,
			ReceiverURL: "http://127.0.0.1:1/wechat/default/" + s.componentName + "/events",
		}},
		Authorizers: []wxsim.AuthorizerSeed{{ComponentAppID: s.componentAppID, AppID: s.authorizerAppID}},
	})
	if err != nil {
		t.Fatalf("the simulator rejects the credentials in config/samples: %v", err)
	}
	sim.Close()
}

func TestAuthorizersSetting(t *testing.T) {
	for value, want := range map[string]string{"": "auto", "auto": "auto", "1": "on", "on": "on", "true": "on", "0": "off", "off": "off"} {
		t.Setenv("DEMO_AUTHORIZERS", value)
		o, err := parseFlags(nil)
		if err != nil {
			t.Fatalf("DEMO_AUTHORIZERS=%q: %v", value, err)
		}
		if o.authorizers != want {
			t.Errorf("DEMO_AUTHORIZERS=%q: got %q, want %q", value, o.authorizers, want)
		}
	}
	t.Setenv("DEMO_AUTHORIZERS", "maybe")
	if _, err := parseFlags(nil); err == nil {
		t.Error("DEMO_AUTHORIZERS=maybe: want an error")
	}
	if o, err := parseFlags([]string{"--authorizers=off"}); err != nil || o.authorizers != "off" {
		t.Errorf("--authorizers=off overrides the environment: got %+v, %v", o, err)
	}
}
