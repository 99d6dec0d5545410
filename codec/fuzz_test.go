package codec_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/agentloop/agentloop/codec"
)

// FuzzDecode feeds arbitrary payloads to the header parser and to
// Unmarshal with both codecs. Neither may panic; a header that parses
// must be exactly the bytes a version 1 header of its fields is; a value
// that decodes must survive a round trip.
func FuzzDecode(f *testing.F) {
	var r codec.Registry
	if err := codec.Register[Point](&r, "p", codec.JSON); err != nil {
		f.Fatal(err)
	}
	if err := codec.Register[*wrapperspb.StringValue](&r, "s", codec.Protobuf); err != nil {
		f.Fatal(err)
	}
	for _, v := range []any{Point{1, -2}, wrapperspb.String("seed")} {
		var p []byte
		var err error
		switch v := v.(type) {
		case Point:
			p, err = codec.Marshal(&r, v)
		case *wrapperspb.StringValue:
			p, err = codec.Marshal(&r, v)
		}
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Add([]byte{})
	f.Add([]byte{codec.Magic})
	f.Add([]byte{codec.Magic, 1, 1, 255, 'p'})
	f.Add([]byte{codec.Magic, 2, 1, 1, 'p', '{', '}'})
	f.Add([]byte(`{"X":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, body, err := codec.Inspect(data)
		if err == nil {
			rebuilt := append([]byte{codec.Magic, h.Version, byte(h.Content), byte(len(h.TypeName))}, h.TypeName...)
			rebuilt = append(rebuilt, body...)
			if !bytes.Equal(rebuilt, data) {
				t.Fatalf("header %+v and body % x do not rebuild % x", h, body, data)
			}
			if h.Content == 0 || h.TypeName == "" || len(h.TypeName) > codec.MaxTypeName {
				t.Fatalf("Inspect accepted %+v", h)
			}
		}
		if p, err := codec.Unmarshal[Point](&r, data); err == nil {
			again, err := codec.Marshal(&r, p)
			if err != nil {
				t.Fatal(err)
			}
			if q, err := codec.Unmarshal[Point](&r, again); err != nil || q != p {
				t.Fatalf("Point %+v round-trips to %+v, %v", p, q, err)
			}
		}
		if s, err := codec.Unmarshal[*wrapperspb.StringValue](&r, data); err == nil {
			again, err := codec.Marshal(&r, s)
			if err != nil {
				t.Fatal(err)
			}
			if q, err := codec.Unmarshal[*wrapperspb.StringValue](&r, again); err != nil || !proto.Equal(q, s) {
				t.Fatalf("StringValue %v round-trips to %v, %v", s, q, err)
			}
		}
	})
}
