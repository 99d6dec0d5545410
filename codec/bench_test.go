package codec_test

import (
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/agentloop/agentloop/codec"
)

// The cost of the header and the registry lookup on top of the codec:
// each case encodes and decodes one small value, through package codec and
// straight through encoding/json or proto.

type stamp struct {
	Seconds int64
	Nanos   int32
}

func BenchmarkRoundTrip(b *testing.B) {
	var r codec.Registry
	must(b, codec.Register[stamp](&r, "bench.Stamp", codec.JSON))
	must(b, codec.Register[*timestamppb.Timestamp](&r, "google.protobuf.Timestamp", codec.Protobuf))
	ts := &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 42}
	st := stamp{Seconds: 1700000000, Nanos: 42}

	b.Run("json/codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := codec.Marshal(&r, st)
			must(b, err)
			if _, err := codec.Unmarshal[stamp](&r, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json/direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := json.Marshal(st)
			must(b, err)
			var v stamp
			must(b, json.Unmarshal(p, &v))
		}
	})
	b.Run("protobuf/codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := codec.Marshal(&r, ts)
			must(b, err)
			if _, err := codec.Unmarshal[*timestamppb.Timestamp](&r, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("protobuf/direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := proto.Marshal(ts)
			must(b, err)
			must(b, proto.Unmarshal(p, new(timestamppb.Timestamp)))
		}
	})
}
