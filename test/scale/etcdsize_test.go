/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"testing"
)

func TestResourceOf(t *testing.T) {
	for name, tc := range map[string]struct {
		key, resource string
		ok            bool
	}{
		"core kind":           {key: "/registry/secrets/bench/account-000001-token", resource: "secrets", ok: true},
		"custom resource":     {key: "/registry/platform.wechat-operator.dev/wechatauthorizers/bench/account-000001", resource: "wechatauthorizers", ok: true},
		"other namespace":     {key: "/registry/secrets/kube-system/x", ok: false},
		"cluster-scoped":      {key: "/registry/namespaces/bench", ok: false},
		"namespace-like name": {key: "/registry/apiregistration.k8s.io/apiservices/bench", ok: false},
	} {
		t.Run(name, func(t *testing.T) {
			resource, ok := resourceOf(tc.key, "bench")
			if resource != tc.resource || ok != tc.ok {
				t.Errorf("resourceOf(%q) = %q, %v; want %q, %v", tc.key, resource, ok, tc.resource, tc.ok)
			}
		})
	}
}

// fakeEtcd answers /v3/kv/range from a sorted key set, limit keys a page, as etcd does.
func fakeEtcd(t *testing.T, kvs map[string]string) *url.URL {
	keys := make([]string, 0, len(kvs))
	for k := range kvs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Key      []byte `json:"key"`
			RangeEnd []byte `json:"range_end"`
			Limit    int    `json:"limit"`
		}
		if r.URL.Path != "/v3/kv/range" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		type kv struct{ Key, Value string }
		var out struct {
			Kvs  []kv `json:"kvs"`
			More bool `json:"more"`
		}
		for _, k := range keys {
			if k < string(req.Key) || k >= string(req.RangeEnd) {
				continue
			}
			if len(out.Kvs) == req.Limit {
				out.More = true
				break
			}
			b64 := base64.StdEncoding.EncodeToString
			out.Kvs = append(out.Kvs, kv{Key: b64([]byte(k)), Value: b64([]byte(kvs[k]))})
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u
}

func TestMeasureEtcdPagesThroughEveryKey(t *testing.T) {
	kvs := map[string]string{"/registry/namespaces/bench": "ns", "/registry/secrets/other/s": "xxxxxxxxxx"}
	want := etcdUsage{}
	for i := range 4500 { // more than two pages of 2,000
		k := "/registry/secrets/bench/s" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		kvs[k] = "value"
		want["secrets"] += int64(len(k) + len("value"))
	}
	a := "/registry/platform.wechat-operator.dev/wechatauthorizers/bench/a"
	kvs[a] = `{"kind":"WeChatAuthorizer"}`
	want["wechatauthorizers"] = int64(len(a) + len(kvs[a]))

	got, err := measureEtcd(context.Background(), fakeEtcd(t, kvs), "bench")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || got["secrets"] != want["secrets"] || got["wechatauthorizers"] != want["wechatauthorizers"] {
		t.Errorf("measureEtcd = %v, want %v", got, want)
	}
}

func TestPerAuthorizer(t *testing.T) {
	got := etcdUsage{"secrets": 3000, "wechatauthorizers": 5000, "events": 1000}.perAuthorizer(2)
	if want := "4500 bytes (wechatauthorizers 2500, secrets 1500, events 500)"; got != want {
		t.Errorf("perAuthorizer = %q, want %q", got, want)
	}
}
