package bench

import (
	"encoding/binary"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/agentloop/agentloop/codec"
	"github.com/agentloop/agentloop/engine"
)

// Typed messages: W1's in-loop burst (1024 messages from A to B on one
// loop) with a small struct as the message, sent and decoded per message:
//
//   - raw:      W1 itself, one shared 64-byte []byte, nothing encoded;
//   - binary:   the struct hand-encoded with encoding/binary varints into
//     a fresh slice per message and decoded by hand, what users write
//     without package codec;
//   - json:     codec.Send and codec.Decode of the struct with codec.JSON;
//   - protobuf: the same two fields as a *timestamppb.Timestamp with
//     codec.Protobuf.
//
// ns/msg is per message sent and received; allocs/op and B/op are per
// message too (one op is one message).

// stamp is the struct the json and binary cases send: the two fields of
// a protobuf Timestamp.
type stamp struct {
	Seconds int64
	Nanos   int32
}

func init() {
	codec.MustRegister[stamp](codec.Default, "bench.Stamp", codec.JSON)
	codec.MustRegister[*timestamppb.Timestamp](codec.Default, "google.protobuf.Timestamp", codec.Protobuf)
}

func BenchmarkTyped_InLoopSend(b *testing.B) {
	cases := []struct {
		name string
		send func(c *engine.Context, to engine.Ref, i int) error
		recv func(m engine.Message) (int64, error)
	}{
		{"codec=raw", func(c *engine.Context, to engine.Ref, _ int) error {
			return c.Send(to, payload)
		}, func(m engine.Message) (int64, error) { return int64(len(m.Payload)), nil }},
		{"codec=binary", func(c *engine.Context, to engine.Ref, i int) error {
			p := make([]byte, 0, 2*binary.MaxVarintLen64)
			p = binary.AppendVarint(p, int64(i))
			p = binary.AppendVarint(p, int64(i%1e9))
			return c.Send(to, p)
		}, func(m engine.Message) (int64, error) {
			s, n := binary.Varint(m.Payload)
			_, k := binary.Varint(m.Payload[n:])
			if n <= 0 || k <= 0 {
				return 0, errShort
			}
			return s, nil
		}},
		{"codec=json", func(c *engine.Context, to engine.Ref, i int) error {
			return codec.Send(c, to, stamp{Seconds: int64(i), Nanos: int32(i % 1e9)})
		}, func(m engine.Message) (int64, error) {
			s, err := codec.Decode[stamp](m)
			return s.Seconds, err
		}},
		{"codec=protobuf", func(c *engine.Context, to engine.Ref, i int) error {
			return codec.Send(c, to, &timestamppb.Timestamp{Seconds: int64(i), Nanos: int32(i % 1e9)})
		}, func(m engine.Message) (int64, error) {
			s, err := codec.Decode[*timestamppb.Timestamp](m)
			return s.GetSeconds(), err
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) { benchTyped(b, tc.send, tc.recv) })
	}
}

type typedErr string

func (e typedErr) Error() string { return string(e) }

const errShort = typedErr("bench: short binary message")

func benchTyped(b *testing.B, send func(*engine.Context, engine.Ref, int) error, recv func(engine.Message) (int64, error)) {
	e := newEngine(b, 2)
	done := make(chan struct{}, 1)
	var failed error
	var sum int64
	n := 0
	must(b, e.Register("recv", func() engine.Agent {
		return agentFunc(func(_ *engine.Context, m engine.Message) {
			v, err := recv(m)
			if err != nil && failed == nil {
				failed = err
			}
			sum += v
			if n++; n == w1Burst {
				n = 0
				done <- struct{}{}
			}
		})
	}))
	var to engine.Ref
	must(b, e.Register("send", func() engine.Agent {
		return agentFunc(func(c *engine.Context, _ engine.Message) {
			for i := 0; i < w1Burst; i++ {
				if err := send(c, to, i); err != nil && failed == nil {
					failed = err
				}
			}
		})
	}))
	must(b, e.Start())
	var err error
	to, err = e.Spawn(engine.AgentID{Type: "recv", Key: "b"}, engine.OnLoop(0))
	must(b, err)
	from, err := e.Spawn(engine.AgentID{Type: "send", Key: "a"}, engine.OnLoop(0))
	must(b, err)
	bursts := (b.N + w1Burst - 1) / w1Burst
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < bursts; i++ {
		must(b, from.Send(nil))
		<-done
	}
	b.StopTimer()
	// Both agents run on loop 0, whose handlers finished before done was
	// received: failed and sum are safe to read here.
	must(b, failed)
	if sum == 0 {
		b.Fatal("nothing decoded")
	}
	reportRate(b, bursts*w1Burst)
}

// agentFunc is an agent made of its Receive function.
type agentFunc func(c *engine.Context, m engine.Message)

func (f agentFunc) Receive(c *engine.Context, m engine.Message) { f(c, m) }
