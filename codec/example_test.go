package codec_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/agentloop/agentloop/codec"
	"github.com/agentloop/agentloop/engine"
)

// Reading is a message of the examples, sent as JSON.
type Reading struct {
	Device  string
	Celsius float64
}

// Registered once per program; the name is part of the wire format.
func init() {
	codec.MustRegister[Reading](codec.Default, "example.Reading/v1", codec.JSON)
	codec.MustRegister[*wrapperspb.DoubleValue](codec.Default, "example.Average", codec.Protobuf)
}

// exampleEngine returns a started one-loop engine and a function that
// stops it.
func exampleEngine() (*engine.Engine, func()) {
	e, err := engine.New(engine.WithLoops(1), engine.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	return e, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	}
}

// SendRef encodes a Reading with its registered codec; Decode reads it
// back in a plain agent.
func ExampleDecode() {
	e, stop := exampleEngine()
	defer stop()
	done := make(chan struct{})
	_ = e.Register("display", func() engine.Agent {
		return agentFunc(func(_ *engine.Context, m engine.Message) {
			r, err := codec.Decode[Reading](m)
			if err != nil {
				fmt.Println("error:", err)
			} else {
				fmt.Printf("%s: %.1f°C\n", r.Device, r.Celsius)
			}
			if h, _, err := codec.Inspect(m.Payload); err == nil {
				fmt.Printf("travelled as %s, content id %d\n", h.TypeName, h.Content)
			}
			close(done)
		})
	})
	_ = e.Start()
	ref, _ := e.Spawn(engine.AgentID{Type: "display", Key: "hall"})
	if err := codec.SendRef(ref, Reading{Device: "dev-7", Celsius: 21.5}); err != nil {
		fmt.Println(err)
	}
	<-done
	// Output:
	// dev-7: 21.5°C
	// travelled as example.Reading/v1, content id 1
}

// Handle turns a function of a Go value into an agent; Send forwards a
// value from inside a handler.
func ExampleHandle() {
	e, stop := exampleEngine()
	defer stop()
	done := make(chan struct{})
	_ = e.Register("printer", func() engine.Agent {
		return codec.Handle(func(_ *engine.Context, r Reading) {
			fmt.Printf("%s %.1f\n", r.Device, r.Celsius)
			close(done)
		})
	})
	var printer engine.Ref
	_ = e.Register("fahrenheit", func() engine.Agent {
		return codec.Handle(func(c *engine.Context, r Reading) {
			r.Celsius = r.Celsius*9/5 + 32
			_ = codec.Send(c, printer, r)
		})
	})
	_ = e.Start()
	printer, _ = e.Spawn(engine.AgentID{Type: "printer", Key: "1"})
	conv, _ := e.Spawn(engine.AgentID{Type: "fahrenheit", Key: "1"})
	_ = codec.SendRef(conv, Reading{Device: "dev-1", Celsius: 100})
	<-done
	// Output: dev-1 212.0
}

// A Router gives one agent a handler per message type, and one for raw
// payloads such as timer ticks.
func ExampleRouter() {
	e, stop := exampleEngine()
	defer stop()
	done := make(chan struct{})
	_ = e.Register("hub", func() engine.Agent {
		rt := codec.NewRouter(nil) // Default
		_ = codec.Route(rt, func(_ *engine.Context, r Reading) { fmt.Println("reading from", r.Device) })
		_ = codec.Route(rt, func(_ *engine.Context, v *wrapperspb.DoubleValue) { fmt.Println("average", v.GetValue()) })
		rt.Raw(func(_ *engine.Context, m engine.Message) {
			fmt.Printf("raw %q\n", m.Payload)
			close(done)
		})
		return rt
	})
	_ = e.Start()
	hub, _ := e.Spawn(engine.AgentID{Type: "hub", Key: "1"})
	_ = codec.SendRef(hub, Reading{Device: "dev-3"})
	_ = codec.SendRef(hub, wrapperspb.Double(19.25))
	_ = hub.Send([]byte("tick"))
	<-done
	// Output:
	// reading from dev-3
	// average 19.25
	// raw "tick"
}

// Request sends a Go value and decodes the reply; Reply answers with one.
func ExampleRequest() {
	e, stop := exampleEngine()
	defer stop()
	_ = e.Register("averager", func() engine.Agent {
		var sum float64
		var n int
		return codec.Handle(func(c *engine.Context, r Reading) {
			sum += r.Celsius
			n++
			_ = codec.Reply(c, wrapperspb.Double(sum/float64(n)))
		})
	})
	_ = e.Start()
	avg, _ := e.Spawn(engine.AgentID{Type: "averager", Key: "1"})
	ctx := context.Background()
	for _, c := range []float64{20, 22, 27} {
		v, err := codec.Request[Reading, *wrapperspb.DoubleValue](ctx, avg, Reading{Device: "d", Celsius: c})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(v.GetValue())
	}
	// Output:
	// 20
	// 21
	// 23
}

// RequestFrom is a typed request from a handler: the reply comes back,
// decoded, to a callback on the requester's loop.
func ExampleRequestFrom() {
	e, stop := exampleEngine()
	defer stop()
	done := make(chan struct{})
	_ = e.Register("doubler", func() engine.Agent {
		return codec.Handle(func(c *engine.Context, v *wrapperspb.DoubleValue) {
			_ = codec.Reply(c, wrapperspb.Double(2*v.GetValue()))
		})
	})
	var doubler engine.Ref
	_ = e.Register("asker", func() engine.Agent {
		return agentFunc(func(c *engine.Context, _ engine.Message) {
			err := codec.RequestFrom(c, doubler, wrapperspb.Double(1.5), time.Second,
				func(_ *engine.Context, v *wrapperspb.DoubleValue, err error) {
					fmt.Println(v.GetValue(), err)
					close(done)
				})
			if err != nil {
				fmt.Println(err)
			}
		})
	})
	_ = e.Start()
	doubler, _ = e.Spawn(engine.AgentID{Type: "doubler", Key: "1"})
	asker, _ := e.Spawn(engine.AgentID{Type: "asker", Key: "1"})
	_ = asker.Send(nil)
	<-done
	// Output: 3 <nil>
}

// Unmarshal refuses what it was not written for, with an error naming the
// offending value.
func ExampleUnmarshal() {
	_, err := codec.Unmarshal[Reading](nil, []byte(`{"Device":"d"}`))
	fmt.Println(err)
	p, _ := codec.Marshal(nil, wrapperspb.Double(1))
	_, err = codec.Unmarshal[Reading](nil, p)
	fmt.Println(err)
	// Output:
	// codec: not an encoded message: first byte 0x7b, want 0xc1
	// codec: message holds another type: "example.Average", not "example.Reading/v1" (codec_test.Reading)
}
