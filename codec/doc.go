// Package codec sends and receives Go values through the engine, whose
// messages carry []byte: a Registry binds each Go type to a type name and
// a Codec (JSON, Protobuf, or an application's own), and every payload it
// encodes starts with a small header naming the type and the content type,
// so that a receiver can tell the kinds of message apart, refuse what it
// does not know, and decode what a sender, or an earlier version of
// itself, wrote. It relates to encoding/json and protobuf's proto package
// as a serializer registry does: it chooses between them per type and tags
// the bytes with the choice.
//
// The engine is not changed by it: engine.Message stays a 64-byte value,
// and code that sends []byte pays nothing for this package. The helpers
// are a Marshal or Unmarshal around one engine call each: Send
// (Context.Send), SendRef (Ref.Send), Decode, Request (Ref.Request),
// RequestFrom (Context.Request), Reply (Context.Reply) and Answer
// (ReplyHandle.Reply), all with the Default registry; Marshal and
// Unmarshal take any registry. Handle and Router turn a typed handler, or
// one per type, into an engine.Agent.
//
// # Registration
//
// A type is registered once, under a name that is part of the wire
// format and must not change while messages of that name exist (in
// flight, in a snapshot, in another process):
//
//	codec.MustRegister[Reading](codec.Default, "iot.Reading/v1", codec.JSON)
//	codec.MustRegister[*wrapperspb.StringValue](codec.Default, "iot.Label", codec.Protobuf)
//
// There is no fallback codec: encoding or decoding a type that was never
// registered returns ErrUnregistered. A name derived from the Go type
// would change with a refactor and strand the messages already written.
//
// # Header format
//
// Version 1 of the header, which this package writes and reads:
//
//	byte 0      Magic, 0xC1 (never the first byte of UTF-8 text)
//	byte 1      header version, 1
//	byte 2      content type id: 1 JSON, 2 Protobuf, 128..255 AddCodec
//	byte 3      length n of the type name, 1..255
//	bytes 4..   the type name, n bytes of printable ASCII (0x21..0x7E)
//	then        the body, as the codec of the content type wrote it
//
// A value of a struct with a few fields thus costs the header, 4 bytes
// plus its name, on top of its body. Decoding refuses a payload with an
// error saying what is wrong: ErrBadMagic, ErrTruncated, ErrVersion,
// ErrUnknownContentType (id 0, or an id the registry has no codec for),
// ErrInvalidName, ErrTypeMismatch or ErrUnknownType for a name that is not
// the expected one, ErrDecode for a body the codec refuses; every error
// is wrapped with the offending byte, length or name. No input panics, and
// no length in the header makes the decoder read or allocate beyond the
// payload.
//
// # Versioning
//
// The header version changes only when the header's layout does; a
// decoder refuses every version it does not know (ErrVersion) rather than
// guess. Content ids 1..127 belong to this package and keep their meaning
// once assigned; 128..255 belong to the application (Registry.AddCodec),
// which must keep an id's meaning as long as messages carrying it exist.
// The body's schema is the codec's business: a type name with a version
// suffix ("iot.Reading/v2"), registered beside the old one for as long as
// old messages exist, is how an application changes a type
// incompatibly. The codec that decodes a body is the one its content id
// names, not the one its type was registered with, so a type can move to
// another codec while old messages still decode.
//
// # Concurrency
//
// Registry methods, Register, Marshal, Unmarshal, SendRef, Request and
// Answer are safe from any goroutine. Send, RequestFrom and Reply take the
// handler's *engine.Context and belong to that handler. A Router is built
// before use and then only read, so one Router may serve agents on every
// loop at once.
package codec
