package engine_test

// Pooled agents and pool.Buffers payloads.
//
// buffer.go PublishBuffer: "the engine retains b once per subscriber it
// delivers to and releases it after that subscriber's handler returns (or
// when the message is dead-lettered). The buffer goes back to its pool
// after the last delivery; with no subscriber, at once." README: "So the
// buffer returns to its size class after the last delivery, never
// earlier."

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/lifecycle"
	"github.com/agentloop/agentloop/pool"
)

// bufReceiver checks, in every delivery, that the buffer is still live and
// its bytes intact.
type bufReceiver struct {
	bs      *pool.Buffers
	want    string
	seen    *atomic.Int32
	bad     *accLog
	panicOn string
}

func (r *bufReceiver) Receive(c *engine.Context, m engine.Message) { r.one(c, m) }

func (r *bufReceiver) one(c *engine.Context, m engine.Message) {
	r.seen.Add(1)
	if live := r.bs.Stats().Live; live != 1 {
		r.bad.add(fmt.Sprintf("%s: Live = %d during delivery", c.ID(), live))
	}
	if string(m.Payload) != r.want {
		r.bad.add(fmt.Sprintf("%s: payload %q", c.ID(), m.Payload))
	}
	if r.panicOn != "" && c.ID().Key == r.panicOn {
		panic("handler panics holding the buffer")
	}
}

type bufBatchReceiver struct{ bufReceiver }

func (r *bufBatchReceiver) ReceiveBatch(c *engine.Context, msgs []engine.Message) {
	for _, m := range msgs {
		r.one(c, m)
	}
}

func TestAcceptancePoolBufferReleasedAfterLastDelivery(t *testing.T) {
	cases := []struct {
		name    string
		inside  bool   // Context.PublishBuffer from a handler on loop 0
		panicOn string // key of a subscriber whose handler panics
		batch   bool
	}{
		{name: "outside"},
		{name: "handler", inside: true},
		{name: "outside/panic", panicOn: "1"},
		{name: "handler/panic", inside: true, panicOn: "0"},
		{name: "outside/batch", batch: true},
		{name: "outside/batch/panic", batch: true, panicOn: "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := accNew(t, engine.WithLoops(2))
			obs := accObserve(e)
			var bs pool.Buffers
			var seen atomic.Int32
			var bad accLog
			const body = "zero-copy payload"
			mk := func() engine.Agent {
				r := bufReceiver{bs: &bs, want: body, seen: &seen, bad: &bad, panicOn: tc.panicOn}
				if tc.batch {
					return &bufBatchReceiver{r}
				}
				return &r
			}
			accRegister(t, e, "sub", mk, engine.Restarts(10, time.Minute))
			accRegister(t, e, "tsub", mk, engine.Restarts(10, time.Minute))
			for i := 0; i < 4; i++ {
				id := engine.AgentID{Type: "sub", Key: fmt.Sprint(i)}
				accSpawn(t, e, id, engine.OnLoop(i%2))
				if err := e.SubscribeAgent("b.*", id); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.SubscribeType("b.*", "tsub"); err != nil { // one more delivery, to tsub/k
				t.Fatal(err)
			}
			done := make(chan error, 1)
			accRegister(t, e, "pub", accRecvOnly(func(c *engine.Context, m engine.Message) {
				b := bs.Get(len(body))
				copy(b.Bytes(), body)
				done <- c.PublishBuffer("b.k", b)
			}))
			accStart(t, e)
			accIdle(t, e)
			if tc.inside {
				if err := e.SendID(engine.AgentID{Type: "pub", Key: "p"}, nil); err != nil {
					t.Fatal(err)
				}
				if err := accRecv(t, done, "publish"); err != nil {
					t.Fatal(err)
				}
			} else {
				b := bs.Get(len(body))
				copy(b.Bytes(), body)
				if err := e.PublishBuffer("b.k", b); err != nil {
					t.Fatal(err)
				}
			}
			accIdle(t, e)
			if n := seen.Load(); n != 5 {
				t.Errorf("%d deliveries, want 5", n)
			}
			for _, s := range bad.get() {
				t.Error(s)
			}
			if st := bs.Stats(); st.Live != 0 || st.Returns != 1 {
				t.Errorf("after the last delivery: Live %d Returns %d, want 0 and 1", st.Live, st.Returns)
			}
			for _, p := range obs.allPanics() {
				if p.value != "handler panics holding the buffer" {
					t.Errorf("unexpected panic %v", p.value) // e.g. a Release too many
				}
			}
		})
	}
}

