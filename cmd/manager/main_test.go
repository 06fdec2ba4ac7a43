/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/rest"
)

// acceptEncoding is the Accept-Encoding a request through config's client carries.
func acceptEncoding(t *testing.T, compression bool) string {
	t.Helper()
	got := make(chan string, 1)
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("HTTP/%d, want HTTP/2 as the API server speaks it", r.ProtoMajor)
		}
		got <- r.Header.Get("Accept-Encoding")
	}))
	server.EnableHTTP2 = true
	server.StartTLS()
	defer server.Close()
	c := &rest.Config{Host: server.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	configureKubeClient(c, 100, 200, compression)
	client, err := rest.HTTPClientFor(c)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(server.URL + "/api")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return <-got
}

// TestKubeClientAsksForNoGzip: by default the manager's requests do not ask the API server
// to compress (Go's transport would add gzip by itself); --kube-api-compression asks again.
func TestKubeClientAsksForNoGzip(t *testing.T) {
	if enc := acceptEncoding(t, false); enc != "" {
		t.Errorf("Accept-Encoding %q without --kube-api-compression, want none", enc)
	}
	if enc := acceptEncoding(t, true); enc != "gzip" {
		t.Errorf("Accept-Encoding %q with --kube-api-compression, want gzip", enc)
	}
}
