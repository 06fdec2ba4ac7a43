/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package watchdecode

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// apiServer serves a watch of WeChatAuthorizers as the API server does: the stream, or for
// ?status=410 the error it answers an expired resourceVersion with, or for ?yaml=1 a body of
// another media type.
func apiServer(t *testing.T, stream []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") != "true" {
			http.NotFound(w, r)
			return
		}
		switch {
		case r.URL.Query().Get("resourceVersion") == "expired":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusGone)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version","reason":"Expired","code":410}`))
		case r.URL.Query().Get("resourceVersion") == "yaml":
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write([]byte("type: ADDED\nobject:\n  apiVersion: platform.wechat-operator.dev/v1alpha1\n  kind: WeChatAuthorizer\n  metadata:\n    name: from-yaml\n"))
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(stream)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// authorizersListWatch is the ListWatch NewInformer's hook makes of the one a cache builds for
// the authorizers in namespace ns, against srv, with or without Transport.
func authorizersListWatch(t *testing.T, srv *httptest.Server, withTransport bool) toolscache.ListerWatcherWithContext {
	t.Helper()
	scheme := testScheme(t)
	cfg := &rest.Config{Host: srv.URL, APIPath: "/apis", ContentConfig: rest.ContentConfig{
		GroupVersion:         &wechatv1alpha1.GroupVersion,
		NegotiatedSerializer: serializer.WithoutConversionCodecFactory{CodecFactory: serializer.NewCodecFactory(scheme)},
	}}
	if withTransport {
		cfg.Wrap(Transport)
	}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	inner := toolscache.NewListWatchFromClient(rc, "wechatauthorizers", "ns", fields.Everything())
	return listWatch(inner, authorizerType(t))
}

func events(t *testing.T, w watch.Interface) []watch.Event {
	t.Helper()
	defer w.Stop()
	var out []watch.Event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatal("the watch did not end with its stream")
		}
	}
}

// TestWatchHandedOver: with Transport, a watch's JSON stream is decoded here and yields what
// client-go's own watch yields without it; a response that is not a JSON stream (an error, or
// another media type) stays client-go's, as does every watch without Transport.
func TestWatchHandedOver(t *testing.T) {
	var stream bytes.Buffer
	f := filler(3)
	encodeEvent(t, &stream, watch.Added, filledAuthorizer(f), authorizerTypeMeta)
	encodeEvent(t, &stream, watch.Modified, filledAuthorizer(f), authorizerTypeMeta)
	srv := apiServer(t, stream.Bytes())
	watchOnce := func(withTransport bool, resourceVersion string) (evs []watch.Event, handed int64, err error) {
		before := DecodedStreams("WeChatAuthorizer")
		w, err := authorizersListWatch(t, srv, withTransport).WatchWithContext(context.Background(), metav1.ListOptions{ResourceVersion: resourceVersion})
		if err != nil {
			return nil, DecodedStreams("WeChatAuthorizer") - before, err
		}
		return events(t, w), DecodedStreams("WeChatAuthorizer") - before, nil
	}

	want, handed, err := watchOnce(false, "")
	if err != nil || handed != 0 || len(want) != 2 {
		t.Fatalf("client-go's watch: %d events, %v, %d handed over", len(want), err, handed)
	}
	got, handed, err := watchOnce(true, "")
	if err != nil || handed != 1 {
		t.Fatalf("with Transport: %v, %d handed over, want 1", err, handed)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("with Transport:\n got %#v\nwant %#v", got, want)
	}

	_, handed, err = watchOnce(true, "expired")
	if err == nil || handed != 0 {
		t.Fatalf("an error response: %v, %d handed over; want client-go's error and none", err, handed)
	}
	if _, _, clientGoErr := watchOnce(false, "expired"); clientGoErr == nil || err.Error() != clientGoErr.Error() {
		t.Fatalf("an error response: %v, client-go: %v", err, clientGoErr)
	}

	got, handed, err = watchOnce(true, "yaml")
	if handed != 0 {
		t.Fatalf("a YAML response was handed over")
	}
	want, _, clientGoErr := watchOnce(false, "yaml")
	if (err == nil) != (clientGoErr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("a YAML response: %v, %v; client-go: %v, %v", got, err, want, clientGoErr)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTransportHandsOverItsMediaType: Transport takes the body of a successful response to a
// watch that asked for it in the media type that watch decodes, and of nothing else: a stream
// client-go can decode and the watch cannot (YAML, CBOR, JSON for a protobuf watch, protobuf
// for a JSON one) stays client-go's.
func TestTransportHandsOverItsMediaType(t *testing.T) {
	for _, tc := range []struct {
		watch, response string
		handed          bool
	}{
		{runtime.ContentTypeJSON, "application/json", true},
		{runtime.ContentTypeJSON, "application/json;stream=watch", true},
		{runtime.ContentTypeJSON, "application/vnd.kubernetes.protobuf;stream=watch", false},
		{runtime.ContentTypeJSON, "application/cbor-seq", false},
		{runtime.ContentTypeJSON, "", false},
		{runtime.ContentTypeProtobuf, "application/vnd.kubernetes.protobuf;stream=watch", true},
		{runtime.ContentTypeProtobuf, "application/vnd.kubernetes.protobuf", true},
		{runtime.ContentTypeProtobuf, "application/json", false},
		{runtime.ContentTypeProtobuf, "application/yaml", false},
		{runtime.ContentTypeProtobuf, "", false},
	} {
		t.Run(tc.watch+" watch, "+tc.response, func(t *testing.T) {
			body := io.NopCloser(strings.NewReader("{}"))
			next := roundTripperFunc(func(*http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {tc.response}}, Body: body}, nil
			})
			h := &handover{mediaType: tc.watch}
			req := httptest.NewRequest(http.MethodGet, "/apis/x?watch=true", nil).WithContext(context.WithValue(context.Background(), handoverKey{}, h))
			resp, err := Transport(next).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := h.take() == body; got != tc.handed {
				t.Fatalf("handed over: %v, want %v", got, tc.handed)
			}
			if tc.handed == (resp.Body == body) {
				t.Fatalf("client-go got the body: %v, want %v", resp.Body == body, !tc.handed)
			}
		})
	}
}
