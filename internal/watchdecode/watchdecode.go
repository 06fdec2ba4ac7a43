/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package watchdecode decodes the watch streams of chosen types itself instead of through
// client-go's decoding path: custom resources' JSON streams with encoding/json/v2
// (github.com/go-json-experiment/json), k8s.io/api types' protobuf streams with the types'
// own generated Unmarshal, straight from each frame.
//
// Custom resources are served as JSON only, and client-go reads each watch event about seven
// times: the framer scans it, the envelope is scanned for its kind, validated and decoded
// (copying the object's bytes), and the object is scanned for its kind, validated and decoded
// again. With 100,000 WeChatAuthorizers that was a third of a restart's CPU, on the one
// goroutine the cache's sync waits for. Here each event is read once and its object decoded
// once. For protobuf, client-go copies each object's bytes twice (the envelope's
// RawExtension, then runtime.Unknown) before decoding it; here it is decoded from the frame.
// An object this package's decoders reject, or that is not of the watched kind, is decoded by
// client-go's own decoder, so what reaches the cache is what client-go would have made of it
// (less managedFields, with Options.DropManagedFields).
//
// controller-runtime builds its informers' REST clients itself, so the decoder cannot be
// handed to them. Instead the cache's NewInformer hook (NewInformer) wraps each informer's
// watch: the watch request carries a marker in its context, and Transport, installed on the
// manager's rest.Config, hands the body of a successful watch response in the media type the
// wrapper decodes to the wrapper and an empty body to client-go. Without Transport, or for a
// response of another media type, client-go decodes as before.
package watchdecode

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Options say which watches NewInformer's informers decode here.
type Options struct {
	// AddToScheme registers the Types (a scheme builder's AddToScheme, which also registers
	// an ERROR event's Status).
	AddToScheme func(*runtime.Scheme) error
	// Types are the watched types decoded here: custom resources from JSON, types with
	// generated protobuf code (k8s.io/api's) from protobuf, the media type controller-runtime
	// asks for them in.
	Types []runtime.Object
	// DropManagedFields leaves metadata.managedFields out of every object decoded, unread
	// and unchecked, for a cache whose transform strips them anyway: decoding them only for
	// the transform to drop them was a sixth of what client-go allocated for a Secret.
	DropManagedFields bool
}

// NewInformer returns a NewInformer hook for controller-runtime's cache.Options: the informers
// of the Options' Types decode their watches here, every other informer is client-go's own.
// The hook builds informers as the cache does by default.
func NewInformer(o Options) func(toolscache.ListerWatcher, runtime.Object, time.Duration, toolscache.Indexers) toolscache.SharedIndexInformer {
	scheme, err := newScheme(o.AddToScheme)
	if err != nil {
		panic(err) // a programming error, like a scheme builder's
	}
	types := map[reflect.Type]objectType{}
	for _, obj := range o.Types {
		t, err := newObjectType(scheme, obj, o.DropManagedFields)
		if err != nil {
			panic(err) // a programming error: a type AddToScheme does not register
		}
		types[reflect.TypeOf(obj)] = t
	}
	return func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
		if t, ok := types[reflect.TypeOf(obj)]; ok {
			lw = listWatch(toolscache.ToListerWatcherWithContext(lw), t)
		}
		return toolscache.NewSharedIndexInformer(lw, obj, resync, indexers)
	}
}

// newScheme knows what the fallback decoder meets in a watch of the types addToScheme
// registers: those types, and an ERROR event's Status, which a scheme builder registers as
// an unversioned "v1" type with them (metav1.AddToGroupVersion). That is all it needs of the
// manager's scheme, which also holds every client-go type.
func newScheme(addToScheme func(*runtime.Scheme) error) (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	return s, addToScheme(s)
}

// objectType is what decoding one watched type needs.
type objectType struct {
	gvk        schema.GroupVersionKind
	apiVersion string       // gvk's, as objects carry it
	elem       reflect.Type // the struct a *T object points to
	// mediaType is the one its watches are decoded from here: JSON, or protobuf for a type
	// with generated protobuf code.
	mediaType         string
	dropManagedFields bool
	// fallback is the decoder client-go's watch uses for the objects in its events
	// (controller-runtime's: no conversion, the type information cleared), envelope the
	// one it decodes the events with.
	fallback, envelope runtime.Decoder
	streams            *atomic.Int64
}

// protoMessage is what gogo-protobuf generates for k8s.io/api's types.
type protoMessage interface{ Unmarshal([]byte) error }

func newObjectType(scheme *runtime.Scheme, obj runtime.Object, dropManagedFields bool) (objectType, error) {
	gvks, _, err := scheme.ObjectKinds(obj)
	if err != nil {
		return objectType{}, err
	}
	mediaType := runtime.ContentTypeJSON
	if _, ok := obj.(protoMessage); ok {
		mediaType = runtime.ContentTypeProtobuf
	}
	codecs := serializer.WithoutConversionCodecFactory{CodecFactory: serializer.NewCodecFactory(scheme)}
	info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaType)
	if !ok || info.StreamSerializer == nil {
		return objectType{}, fmt.Errorf("no %s stream serializer for %v", mediaType, gvks[0])
	}
	return objectType{
		gvk:               gvks[0],
		apiVersion:        gvks[0].GroupVersion().String(),
		elem:              reflect.TypeOf(obj).Elem(),
		mediaType:         mediaType,
		dropManagedFields: dropManagedFields,
		fallback:          codecs.DecoderToVersion(info.Serializer, gvks[0].GroupVersion()),
		envelope:          info.StreamSerializer.Serializer,
		streams:           streamCounter(gvks[0].Kind),
	}, nil
}

