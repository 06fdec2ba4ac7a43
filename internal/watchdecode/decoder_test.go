/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package watchdecode

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	restclientwatch "k8s.io/client-go/rest/watch"
	"sigs.k8s.io/randfill"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// testScheme is the manager's scheme, which client-go's decoder has in the manager (this
// package's own, newScheme, holds only what its fallback needs).
func testScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := wechatv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func authorizerType(t testing.TB) objectType { return authorizerTypeDropping(t, false) }

func authorizerTypeDropping(t testing.TB, dropManagedFields bool) objectType {
	t.Helper()
	return watchedType(t, wechatv1alpha1.AddToScheme, &wechatv1alpha1.WeChatAuthorizer{}, dropManagedFields)
}

// watchedType is what NewInformer makes of obj's type, which addToScheme registers.
func watchedType(t testing.TB, addToScheme func(*runtime.Scheme) error, obj runtime.Object, dropManagedFields bool) objectType {
	t.Helper()
	scheme, err := newScheme(addToScheme)
	if err != nil {
		t.Fatal(err)
	}
	ot, err := newObjectType(scheme, obj, dropManagedFields)
	if err != nil {
		t.Fatal(err)
	}
	return ot
}

// decoded is what a decoder made of a stream: its events up to its first error.
type decoded struct {
	events []watch.Event
	err    error
}

// clientGo decodes a stream as client-go's rest.Request.Watch does for a JSON response, with
// the decoder controller-runtime's REST clients negotiate.
func clientGo(t testing.TB, scheme *runtime.Scheme, stream []byte) decoded {
	t.Helper()
	return clientGoDecoder(scheme)(stream)
}

func clientGoDecoder(scheme *runtime.Scheme) func(stream []byte) decoded {
	return clientGoWatch(scheme, runtime.ContentTypeJSON, wechatv1alpha1.GroupVersion)
}

// clientGoWatch decodes a stream as client-go's rest.Request.Watch does for a response of
// mediaType, with the decoder controller-runtime's REST clients negotiate for gv.
func clientGoWatch(scheme *runtime.Scheme, mediaType string, gv schema.GroupVersion) func(stream []byte) decoded {
	codecs := serializer.WithoutConversionCodecFactory{CodecFactory: serializer.NewCodecFactory(scheme)}
	info, _ := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaType)
	objects := codecs.DecoderToVersion(info.Serializer, gv)
	return func(stream []byte) decoded {
		frames := info.StreamSerializer.Framer.NewFrameReader(io.NopCloser(bytes.NewReader(stream)))
		return drain(restclientwatch.NewDecoder(streaming.NewDecoder(frames, info.StreamSerializer.Serializer), objects))
	}
}

func ours(t testing.TB, stream []byte) decoded {
	t.Helper()
	return drain(newJSONDecoder(io.NopCloser(bytes.NewReader(stream)), authorizerType(t)))
}

func drain(d watch.Decoder) decoded {
	var out decoded
	for {
		typ, obj, err := d.Decode()
		if err != nil {
			out.err = err
			return out
		}
		out.events = append(out.events, watch.Event{Type: typ, Object: obj})
	}
}

// encodeEvent writes an event as the API server does for a custom resource: the object as
// JSON with its apiVersion and kind, inside {"type":…,"object":…}, one per line.
func encodeEvent(t testing.TB, buf *bytes.Buffer, typ watch.EventType, obj runtime.Object, gvk metav1.TypeMeta) {
	t.Helper()
	obj = obj.DeepCopyObject()
	obj.GetObjectKind().SetGroupVersionKind(gvk.GroupVersionKind())
	raw, err := stdjson.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := stdjson.NewEncoder(buf).Encode(metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: raw}}); err != nil {
		t.Fatal(err)
	}
}

var authorizerTypeMeta = metav1.TypeMeta{APIVersion: wechatv1alpha1.GroupVersion.String(), Kind: "WeChatAuthorizer"}

// filledAuthorizer is an authorizer with every field set, to random values.
func filledAuthorizer(f *randfill.Filler) *wechatv1alpha1.WeChatAuthorizer {
	a := &wechatv1alpha1.WeChatAuthorizer{}
	f.Fill(a)
	return a
}

