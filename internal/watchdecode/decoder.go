/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package watchdecode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

// jsonDecoder reads a watch stream of JSON events, {"type":…,"object":…}, one after another.
// It is a watch.Decoder for client-go's watch.StreamWatcher.
type jsonDecoder struct {
	body    io.ReadCloser
	in      *jsontext.Decoder
	t       objectType
	options json.Options
}

func newJSONDecoder(body io.ReadCloser, t objectType) *jsonDecoder {
	// The stream is read as leniently as encoding/json reads it; the object's own decode is
	// strict, and what it rejects goes to client-go's decoder.
	in := jsontext.NewDecoder(body, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	options := decodeTimes
	if t.dropManagedFields {
		options = decodeTimesSkipManagedFields
	}
	return &jsonDecoder{body: body, in: in, t: t, options: options}
}

func (d *jsonDecoder) Close() { _ = d.body.Close() }

// Decode returns the next event. Errors are those client-go's watch decoder returns where it
// can tell (an invalid event type, an object it cannot decode); io.EOF at the end of the
// stream and io.ErrUnexpectedEOF inside an event, which StreamWatcher treats as the end.
func (d *jsonDecoder) Decode() (watch.EventType, runtime.Object, error) {
	ev, err := d.readEvent()
	if err != nil {
		return "", nil, err
	}
	if eventType(ev.typ) == "" {
		return "", nil, fmt.Errorf("got invalid watch event type: %v", ev.typ)
	}
	obj := ev.obj
	if obj == nil && !ev.fastTried && ev.typ != watch.Error {
		obj = d.fast(ev.raw)
	}
	if obj == nil {
		// As client-go would: an ERROR event's Status, and whatever the v2 decoder rejects.
		if obj, err = d.t.decodeWithClientGo(ev.raw); err != nil {
			return "", nil, err
		}
	}
	return ev.typ, obj, nil
}

// event is one event as read: its object decoded already (obj), or its bytes (raw).
type event struct {
	typ       watch.EventType
	obj       runtime.Object
	raw       []byte
	fastTried bool // the v2 decoder rejected raw
}

// readEvent reads one event. The API server writes the type before the object, so the object
// is usually decoded from the stream's buffer as it is read; its bytes are kept only when the
// object came first or the v2 decoder rejected it.
func (d *jsonDecoder) readEvent() (event, error) {
	var ev event
	tok, err := d.in.ReadToken()
	if err != nil {
		return ev, streamError(err)
	}
	if tok.Kind() != '{' {
		return ev, fmt.Errorf("a watch event is a JSON object, not %v", tok.Kind())
	}
	for d.in.PeekKind() == '"' {
		name, err := d.in.ReadToken()
		if err != nil {
			return ev, streamError(err)
		}
		switch name.String() {
		case "type":
			v, err := d.in.ReadToken()
			if err != nil {
				return ev, streamError(err)
			}
			if v.Kind() != '"' {
				return ev, fmt.Errorf("a watch event's type is a string, not %v", v.Kind())
			}
			ev.typ = watch.EventType(v.String())
		case "object":
			v, err := d.in.ReadValue()
			if err != nil {
				return ev, streamError(err)
			}
			ev.obj, ev.raw, ev.fastTried = nil, nil, false
			if ev.typ != "" && ev.typ != watch.Error {
				ev.obj, ev.fastTried = d.fast(v), true
			}
			if ev.obj == nil {
				ev.raw = bytes.Clone(v) // v is only valid until the next read
			}
		default:
			if err := d.in.SkipValue(); err != nil {
				return ev, streamError(err)
			}
		}
	}
	if tok, err = d.in.ReadToken(); err != nil {
		return ev, streamError(err)
	}
	if tok.Kind() != '}' {
		return ev, fmt.Errorf("a watch event's member name is a string, not %v", tok.Kind())
	}
	if ev.obj == nil && ev.raw == nil {
		return ev, fmt.Errorf("a %q watch event without an object", ev.typ)
	}
	return ev, nil
}

// fast decodes an object of the watched kind with the v2 decoder, or returns nil. Like
// client-go's decoder (controller-runtime's, without conversion) it clears the type
// information of what it returns.
func (d *jsonDecoder) fast(raw []byte) runtime.Object {
	obj := d.t.newObject()
	if err := json.Unmarshal(raw, obj, d.options); err != nil {
		return nil
	}
	kind := obj.GetObjectKind()
	if kind.GroupVersionKind() != d.t.gvk {
		return nil
	}
	kind.SetGroupVersionKind(schema.GroupVersionKind{})
	return obj
}

// decodeTimes decodes a metav1.Time as its UnmarshalJSON does (null the zero time, else an
// RFC 3339 string, in local time), from the token itself: UnmarshalJSON decodes the string
// with encoding/json first, a tenth of what a WeChatAuthorizer's decoding allocated.
var decodeTimes = json.WithUnmarshalers(timeFromToken)

// decodeTimesSkipManagedFields also skips metadata.managedFields (Options.DropManagedFields),
// the only field of their type.
var decodeTimesSkipManagedFields = json.WithUnmarshalers(json.JoinUnmarshalers(timeFromToken,
	json.UnmarshalFromFunc(func(in *jsontext.Decoder, _ *[]metav1.ManagedFieldsEntry) error { return in.SkipValue() })))

var timeFromToken = json.UnmarshalFromFunc(func(in *jsontext.Decoder, t *metav1.Time) error {
	tok, err := in.ReadToken()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case 'n':
		t.Time = time.Time{}
		return nil
	case '"':
		parsed, err := time.Parse(time.RFC3339, tok.String())
		if err != nil {
			return err
		}
		t.Time = parsed.Local()
		return nil
	default:
		return fmt.Errorf("a time is a string, not %v", tok.Kind())
	}
})

// streamError keeps what StreamWatcher tells apart: the stream's end between events (io.EOF,
// no error), its end inside one (io.ErrUnexpectedEOF), and read errors as they came.
func streamError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