func (t objectType) newObject() runtime.Object {
	return reflect.New(t.elem).Interface().(runtime.Object)
}

// decodeWithClientGo decodes an event's object with client-go's decoder, as client-go's watch
// does (its error text included), and returns it as this package's decoders return objects.
func (t objectType) decodeWithClientGo(raw []byte) (runtime.Object, error) {
	obj, err := runtime.Decode(t.fallback, raw)
	if err != nil {
		return nil, fmt.Errorf("unable to decode watch event: %w", err)
	}
	if m, ok := obj.(metav1.Object); ok && t.dropManagedFields {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// eventType is the watch event type t names, or "" for none; t is read without a copy.
func eventType[T ~string | ~[]byte](t T) watch.EventType {
	switch string(t) {
	case string(watch.Added):
		return watch.Added
	case string(watch.Modified):
		return watch.Modified
	case string(watch.Deleted):
		return watch.Deleted
	case string(watch.Error):
		return watch.Error
	case string(watch.Bookmark):
		return watch.Bookmark
	}
	return ""
}

// newDecoder decodes a watch response's body in t's media type.
func (t objectType) newDecoder(body io.ReadCloser) watch.Decoder {
	if t.mediaType == runtime.ContentTypeProtobuf {
		return newProtoDecoder(body, t)
	}
	return newJSONDecoder(body, t)
}

// listWatch lists as inner does and watches through inner's own request, taking over the
// response body when Transport hands it over.
func listWatch(inner toolscache.ListerWatcherWithContext, t objectType) *toolscache.ListWatch {
	return &toolscache.ListWatch{
		ListWithContextFunc: inner.ListWithContext,
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			h := &handover{mediaType: t.mediaType}
			w, err := inner.WatchWithContext(context.WithValue(ctx, handoverKey{}, h), opts)
			body := h.take()
			if err != nil {
				if body != nil {
					_ = body.Close()
				}
				return nil, err
			}
			if body == nil {
				return w, nil
			}
			// client-go's watcher got an empty body and is done; stopping it closes nothing.
			w.Stop()
			t.streams.Add(1)
			// The reporter and the watcher are client-go's, so that the end of a stream, a
			// read error and Stop behave exactly as in client-go's own watch.
			return watch.NewStreamWatcherWithLogger(klog.FromContext(ctx), t.newDecoder(body),
				apierrors.NewClientErrorReporter(http.StatusInternalServerError, "GET", "ClientWatchDecoding")), nil
		},
	}
}

var (
	streamsMu sync.Mutex
	streams   = map[string]*atomic.Int64{}
)

func streamCounter(kind string) *atomic.Int64 {
	streamsMu.Lock()
	defer streamsMu.Unlock()
	if streams[kind] == nil {
		streams[kind] = &atomic.Int64{}
	}
	return streams[kind]
}

// DecodedStreams counts the watch streams of objects of kind decoded here since the process
// started (for tests and debugging: the objects are the same either way).
func DecodedStreams(kind string) int64 { return streamCounter(kind).Load() }

type handoverKey struct{}

// handover carries a watch response's body from Transport to the watch that asked for it.
type handover struct {
	mediaType string // the one the watch decodes
	mu        sync.Mutex
	body      io.ReadCloser
	taken     bool
}

// put keeps the body of the watch's first successful response, unless the watch has already
// returned (then client-go reads it, as it would without this package).
func (h *handover) put(body io.ReadCloser) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.taken || h.body != nil {
		return false
	}
	h.body = body
	return true
}

// take returns the body handed over, if any; after it, nothing more is handed over.
func (h *handover) take() io.ReadCloser {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.taken = true
	return h.body
}

// Transport wraps a rest.Config's transport (rest.Config.Wrap) so that watches made through
// NewInformer's informers decode their streams here, those in the media type their type is
// decoded from.
func Transport(next http.RoundTripper) http.RoundTripper { return transport{next} }

type transport struct{ next http.RoundTripper }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	h, _ := req.Context().Value(handoverKey{}).(*handover)
	resp, err := t.next.RoundTrip(req)
	if h == nil || err != nil || resp.StatusCode != http.StatusOK || !h.decodes(resp.Header.Get("Content-Type")) {
		return resp, err
	}
	if !h.put(resp.Body) {
		return resp, nil
	}
	handed := *resp
	handed.Body = http.NoBody
	return &handed, nil
}

// WrappedRoundTripper lets client-go reach the transport underneath (k8s.io/apimachinery's
// utilnet.RoundTripperWrapper), to close idle connections for instance.
func (t transport) WrappedRoundTripper() http.RoundTripper { return t.next }

// decodes tells whether the watch decodes a response of contentType.
func (h *handover) decodes(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == h.mediaType
}
