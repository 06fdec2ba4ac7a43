/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// etcdUsage is what the benchmark's namespace holds in etcd at the current revision, in
// bytes of key and value as stored (Secrets and Events as protobuf, custom resources as
// JSON), by resource. History between two compactions comes on top (docs/operations.md).
type etcdUsage map[string]int64

// measureEtcd reads every key of namespace ns from etcd's JSON gateway (/v3/kv/range), a
// page at a time, and adds up their sizes by resource.
func measureEtcd(ctx context.Context, etcd *url.URL, ns string) (etcdUsage, error) {
	usage := etcdUsage{}
	key, end := "/registry/", "/registry0" // "0" follows "/": every key under /registry/
	for {
		page, err := etcdRange(ctx, etcd, key, end, 2000)
		if err != nil {
			return nil, err
		}
		for _, kv := range page.Kvs {
			if resource, ok := resourceOf(kv.Key, ns); ok {
				usage[resource] += int64(len(kv.Key) + len(kv.Value))
			}
		}
		if !page.More || len(page.Kvs) == 0 {
			return usage, nil
		}
		key = page.Kvs[len(page.Kvs)-1].Key + "\x00"
	}
}

// resourceOf names the resource of a key of namespace ns: /registry/<resource>/<ns>/<name>
// for core kinds, /registry/<group>/<resource>/<ns>/<name> for the others.
func resourceOf(key, ns string) (string, bool) {
	parts := strings.Split(strings.TrimPrefix(key, "/registry/"), "/")
	switch {
	case len(parts) == 3 && parts[1] == ns:
		return parts[0], true
	case len(parts) == 4 && parts[2] == ns:
		return parts[1], true
	}
	return "", false
}

type etcdKV struct {
	Key, Value string
}

type etcdPage struct {
	Kvs  []etcdKV
	More bool
}

// etcdRange is one Range call of etcd's v3 API through its JSON gateway, which takes and
// gives keys and values in base64.
func etcdRange(ctx context.Context, etcd *url.URL, key, end string, limit int) (etcdPage, error) {
	b64 := base64.StdEncoding.EncodeToString
	body, _ := json.Marshal(map[string]any{"key": b64([]byte(key)), "range_end": b64([]byte(end)), "limit": limit})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, etcd.JoinPath("/v3/kv/range").String(), bytes.NewReader(body))
	if err != nil {
		return etcdPage{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return etcdPage{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return etcdPage{}, fmt.Errorf("etcd range: %s", resp.Status)
	}
	var raw struct {
		Kvs []struct {
			Key, Value []byte // base64 in JSON: encoding/json decodes it into []byte
		}
		More bool
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return etcdPage{}, fmt.Errorf("etcd range: %w", err)
	}
	page := etcdPage{More: raw.More}
	for _, kv := range raw.Kvs {
		page.Kvs = append(page.Kvs, etcdKV{Key: string(kv.Key), Value: string(kv.Value)})
	}
	return page, nil
}

// perAuthorizer is the namespace's bytes divided by the authorizers in it, with the
// largest resources named.
func (u etcdUsage) perAuthorizer(n int) string {
	var total int64
	resources := make([]string, 0, len(u))
	for r, b := range u {
		total += b
		resources = append(resources, r)
	}
	slices.SortFunc(resources, func(a, b string) int { return int(u[b] - u[a]) })
	parts := make([]string, 0, len(resources))
	for _, r := range resources {
		parts = append(parts, fmt.Sprintf("%s %.0f", r, float64(u[r])/float64(n)))
	}
	return fmt.Sprintf("%.0f bytes (%s)", float64(total)/float64(n), strings.Join(parts, ", "))
}
