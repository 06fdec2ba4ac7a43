/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package watchdecode

import (
	"bytes"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/util/framer"
	"k8s.io/apimachinery/pkg/watch"
)

// protoDecoder reads a watch stream as the API server writes it in protobuf: frames of a
// 4-byte big-endian length and a metav1.WatchEvent message, whose object is "k8s\x00" and a
// runtime.Unknown message around the object's own. client-go decodes the event, copying the
// object's bytes (RawExtension), then the Unknown, copying them again, then the object. Here
// the envelopes are only walked and the object's message is decoded from the frame itself by
// its generated Unmarshal, which copies every string and byte slice it keeps, so the frame's
// buffer is reused as client-go reuses it. An event of another shape than the API server's,
// or an object of another kind, is decoded by client-go's decoders from the same frame.
type protoDecoder struct {
	frames  streaming.Decoder // client-go's own framing: its buffer, limits and errors
	capture *frameCapture
	t       objectType
	// object and meta hold an object's message rewritten without its managedFields.
	object, meta []byte
	fellBack     int // events decoded by client-go's decoders
}

func newProtoDecoder(body io.ReadCloser, t objectType) *protoDecoder {
	capture := &frameCapture{}
	return &protoDecoder{frames: streaming.NewDecoder(framer.NewLengthDelimitedFrameReader(body), capture), capture: capture, t: t}
}

func (d *protoDecoder) Close() { _ = d.frames.Close() }

// frameCapture is the "serializer" of client-go's streaming decoder: it keeps the frame the
// decoder read (valid until the next read) instead of decoding it.
type frameCapture struct{ frame []byte }

func (c *frameCapture) Decode(data []byte, _ *schema.GroupVersionKind, _ runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	c.frame = data
	return nil, nil, nil
}

// Decode returns the next event. Errors are the ones client-go's watch decoder returns for the
// same stream: io.EOF at its end and io.ErrUnexpectedEOF inside a frame from the framing, and
// for an event that does not decode, client-go's own error for it.
func (d *protoDecoder) Decode() (watch.EventType, runtime.Object, error) {
	if _, _, err := d.frames.Decode(nil, nil); err != nil {
		return "", nil, err
	}
	frame := d.capture.frame
	typ, raw, ok := watchEvent(frame)
	if !ok {
		d.fellBack++
		return d.clientGo(frame)
	}
	if obj := d.fast(raw); obj != nil {
		return typ, obj, nil
	}
	d.fellBack++
	obj, err := d.t.decodeWithClientGo(raw)
	if err != nil {
		return "", nil, err
	}
	return typ, obj, nil
}

// clientGo decodes a frame as client-go's watch decoder does (k8s.io/client-go/rest/watch).
func (d *protoDecoder) clientGo(frame []byte) (watch.EventType, runtime.Object, error) {
	var got metav1.WatchEvent
	if _, _, err := d.t.envelope.Decode(frame, nil, &got); err != nil {
		return "", nil, err
	}
	typ := eventType(got.Type)
	if typ == "" {
		return "", nil, fmt.Errorf("got invalid watch event type: %v", got.Type)
	}
	obj, err := d.t.decodeWithClientGo(got.Object.Raw)
	if err != nil {
		return "", nil, err
	}
	return typ, obj, nil
}

// fast decodes raw, an event's object, when it is an object of the watched kind; or returns
// nil. Like client-go's decoder (controller-runtime's, without conversion) it leaves the type
// information of what it returns empty.
func (d *protoDecoder) fast(raw []byte) runtime.Object {
	apiVersion, kind, msg, ok := unknown(raw)
	if !ok || string(kind) != d.t.gvk.Kind || string(apiVersion) != d.t.apiVersion {
		return nil
	}
	if d.t.dropManagedFields {
		if msg, ok = d.withoutManagedFields(msg); !ok {
			return nil
		}
	}
	obj := d.t.newObject()
	if err := obj.(protoMessage).Unmarshal(msg); err != nil {
		return nil
	}
	return obj
}

