package engine

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentloop/agentloop/lifecycle"
)

// batcher records the sizes and contents of its batches.
type batcher struct {
	sizes []int
	got   []string
	reqs  int
	done  chan struct{}
	want  int
}

func (b *batcher) Receive(c *Context, m Message) {
	b.reqs++
	_ = c.Reply([]byte("ok:" + string(m.Payload)))
}

func (b *batcher) ReceiveBatch(_ *Context, msgs []Message) {
	b.sizes = append(b.sizes, len(msgs))
	for _, m := range msgs {
		b.got = append(b.got, string(m.Payload))
	}
	if len(b.got) == b.want {
		close(b.done)
	}
}

func TestReceiveBatch(t *testing.T) {
	e := newEngine(t, WithLoops(1))
	const n = 100
	b := &batcher{done: make(chan struct{}), want: n}
	mustRegister(t, e, "inf", func() Agent { return b }, Batch(32))
	r := mustSpawn(t, e, AgentID{Type: "inf", Key: "1"})
	for i := range n {
		if err := r.Send([]byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(); err != nil { // all 100 are queued before the first run
		t.Fatal(err)
	}
	wait(t, b.done, "all messages")
	if err := e.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []int{32, 32, 32, 4}
	if len(b.sizes) != len(want) {
		t.Fatalf("batch sizes %v, want %v", b.sizes, want)
	}
	for i := range want {
		if b.sizes[i] != want[i] {
			t.Fatalf("batch sizes %v, want %v", b.sizes, want)
		}
	}
	for i, s := range b.got {
		if s != strconv.Itoa(i) {
			t.Fatalf("message %d is %q: order lost", i, s)
		}
	}
	if st := e.Stats(); st.Processed != n || st.Types[0].Handler.Count != n {
		t.Fatalf("processed %d, handler histogram count %d; want %d", st.Processed, st.Types[0].Handler.Count, n)
	}
}

// A request is never batched: it reaches Receive alone, so Reply answers it.
func TestReceiveBatchRequestAlone(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	b := &batcher{done: make(chan struct{}), want: -1}
	mustRegister(t, e, "inf", func() Agent { return b }, Batch(8))
	r := mustSpawn(t, e, AgentID{Type: "inf", Key: "1"})
	for i := range 3 {
		_ = r.Send([]byte(strconv.Itoa(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	rep, err := e.RequestID(ctx, r.ID(), []byte("q"))
	if err != nil || string(rep) != "ok:q" {
		t.Fatalf("Request = %q, %v", rep, err)
	}
	if err := e.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if b.reqs != 1 || len(b.got) != 3 {
		t.Fatalf("requests %d, batched %d; want 1 and 3", b.reqs, len(b.got))
	}
}

func TestWithBatchRange(t *testing.T) {
	e := newEngine(t)
	for _, n := range []int{0, -1, MaxBatch + 1} {
		if err := e.Register("x"+strconv.Itoa(n), func() Agent { return &batcher{} }, Batch(n)); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Batch(%d): %v, want ErrInvalidOption", n, err)
		}
	}
}

// pooledAgent counts its Resets and Inits.
type pooledAgent struct {
	resets, inits *atomic.Int64
	seen          int
}

func (p *pooledAgent) Init(*Context) error           { p.inits.Add(1); return nil }
func (p *pooledAgent) Receive(_ *Context, _ Message) { p.seen++ }
func (p *pooledAgent) Reset()                        { p.resets.Add(1); p.seen = 0 }

// fromTerminated records the keys of agents that left Terminated.
type fromTerminated struct {
	mu   sync.Mutex
	keys []string
}

func (f *fromTerminated) OnTransition(id AgentID, from, to lifecycle.State) {
	if from == lifecycle.Terminated && to == lifecycle.Idle {
		f.mu.Lock()
		f.keys = append(f.keys, id.Key)
		f.mu.Unlock()
	}
}

func TestPooledRecycling(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	var resets, inits, made atomic.Int64
	var ft fromTerminated
	e.Use(&ft)
	mustRegister(t, e, "p", func() Agent {
		made.Add(1)
		return &pooledAgent{resets: &resets, inits: &inits}
	}, Pooled())
	// sync.Pool may drop a Put (it does so at random under the race
	// detector) and may hand back a record Put in an earlier cycle, so
	// cycle until a record comes back; one reuse is enough to check
	// everything. A reused record shows as a Terminated → Idle transition
	// of the new ID during its spawn, and the stale Ref of the record's
	// last incarnation then reports only its type.
	prev := mustSpawn(t, e, AgentID{Type: "p", Key: "k0"})
	var stale []Ref // every terminated incarnation, in order: stale[j] was "kj"
	reused := false
	for i := 1; i <= 50 && !reused; i++ {
		waitState(t, prev, lifecycle.Running)
		if err := e.Terminate(prev.ID()); err != nil {
			t.Fatal(err)
		}
		waitState(t, prev, lifecycle.Terminated)
		eventually(t, "the agent is reset", func() bool { return resets.Load() == int64(i) }, waitTimeout)
		stale = append(stale, prev)
		ft.mu.Lock()
		recycled := len(ft.keys)
		ft.mu.Unlock()
		next := mustSpawn(t, e, AgentID{Type: "p", Key: "k" + strconv.Itoa(i)})
		waitState(t, next, lifecycle.Running)
		ft.mu.Lock()
		reused = len(ft.keys) > recycled
		ft.mu.Unlock()
		if reused {
			if got := next.ID(); got.Key != "k"+strconv.Itoa(i) {
				t.Fatalf("new Ref's ID %v", got)
			}
			taken := 0
			for j, old := range stale {
				if old == next {
					t.Fatalf("reused record kept its incarnation: the new Ref equals the stale Ref of k%d", j)
				}
				switch got := old.ID(); got {
				case AgentID{Type: "p"}: // this record was the one reused
					taken++
				case AgentID{Type: "p", Key: "k" + strconv.Itoa(j)}: // still in the pool, or dropped
				default:
					t.Fatalf("stale Ref of k%d: ID %v, want its own or only the type", j, got)
				}
				if old.State() != lifecycle.Terminated {
					t.Fatalf("stale Ref of k%d: state %v", j, old.State())
				}
				if err := old.Send(nil); !errors.Is(err, ErrTerminated) {
					t.Fatalf("stale Ref of k%d: Send: %v, want ErrTerminated", j, err)
				}
			}
			if taken != 1 {
				t.Fatalf("one reuse left %d stale Refs reporting only their type, want 1", taken)
			}
			ft.mu.Lock()
			keys := append([]string(nil), ft.keys...)
			ft.mu.Unlock()
			if len(keys) == 0 || keys[len(keys)-1] != "k"+strconv.Itoa(i) {
				t.Fatalf("Terminated → Idle seen for %v", keys)
			}
			// The old incarnation's messages never reach the new one.
			if err := next.Send([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		prev = next
	}
	if !reused {
		t.Fatal("no record was reused in 50 spawn/terminate cycles")
	}
	// Each reuse skipped the factory but ran Init again.
	if spawns := int64(len(ft.keys) + int(made.Load())); inits.Load() != spawns {
		t.Fatalf("Inits %d for %d spawns", inits.Load(), spawns)
	}
}