func filler(seed int64) *randfill.Filler {
	return randfill.NewWithSeed(seed).NilChance(0.1).NumElements(1, 3).Funcs(
		// Times travel as RFC 3339 seconds; random nanoseconds would only test that.
		func(t *metav1.Time, c randfill.Continue) {
			*t = metav1.Unix(c.Int63n(4e9), 0)
		},
		// managedFields hold JSON.
		func(f *metav1.FieldsV1, c randfill.Continue) {
			f.SetRawString(`{"f:spec":{".":{},"f:appID":{}}}`)
		},
	)
}

// TestDecodesLikeClientGo: for a stream of every event type, the authorizers filled with
// random values in every field, the decoder returns what client-go's watch decoder returns:
// the same events, the same objects (type information cleared), and the same end.
func TestDecodesLikeClientGo(t *testing.T) {
	scheme := testScheme(t)
	dropping := authorizerTypeDropping(t, true)
	withManagedFields := 0
	defer func() {
		if withManagedFields < 15 {
			t.Errorf("the filler left managedFields empty in %d of 20 seeds' first authorizer", 20-withManagedFields)
		}
	}()
	for seed := range int64(20) {
		f := filler(seed)
		var stream bytes.Buffer
		for _, typ := range []watch.EventType{watch.Added, watch.Modified, watch.Deleted} {
			encodeEvent(t, &stream, typ, filledAuthorizer(f), authorizerTypeMeta)
		}
		bookmark := &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{
			ResourceVersion: "12345", Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"},
		}}
		encodeEvent(t, &stream, watch.Bookmark, bookmark, authorizerTypeMeta)
		gone := &metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old resource version"}
		encodeEvent(t, &stream, watch.Error, gone, metav1.TypeMeta{APIVersion: "v1", Kind: "Status"})

		want, got := clientGo(t, scheme, stream.Bytes()), ours(t, stream.Bytes())
		if len(want.events) != 5 || !errors.Is(want.err, io.EOF) {
			t.Fatalf("seed %d: client-go decoded %d events, then %v", seed, len(want.events), want.err)
		}
		if !reflect.DeepEqual(got, want) {
			for i := range min(len(got.events), len(want.events)) {
				if !reflect.DeepEqual(got.events[i], want.events[i]) {
					t.Errorf("seed %d, event %d:\n got %#v\nwant %#v", seed, i, got.events[i].Object, want.events[i].Object)
				}
			}
			t.Fatalf("seed %d: got %d events, then %v; want %d, then %v", seed, len(got.events), got.err, len(want.events), want.err)
		}
		if got.events[0].Object.(*wechatv1alpha1.WeChatAuthorizer).Spec.AppID == "" {
			t.Fatalf("seed %d: the filler left spec.appID empty", seed)
		}
		if len(want.events[0].Object.(*wechatv1alpha1.WeChatAuthorizer).ManagedFields) > 0 {
			withManagedFields++
		}
		// With DropManagedFields: the same objects, without their managedFields.
		dropped := drain(newJSONDecoder(io.NopCloser(bytes.NewReader(stream.Bytes())), dropping))
		expectSame(t, fmt.Sprintf("seed %d, managedFields dropped", seed), dropped, withoutManagedFields(want))
	}
}