// The field numbers read here (k8s.io/apimachinery's generated.proto).
const (
	watchEventType, watchEventObject           protowire.Number = 1, 2 // metav1.WatchEvent
	rawExtensionRaw                            protowire.Number = 1    // runtime.RawExtension
	unknownTypeMeta, unknownRaw                protowire.Number = 1, 2 // runtime.Unknown
	unknownContentEncoding, unknownContentType protowire.Number = 3, 4
	typeMetaAPIVersion, typeMetaKind           protowire.Number = 1, 2 // runtime.TypeMeta
	objectMetadata                             protowire.Number = 1    // every k8s.io/api object's ObjectMeta
	objectMetaManagedFields                    protowire.Number = 17
)

// protobufPrefix starts every object the protobuf serializer writes.
var protobufPrefix = []byte{0x6b, 0x38, 0x73, 0x00} // "k8s\x00"

// watchEvent walks a frame as the API server writes it: a WatchEvent with its type and its
// object, a RawExtension with the object's bytes, each once. Anything else (another field,
// one twice, an unknown event type) is not ok, for client-go's decoder to decide.
func watchEvent(frame []byte) (watch.EventType, []byte, bool) {
	var typ watch.EventType
	var object []byte
	ok := eachField(frame, func(num protowire.Number, value []byte) bool {
		switch {
		case num == watchEventType && typ == "":
			typ = eventType(value)
			return typ != ""
		case num == watchEventObject && object == nil:
			return eachField(value, func(num protowire.Number, raw []byte) bool {
				if num != rawExtensionRaw || object != nil {
					return false
				}
				object = raw
				return true
			}) && object != nil
		}
		return false
	})
	return typ, object, ok && typ != "" && object != nil
}

// unknown walks an object as the protobuf serializer writes it: the prefix and a
// runtime.Unknown with the object's type and its message, each once. The content type and
// encoding fields, which client-go's decoder ignores, are ignored too.
func unknown(raw []byte) (apiVersion, kind, msg []byte, ok bool) {
	if !bytes.HasPrefix(raw, protobufPrefix) {
		return nil, nil, nil, false
	}
	var typeMeta, object bool
	ok = eachField(raw[len(protobufPrefix):], func(num protowire.Number, value []byte) bool {
		switch {
		case num == unknownTypeMeta && !typeMeta:
			typeMeta = true
			return eachField(value, func(num protowire.Number, value []byte) bool {
				switch {
				case num == typeMetaAPIVersion && apiVersion == nil:
					apiVersion = value
				case num == typeMetaKind && kind == nil:
					kind = value
				default:
					return false
				}
				return true
			})
		case num == unknownRaw && !object:
			object, msg = true, value
			return true
		case num == unknownContentEncoding, num == unknownContentType:
			return true
		}
		return false
	})
	return apiVersion, kind, msg, ok && object
}

// withoutManagedFields returns an object's message with its metadata's managedFields left
// out, in d's buffers (valid until the next event).
func (d *protoDecoder) withoutManagedFields(msg []byte) ([]byte, bool) {
	out := d.object[:0]
	ok := eachRawField(msg, func(num protowire.Number, typ protowire.Type, field, value []byte) bool {
		if num != objectMetadata || typ != protowire.BytesType {
			out = append(out, field...)
			return true
		}
		meta := d.meta[:0]
		if !eachRawField(value, func(num protowire.Number, _ protowire.Type, field, _ []byte) bool {
			if num != objectMetaManagedFields {
				meta = append(meta, field...)
			}
			return true
		}) {
			return false
		}
		out = protowire.AppendBytes(protowire.AppendTag(out, objectMetadata, protowire.BytesType), meta)
		d.meta = meta
		return true
	})
	d.object = out
	return out, ok
}

// eachField calls f with each field of a message, which must all be length-delimited (bytes,
// strings, messages), until f returns false; it returns whether the message was whole and f
// took every field.
func eachField(msg []byte, f func(num protowire.Number, value []byte) bool) bool {
	return eachRawField(msg, func(num protowire.Number, typ protowire.Type, _, value []byte) bool {
		return typ == protowire.BytesType && f(num, value)
	})
}

// eachRawField calls f with each field of a message: its number and wire type, the field's
// bytes (tag included) and, for a length-delimited field, its value.
func eachRawField(msg []byte, f func(num protowire.Number, typ protowire.Type, field, value []byte) bool) bool {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return false
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return false
		}
		var value []byte
		if typ == protowire.BytesType {
			value, _ = protowire.ConsumeBytes(msg[n:])
		}
		if !f(num, typ, msg[:n+m], value) {
			return false
		}
		msg = msg[n+m:]
	}
	return true
}
