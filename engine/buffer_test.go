package engine

import (
	"bytes"
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/agentloop/agentloop/pool"
)

// bufReader checks, on every delivery, that the payload is intact and its
// buffer still out of the pool.
type bufReader struct {
	bs   *pool.Buffers
	want []byte
	seen *atomic.Int32
	bad  *atomic.Int32
}

func (r *bufReader) Receive(_ *Context, m Message) {
	if !bytes.Equal(m.Payload, r.want) || r.bs.Stats().Live != 1 {
		r.bad.Add(1)
	}
	r.seen.Add(1)
}

// A buffer published to subscribers on both loops returns to its pool
// after the last delivery, never before.
func TestPublishBufferReturnsAfterLastDelivery(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	var bs pool.Buffers
	want := bytes.Repeat([]byte{7}, 64)
	var seen, bad atomic.Int32
	mustRegister(t, e, "r", func() Agent { return &bufReader{bs: &bs, want: want, seen: &seen, bad: &bad} })
	const subs = 6
	for i := range subs {
		id := AgentID{Type: "r", Key: strconv.Itoa(i)}
		mustSpawn(t, e, id, OnLoop(i%2))
		if err := e.SubscribeAgent("t.>", id); err != nil {
			t.Fatal(err)
		}
	}
	b := bs.Get(64)
	copy(b.Bytes(), want)
	if err := e.PublishBuffer("t.x", b); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := bs.Stats()
	if seen.Load() != subs || bad.Load() != 0 {
		t.Fatalf("deliveries %d (want %d), %d saw a returned or changed buffer", seen.Load(), subs, bad.Load())
	}
	if st.Live != 0 || st.Returns != 1 {
		t.Fatalf("after the last delivery: live %d, returns %d; want 0 and 1", st.Live, st.Returns)
	}
	// No subscriber: the buffer goes back at once.
	if err := e.PublishBuffer("nobody.here", bs.Get(8)); err != nil {
		t.Fatal(err)
	}
	if st := bs.Stats(); st.Live != 0 || st.Returns != 2 {
		t.Fatalf("unsubscribed publish: live %d, returns %d", st.Live, st.Returns)
	}
}

// Deliveries that are dead-lettered (a full mailbox) release their
// reference too.
func TestPublishBufferDeadLettersRelease(t *testing.T) {
	e := newEngine(t, WithLoops(1))
	var bs pool.Buffers
	var seen, bad atomic.Int32
	mustRegister(t, e, "r", func() Agent { return &bufReader{bs: &bs, want: []byte("p"), seen: &seen, bad: &bad} },
		Mailbox(2, DropNewest))
	id := AgentID{Type: "r", Key: "1"}
	mustSpawn(t, e, id)
	if err := e.SubscribeAgent("t", id); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		b := bs.Get(1)
		b.Bytes()[0] = 'p'
		if err := e.PublishBuffer("t", b); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := bs.Stats()
	if seen.Load() != 2 || st.Live != 0 || st.Returns != 10 {
		t.Fatalf("delivered %d (want 2), live %d, returns %d (want 0 and 10)", seen.Load(), st.Live, st.Returns)
	}
}