// A buffer whose deliveries are dead-lettered (full DropNewest mailbox,
// terminated subscriber) still returns once, after the last reference.
func TestAcceptancePoolBufferReleasedWhenDeadLettered(t *testing.T) {
	e := accNew(t, engine.WithLoops(2))
	obs := accObserve(e)
	var bs pool.Buffers
	entered := make(chan struct{}, 1)
	gate := make(chan struct{})
	var handled atomic.Int32
	accRegister(t, e, "sub", accRecvOnly(func(c *engine.Context, m engine.Message) {
		if string(m.Payload) == "hold" {
			entered <- struct{}{}
			accGateWait(gate)
			return
		}
		handled.Add(1)
	}), engine.Mailbox(1, engine.DropNewest))
	id := engine.AgentID{Type: "sub", Key: "1"}
	r := accSpawn(t, e, id, engine.OnLoop(1))
	if err := e.SubscribeAgent("b", id); err != nil {
		t.Fatal(err)
	}
	accStart(t, e)
	if err := r.Send([]byte("hold")); err != nil {
		t.Fatal(err)
	}
	accRecv(t, entered, "hold")
	const n = 4
	for i := 0; i < n; i++ {
		b := bs.Get(8)
		if err := e.PublishBuffer("b", b); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	accIdle(t, e)
	if h, dl := int(handled.Load()), len(obs.deadTo("sub")); h+dl != n || dl == 0 {
		t.Errorf("handled %d + dead-lettered %d, want %d with some dead letters", h, dl, n)
	}
	if st := bs.Stats(); st.Live != 0 || st.Returns != n {
		t.Errorf("Live %d Returns %d, want 0 and %d", st.Live, st.Returns, n)
	}
	// With no subscriber the buffer goes back at once.
	if err := e.PublishBuffer("nobody", bs.Get(8)); err != nil {
		t.Fatal(err)
	}
	if st := bs.Stats(); st.Live != 0 {
		t.Errorf("PublishBuffer without subscribers: Live %d", st.Live)
	}
}

// options.go Pooled: "its loop Resets the agent value ... the next Spawn of
// the type placed on that loop takes it, moves it Terminated → Idle →
// Initializing and gives it the new ID under a new incarnation, so Refs to
// the old agent keep failing with ErrTerminated." agent.go Ref.State: "An
// agent recycled by a pool reports Terminated to its old Refs." README:
// "their ID() reports only the type".
func TestAcceptancePoolPooledAgents(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	obs := accObserve(e)
	var made, resets atomic.Int32
	var got accLog
	accRegister(t, e, "p", func() engine.Agent {
		made.Add(1)
		return &pooledAgent{resets: &resets, got: &got}
	}, engine.Pooled())
	accStart(t, e)
	var old []engine.Ref
	const cycles = 20
	for i := 0; i < cycles; i++ {
		id := engine.AgentID{Type: "p", Key: fmt.Sprint(i)}
		r := accSpawn(t, e, id)
		if err := r.Send([]byte(id.Key)); err != nil {
			t.Fatal(err)
		}
		accIdle(t, e)
		if err := e.Terminate(id); err != nil {
			t.Fatal(err)
		}
		accIdle(t, e)
		old = append(old, r)
	}
	if n := resets.Load(); n != cycles {
		t.Errorf("Reset ran %d times for %d terminations", n, cycles)
	}
	for i, s := range got.get() {
		if s != fmt.Sprintf("%d clean=true", i) {
			t.Errorf("delivery %d: %q (a reused value must be Reset)", i, s)
		}
	}
	reused := 0
	for i, r := range old {
		accIs(t, "Send through an old Ref", r.Send(nil), engine.ErrTerminated)
		if r.State() != lifecycle.Terminated {
			t.Errorf("old Ref %d reports %v", i, r.State())
		}
		if id := r.ID(); id.Type != "p" || (id.Key != "" && id.Key != fmt.Sprint(i)) {
			t.Errorf("old Ref %d ID() = %v", i, id)
		} else if id.Key == "" {
			reused++
		}
	}
	if reused > 0 {
		// A reused record went Terminated → Idle → Initializing.
		found := false
		for i := 1; i < cycles; i++ {
			tr := obs.transitions(engine.AgentID{Type: "p", Key: fmt.Sprint(i)})
			if len(tr) > 0 && tr[0] == [2]lifecycle.State{lifecycle.Terminated, lifecycle.Idle} {
				found = true
				if len(tr) < 2 || tr[1] != [2]lifecycle.State{lifecycle.Idle, lifecycle.Initializing} {
					t.Errorf("reused agent %d transitions %v", i, tr)
				}
			}
		}
		if !found {
			t.Errorf("%d records reused but no Terminated → Idle transition observed", reused)
		}
	}
}

type pooledAgent struct {
	resets *atomic.Int32
	got    *accLog
	dirty  bool
}

func (a *pooledAgent) Receive(c *engine.Context, m engine.Message) {
	a.got.add(fmt.Sprintf("%s clean=%v", m.Payload, !a.dirty))
	a.dirty = true
}

func (a *pooledAgent) Reset() { a.resets.Add(1); a.dirty = false }