// TestFallsBackToClientGo: what the v2 decoder rejects or is not the watched kind is
// decoded by client-go's decoder, so it reaches the cache as it would have without this
// package.
func TestFallsBackToClientGo(t *testing.T) {
	scheme := testScheme(t)
	for name, event := range map[string]string{
		// encoding/json takes the last of duplicate names; v2 rejects them.
		"duplicate names": `{"type":"ADDED","object":{"apiVersion":"platform.wechat-operator.dev/v1alpha1","kind":"WeChatAuthorizer","metadata":{"name":"a","name":"b"},"spec":{"appID":"wx1"}}}`,
		// encoding/json replaces invalid UTF-8; v2 rejects it.
		"invalid UTF-8": "{\"type\":\"ADDED\",\"object\":{\"apiVersion\":\"platform.wechat-operator.dev/v1alpha1\",\"kind\":\"WeChatAuthorizer\",\"metadata\":{\"name\":\"a\xff\"}}}",
		// Not the watched kind: client-go decodes whatever the scheme knows it as.
		"another kind": `{"type":"ADDED","object":{"apiVersion":"platform.wechat-operator.dev/v1alpha1","kind":"WeChatComponent","metadata":{"name":"c"}}}`,
		// The object before the type.
		"object first": `{"object":{"apiVersion":"platform.wechat-operator.dev/v1alpha1","kind":"WeChatAuthorizer","metadata":{"name":"a"}},"type":"MODIFIED"}`,
	} {
		t.Run(name, func(t *testing.T) {
			want, got := clientGo(t, scheme, []byte(event)), ours(t, []byte(event))
			if len(want.events) != 1 {
				t.Fatalf("client-go decoded %d events, then %v", len(want.events), want.err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %#v, then %v\nwant %#v, then %v", got.events, got.err, want.events, want.err)
			}
		})
	}
}

// TestStreamErrors: what ends a stream ends it as client-go's decoder would: io.EOF between
// events, io.ErrUnexpectedEOF inside one (watch.StreamWatcher tells these apart by identity),
// an error for an unknown event type or an object nobody can decode.
func TestStreamErrors(t *testing.T) {
	scheme := testScheme(t)
	var one bytes.Buffer
	encodeEvent(t, &one, watch.Added, &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, authorizerTypeMeta)
	whole := one.String()
	for name, tc := range map[string]struct {
		stream string
		events int
		err    error  // compared by identity, as StreamWatcher does
		errHas string // or a part of the message
	}{
		"empty":             {stream: "", err: io.EOF},
		"one event":         {stream: whole, events: 1, err: io.EOF},
		"cut inside":        {stream: whole + whole[:len(whole)/2], events: 1, err: io.ErrUnexpectedEOF},
		"unknown type":      {stream: `{"type":"SOMETHING","object":{}}`, errHas: "invalid watch event type"},
		"undecodable":       {stream: `{"type":"ADDED","object":{"metadata":[]}}`, errHas: "unable to decode watch event"},
		"not an object":     {stream: `[]`, errHas: "watch event"},
		"no object":         {stream: `{"type":"ADDED"}`, errHas: "watch event"},
		"type not a string": {stream: `{"type":1,"object":{}}`, errHas: "watch event"},
	} {
		t.Run(name, func(t *testing.T) {
			want, got := clientGo(t, scheme, []byte(tc.stream)), ours(t, []byte(tc.stream))
			if len(got.events) != tc.events || len(want.events) != tc.events {
				t.Fatalf("events: got %d, client-go %d, want %d", len(got.events), len(want.events), tc.events)
			}
			if tc.err != nil {
				if got.err != tc.err || want.err != tc.err { //nolint:errorlint // StreamWatcher compares by identity
					t.Fatalf("end: got %v, client-go %v, want %v", got.err, want.err, tc.err)
				}
				return
			}
			if got.err == nil || !strings.Contains(got.err.Error(), tc.errHas) || errors.Is(got.err, io.EOF) {
				t.Fatalf("got %v, want an error with %q (client-go: %v)", got.err, tc.errHas, want.err)
			}
			if want.err == nil || errors.Is(want.err, io.EOF) {
				t.Fatalf("client-go decoded it (%v): the case tests nothing", want.err)
			}
		})
	}
}

// FuzzDecodesLikeClientGo: on any stream, every event client-go's decoder returns, this
// decoder returns too, equal, and it never panics.
func FuzzDecodesLikeClientGo(f *testing.F) {
	var stream bytes.Buffer
	encodeEvent(f, &stream, watch.Added, filledAuthorizer(filler(1)), authorizerTypeMeta)
	encodeEvent(f, &stream, watch.Bookmark, &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "7"}}, authorizerTypeMeta)
	f.Add(stream.Bytes())
	f.Add([]byte(`{"type":"ERROR","object":{"apiVersion":"v1","kind":"Status","code":410}}`))
	f.Add([]byte(`{"object":{"kind":"WeChatAuthorizer","apiVersion":"platform.wechat-operator.dev/v1alpha1","status":{"expiresAt":"2026-12-07T00:00:00Z"}},"type":"ADDED"}`))
	scheme := testScheme(f)
	ot := authorizerType(f)
	f.Fuzz(func(t *testing.T, stream []byte) {
		want := clientGo(t, scheme, stream)
		got := drain(newJSONDecoder(io.NopCloser(bytes.NewReader(stream)), ot))
		for i, ev := range want.events {
			if i >= len(got.events) {
				t.Fatalf("client-go decoded event %d (%s), this decoder stopped: %v", i, ev.Type, got.err)
			}
			if !reflect.DeepEqual(got.events[i], ev) {
				t.Fatalf("event %d:\n got %#v\nwant %#v", i, got.events[i], ev)
			}
		}
	})
}

