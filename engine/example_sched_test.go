package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/pool"
)

// model is an inference agent: it takes its queued features in batches.
type model struct{ out chan<- string }

func (m *model) Receive(c *engine.Context, msg engine.Message) {
	m.ReceiveBatch(c, []engine.Message{msg})
}

// ReceiveBatch gets up to the type's batch size of queued messages. The
// slice is the loop's and is reused: keep values, never the slice.
func (m *model) ReceiveBatch(_ *engine.Context, msgs []engine.Message) {
	keys := make([]string, len(msgs))
	for i, msg := range msgs {
		keys[i] = string(msg.Payload)
	}
	m.out <- fmt.Sprintf("batch of %d: %s", len(msgs), strings.Join(keys, ","))
}

// A batch agent at the highest priority, with a batch size of 4.
func ExampleBatch() {
	e, _ := engine.New(engine.WithLoops(1))
	out := make(chan string, 4)
	_ = e.Register("inference", func() engine.Agent { return &model{out: out} },
		engine.Priority(100), engine.Batch(4))
	ref, _ := e.Spawn(engine.AgentID{Type: "inference", Key: "0"})
	for _, f := range []string{"a", "b", "c", "d", "e", "f"} {
		_ = ref.Send([]byte(f)) // queued before Start: delivered in batches
	}
	_ = e.Start()
	fmt.Println(<-out)
	fmt.Println(<-out)
	_ = e.Stop(context.Background())
	// Output:
	// batch of 4: a,b,c,d
	// batch of 2: e,f
}

// lookup does its blocking I/O on the worker pool and hears back on its
// own loop.
type lookup struct{ out chan<- string }

func (l *lookup) Receive(c *engine.Context, m engine.Message) {
	key := string(m.Payload)
	err := c.Go(func(ctx context.Context) ([]byte, error) {
		// A database or HTTP call, given ctx: it ends with the agent or
		// with Stop.
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		if key == "missing" {
			return nil, errors.New("not found")
		}
		return []byte(strings.ToUpper(key)), nil
	}, func(c *engine.Context, res []byte, err error) {
		if err != nil {
			l.out <- key + ": " + err.Error()
			return
		}
		l.out <- key + ": " + string(res)
	})
	if errors.Is(err, engine.ErrOverloaded) {
		l.out <- key + ": try later"
	}
}

func ExampleContext_Go() {
	e, _ := engine.New(engine.WithLoops(1), engine.WithWorkers(8, 64))
	out := make(chan string, 2)
	_ = e.Register("lookup", func() engine.Agent { return &lookup{out: out} })
	_ = e.Start()
	ref, _ := e.Spawn(engine.AgentID{Type: "lookup", Key: "1"})
	_ = ref.Send([]byte("sensor"))
	fmt.Println(<-out)
	_ = ref.Send([]byte("missing"))
	fmt.Println(<-out)
	_ = e.Stop(context.Background()) // cancels running work's ctx, waits for it
	// Output:
	// sensor: SENSOR
	// missing: not found
}

// session is a short-lived agent whose value is recycled.
type session struct{ seen int }

func (s *session) Receive(*engine.Context, engine.Message) { s.seen++ }
func (s *session) Reset()                                  { s.seen = 0 }

// A pooled type reuses the records and values of terminated agents.
func ExamplePooled() {
	e, _ := engine.New(engine.WithLoops(1))
	made := 0
	_ = e.Register("session", func() engine.Agent { made++; return &session{} }, engine.Pooled())
	_ = e.Start()
	first, _ := e.Spawn(engine.AgentID{Type: "session", Key: "a"})
	_ = e.Terminate(first.ID())
	for first.State().String() != "Terminated" {
		time.Sleep(time.Millisecond)
	}
	_ = e.WaitIdle(context.Background())
	second, _ := e.Spawn(engine.AgentID{Type: "session", Key: "b"})
	_ = e.WaitIdle(context.Background())
	fmt.Println("old ref:", first.State(), first.Send(nil) != nil)
	fmt.Println("new ref:", second.ID())
	fmt.Println("values made:", made <= 2)
	_ = e.Stop(context.Background())
	// Output:
	// old ref: Terminated true
	// new ref: session/b
	// values made: true
}

// A payload from a buffer pool, published to three subscribers, goes back
// to the pool after the last of them has handled it.
func ExampleEngine_PublishBuffer() {
	var bufs pool.Buffers
	e, _ := engine.New(engine.WithLoops(2))
	_ = e.Register("reader", func() engine.Agent { return &session{} })
	for _, k := range []string{"1", "2", "3"} {
		id := engine.AgentID{Type: "reader", Key: k}
		_, _ = e.Spawn(id)
		_ = e.SubscribeAgent("frames.>", id)
	}
	_ = e.Start()
	b := bufs.Get(1024)
	copy(b.Bytes(), "frame")
	_ = e.PublishBuffer("frames.cam1", b) // the engine owns the reference now
	_ = e.WaitIdle(context.Background())
	st := bufs.Stats()
	fmt.Println("live:", st.Live, "returned:", st.Returns)
	_ = e.Stop(context.Background())
	// Output:
	// live: 0 returned: 1
}
