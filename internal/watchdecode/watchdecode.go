/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package watchdecode decodes the watch streams of the operator's own custom resources with
// encoding/json/v2 (github.com/go-json-experiment/json) instead of client-go's JSON path.
//
// Custom resources are served as JSON only, and client-go reads each watch event about seven
// times: the framer scans it, the envelope is scanned for its kind, validated and decoded
// (copying the object's bytes), and the object is scanned for its kind, validated and decoded
// again. With 100,000 WeChatAuthorizers that was a third of a restart's CPU, on the one
// goroutine the cache's sync waits for. Here each event is read once and its object decoded
// once; an object the v2 decoder rejects, or that is not of the watched kind, is decoded by
// client-go's own decoder, so what reaches the cache is what client-go would have made of it.
//
// controller-runtime builds its informers' REST clients itself, so the decoder cannot be
// handed to them. Instead the cache's NewInformer hook (NewInformer) wraps each informer's
// watch: the watch request carries a marker in its context, and Transport, installed on the
// manager's rest.Config, hands the body of a successful JSON watch response to the wrapper
// and an empty body to client-go. Without Transport, or for a response that is not JSON,
// client-go decodes as before.
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

// NewInformer returns a NewInformer hook for controller-runtime's cache.Options: the informers
// of objs' types (which addToScheme registers) decode their watches here, every other
// informer is client-go's own. The hook builds informers as the cache does by default.
func NewInformer(addToScheme func(*runtime.Scheme) error, objs ...runtime.Object) func(toolscache.ListerWatcher, runtime.Object, time.Duration, toolscache.Indexers) toolscache.SharedIndexInformer {
	scheme, err := newScheme(addToScheme)
	if err != nil {
		panic(err) // a programming error, like a scheme builder's
	}
	types := map[reflect.Type]objectType{}
	for _, obj := range objs {
		t, err := newObjectType(scheme, obj)
		if err != nil {
			panic(err) // a programming error: a type addToScheme does not register
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
	gvk  schema.GroupVersionKind
	elem reflect.Type // the struct a *T object points to
	// fallback is the decoder client-go's watch uses for the objects in its events
	// (controller-runtime's: no conversion, the type information cleared).
	fallback runtime.Decoder
}

func newObjectType(scheme *runtime.Scheme, obj runtime.Object) (objectType, error) {
	gvks, _, err := scheme.ObjectKinds(obj)
	if err != nil {
		return objectType{}, err
	}
	codecs := serializer.WithoutConversionCodecFactory{CodecFactory: serializer.NewCodecFactory(scheme)}
	info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	if !ok {
		return objectType{}, fmt.Errorf("no JSON serializer for %v", gvks[0])
	}
	return objectType{
		gvk:      gvks[0],
		elem:     reflect.TypeOf(obj).Elem(),
		fallback: codecs.DecoderToVersion(info.Serializer, gvks[0].GroupVersion()),
	}, nil
}

func (t objectType) newObject() runtime.Object {
	return reflect.New(t.elem).Interface().(runtime.Object)
}

// listWatch lists as inner does and watches through inner's own request, taking over the
// response body when Transport hands it over.
func listWatch(inner toolscache.ListerWatcherWithContext, t objectType) *toolscache.ListWatch {
	return &toolscache.ListWatch{
		ListWithContextFunc: inner.ListWithContext,
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			h := &handover{}
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
			decodedStreams.Add(1)
			// The reporter and the watcher are client-go's, so that the end of a stream, a
			// read error and Stop behave exactly as in client-go's own watch.
			return watch.NewStreamWatcherWithLogger(klog.FromContext(ctx), newDecoder(body, t),
				apierrors.NewClientErrorReporter(http.StatusInternalServerError, "GET", "ClientWatchDecoding")), nil
		},
	}
}

var decodedStreams atomic.Int64

// DecodedStreams counts the watch streams decoded here since the process started (for tests
// and debugging: the objects are the same either way).
func DecodedStreams() int64 { return decodedStreams.Load() }

type handoverKey struct{}

// handover carries a watch response's body from Transport to the watch that asked for it.
type handover struct {
	mu    sync.Mutex
	body  io.ReadCloser
	taken bool
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
// NewInformer's informers decode their streams here.
func Transport(next http.RoundTripper) http.RoundTripper { return transport{next} }

type transport struct{ next http.RoundTripper }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	h, _ := req.Context().Value(handoverKey{}).(*handover)
	resp, err := t.next.RoundTrip(req)
	if h == nil || err != nil || resp.StatusCode != http.StatusOK || !isJSON(resp.Header.Get("Content-Type")) {
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

func isJSON(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == runtime.ContentTypeJSON
}
