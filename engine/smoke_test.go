package engine

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

type counter struct{ n *atomic.Int64 }

func (c *counter) Receive(_ *Context, m Message) { c.n.Add(1) }

func TestSmoke(t *testing.T) {
	var n atomic.Int64
	e, err := New(WithLoops(2))
	if err != nil {
		t.Fatal(err)
	}
	// Block: every send waits for room, so nothing may be dropped.
	if err := e.Register("c", func() Agent { return &counter{&n} }, Mailbox(1024, Block)); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	const N = 100000
	for i := 0; i < N; i++ {
		if err := e.SendID(AgentID{"c", "k"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	s := e.Stats()
	t.Logf("n=%d stats=%+v", n.Load(), s.Counts)
	if n.Load() != N || s.DeadLetters != 0 {
		t.Fatalf("delivered %d of %d, %d dead letters", n.Load(), N, s.DeadLetters)
	}
}