// BenchmarkDecode compares client-go's watch decoding with this package's on the same
// stream of 1,000 authorizers as the API server wrote one in `make bench-scale`
// (testdata/authorizer.json: its managedFields, conditions and account info; 2.6 KB).
func BenchmarkDecode(b *testing.B) {
	scheme := testScheme(b)
	raw, err := os.ReadFile("testdata/authorizer.json")
	if err != nil {
		b.Fatal(err)
	}
	var a wechatv1alpha1.WeChatAuthorizer
	if err := stdjson.Unmarshal(raw, &a); err != nil {
		b.Fatal(err)
	}
	var stream bytes.Buffer
	for i := range 1000 {
		a.Name = fmt.Sprintf("account-%06d", i)
		encodeEvent(b, &stream, watch.Added, &a, authorizerTypeMeta)
	}
	run := func(b *testing.B, decode func() decoded) { benchmarkStream(b, &stream, 1000, decode) }
	standard, ot := clientGoDecoder(scheme), authorizerType(b)
	b.Run("client-go", func(b *testing.B) { run(b, func() decoded { return standard(stream.Bytes()) }) })
	b.Run("watchdecode", func(b *testing.B) {
		run(b, func() decoded { return drain(newJSONDecoder(io.NopCloser(bytes.NewReader(stream.Bytes())), ot)) })
	})
	dropping := authorizerTypeDropping(b, true)
	b.Run("watchdecode-without-managedFields", func(b *testing.B) {
		run(b, func() decoded { return drain(newJSONDecoder(io.NopCloser(bytes.NewReader(stream.Bytes())), dropping)) })
	})
}

// TestTimesDecodeLikeClientGo: times in every form metav1.Time's UnmarshalJSON takes or
// refuses decode as it does (this package decodes them from the token, not through it).
func TestTimesDecodeLikeClientGo(t *testing.T) {
	scheme := testScheme(t)
	for name, value := range map[string]string{
		"UTC":             `"2026-12-07T13:46:18Z"`,
		"an offset":       `"2026-12-07T21:46:18+08:00"`,
		"fractions":       `"2026-12-07T13:46:18.123456789Z"`,
		"escaped":         `"\u0032026-12-07T13:46:18Z"`,
		"null":            `null`,
		"not RFC 3339":    `"07 Dec 26 13:46 UTC"`,
		"a number":        `1765115178`,
		"an empty string": `""`,
	} {
		t.Run(name, func(t *testing.T) {
			event := `{"type":"MODIFIED","object":{"apiVersion":"platform.wechat-operator.dev/v1alpha1","kind":"WeChatAuthorizer",` +
				`"metadata":{"name":"a","creationTimestamp":` + value + `},"status":{"expiresAt":` + value + `}}}`
			want, got := clientGo(t, scheme, []byte(event)), ours(t, []byte(event))
			// Errors are compared by their text: StreamWatcher reports only that.
			if !reflect.DeepEqual(got.events, want.events) || got.err.Error() != want.err.Error() {
				t.Fatalf("got %#v, then %v\nwant %#v, then %v", got.events, got.err, want.events, want.err)
			}
		})
	}
}

// benchmarkStream measures decode, which decodes stream's events, and reports the time per
// event too.
func benchmarkStream(b *testing.B, stream *bytes.Buffer, events int, decode func() decoded) {
	b.SetBytes(int64(stream.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if d := decode(); len(d.events) != events || !errors.Is(d.err, io.EOF) {
			b.Fatalf("%d events, then %v", len(d.events), d.err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(events), "ns/event")
}
