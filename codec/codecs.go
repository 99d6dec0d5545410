package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
)

// Codec turns values of the Go types registered with it into bytes and
// back. A Codec must be safe for concurrent use: handlers on several loops
// call it at once.
type Codec interface {
	// ContentType names the format, as a MIME type ("application/json").
	// Within a registry it stands for one content id.
	ContentType() string
	// Marshal appends the encoding of v to dst and returns the extended
	// slice. v is a value of a type registered with this codec.
	Marshal(dst []byte, v any) ([]byte, error)
	// Unmarshal decodes data into v, a non-nil pointer to a value of a
	// registered type (for a pointer type such as a protobuf message, the
	// pointer itself, pointing to a fresh zero value). data is only valid
	// during the call: Unmarshal copies what it keeps.
	Unmarshal(data []byte, v any) error
}

// Validator is an optional interface of a Codec: Register calls
// CanHandle with a zero value of the type being registered and refuses the
// type when it returns an error.
type Validator interface {
	CanHandle(v any) error
}

// JSON is the codec of encoding/json, content type "application/json", id
// ContentJSON. It handles any type encoding/json does.
var JSON Codec = jsonCodec{}

// Protobuf is the codec of google.golang.org/protobuf/proto, content type
// "application/x-protobuf", id ContentProtobuf. It handles the types that
// implement proto.Message (pointers to generated message structs, or the
// well-known types such as *wrapperspb.StringValue); Register refuses any
// other type.
var Protobuf Codec = protoCodec{}

type jsonCodec struct{}

func (jsonCodec) ContentType() string { return "application/json" }

func (jsonCodec) Marshal(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

type protoCodec struct{}

func (protoCodec) ContentType() string { return "application/x-protobuf" }

func (protoCodec) CanHandle(v any) error {
	if _, ok := v.(proto.Message); !ok {
		return fmt.Errorf("%T does not implement proto.Message", v)
	}
	return nil
}

func (protoCodec) Marshal(dst []byte, v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return dst, fmt.Errorf("%T does not implement proto.Message", v)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

func (protoCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("%T does not implement proto.Message", v)
	}
	return proto.Unmarshal(data, m)
}

// size is the exact body size of a protobuf message, so that Marshal
// allocates the payload once.
func (protoCodec) size(v any) int {
	if m, ok := v.(proto.Message); ok {
		return proto.Size(m)
	}
	return 0
}

// sizer is implemented by the codecs of this package that know a body's
// size before encoding it.
type sizer interface{ size(v any) int }

// jsonScratch is a reusable buffer and encoder for JSON bodies, so that a
// JSON payload is allocated once, at its final size, as a protobuf one is.
type jsonScratch struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonScratches = sync.Pool{New: func() any {
	s := &jsonScratch{}
	s.enc = json.NewEncoder(&s.buf)
	return s
}}

// maxScratch is the largest scratch buffer kept for reuse, so that one
// huge message does not pin its memory.
const maxScratch = 64 << 10

// marshalJSON is marshal for JSON: the body is encoded into a scratch
// buffer (as json.Marshal does: the Encoder escapes HTML the same way and
// adds a newline, dropped here), then copied once behind the header.
func (b *binding) marshalJSON(v any) ([]byte, error) {
	s := jsonScratches.Get().(*jsonScratch)
	defer func() {
		if s.buf.Cap() <= maxScratch {
			jsonScratches.Put(s)
		}
	}()
	s.buf.Reset()
	if err := s.enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%w: %s as %q (%s): %w", ErrEncode, b.typ, b.name, JSON.ContentType(), err)
	}
	body := bytes.TrimSuffix(s.buf.Bytes(), []byte{'\n'})
	out := make([]byte, 0, headerFixed+len(b.name)+len(body))
	out = appendHeader(out, b.id, b.name)
	return append(out, body...), nil
}
