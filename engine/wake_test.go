package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seqChecker is an agent that checks that each sender's messages arrive
// exactly once and in order. Payload: sender (1 byte), sequence (4 bytes).
type seqChecker struct {
	next   [8]uint32 // loop-owned: the next sequence expected per sender
	total  *atomic.Int64
	want   int64
	done   chan struct{}
	failed chan string // first failure
}

func (a *seqChecker) Receive(c *Context, m Message) {
	s, n := m.Payload[0], binary.LittleEndian.Uint32(m.Payload[1:])
	if n != a.next[s] {
		select {
		case a.failed <- fmt.Sprintf("%v: sender %d: got #%d, want #%d", c.ID(), s, n, a.next[s]):
		default:
		}
	}
	a.next[s] = n + 1
	if a.total.Add(1) == a.want {
		close(a.done)
	}
}

// waitDelivered waits for done or a failure, and on a hang reports the
// loops' state so a lost wake-up is visible.
func waitDelivered(t *testing.T, e *Engine, done <-chan struct{}, failed <-chan string, total *atomic.Int64, want int64) {
	t.Helper()
	select {
	case <-done:
	case msg := <-failed:
		t.Fatal(msg)
	case <-time.After(30 * time.Second):
		s := e.Stats()
		for _, ls := range s.Loops {
			t.Logf("loop %d: inbox %d, runnable %d, turns %d, parks %d, queued %d", ls.Loop, ls.Inbox, ls.Runnable, ls.Turns, ls.Parks, ls.Queued)
		}
		t.Fatalf("only %d of %d messages delivered: a wake-up was lost", total.Load(), want)
	}
	select {
	case msg := <-failed:
		t.Fatal(msg)
	default:
	}
}

// TestNoLostWakeUpsFromOutside has four goroutines send 200k messages in
// small bursts, yielding between bursts so the loops keep running dry and
// parking. Every message must be delivered exactly once, in per-sender
// order, and the loops must really have parked.
func TestNoLostWakeUpsFromOutside(t *testing.T) {
	const senders, perSender, agents = 4, 50_000, 8
	e := startedEngine(t, WithLoops(2))
	rec := newRecorder()
	e.Use(rec)
	var total atomic.Int64
	done := make(chan struct{})
	failed := make(chan string, 1)
	mustRegister(t, e, "chk", func() Agent {
		return &seqChecker{total: &total, want: senders * perSender, done: done, failed: failed}
	}, Mailbox(senders*perSender, DropNewest))
	refs := make([]Ref, agents)
	for i := range refs {
		refs[i] = mustSpawn(t, e, AgentID{"chk", fmt.Sprint(i)}, OnLoop(i%2))
	}
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(s), 77))
			buf := make([]byte, perSender*5) // payloads, sliced without copying
			var next [agents]uint32
			for i := 0; i < perSender; {
				to := rng.IntN(agents)
				for b := 1 + rng.IntN(16); b > 0 && i < perSender; b-- {
					p := buf[i*5 : i*5+5 : i*5+5]
					p[0] = byte(s)
					binary.LittleEndian.PutUint32(p[1:], next[to])
					next[to]++
					if err := refs[to].Send(p); err != nil {
						select {
						case failed <- fmt.Sprintf("sender %d: Send: %v", s, err):
						default:
						}
						return
					}
					i++
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	waitDelivered(t, e, done, failed, &total, senders*perSender)
	stop(t, e)
	if n := rec.deadN.Load(); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
	for _, ls := range e.Stats().Loops {
		t.Logf("loop %d: %d turns, %d parks", ls.Loop, ls.Turns, ls.Parks)
		if ls.Parks == 0 {
			t.Errorf("loop %d never parked: the test did not exercise park/wake", ls.Loop)
		}
	}
}

// TestNoLostWakeUpsPingPong bounces a message 50k times between two agents
// on different loops. Each side is parked while the other works, so every
// hop is a wake-up of a parked (or parking) loop: with handoffs off, of its
// goroutine; with them on (the default), the posting loop runs the parked
// one's turns itself, and falls back to waking its goroutine whenever it
// has work of its own.
func TestNoLostWakeUpsPingPong(t *testing.T) {
	t.Run("handoff", func(t *testing.T) { testPingPongWakeUps(t, true) })
	t.Run("no handoff", func(t *testing.T) { testPingPongWakeUps(t, false) })
}

func testPingPongWakeUps(t *testing.T, handoff bool) {
	const rounds = 50_000
	e := startedEngine(t, WithLoops(2), WithHandoff(handoff))
	done := make(chan struct{})
	failed := make(chan string, 1)
	fail := func(format string, args ...any) {
		select {
		case failed <- fmt.Sprintf(format, args...):
		default:
		}
	}
	var pongs atomic.Int64
	var pong Ref
	mustRegister(t, e, "ping", func() Agent {
		next := uint32(0)
		return &fn{recv: func(c *Context, m Message) {
			if len(m.Payload) == 4 { // a pong
				if n := binary.LittleEndian.Uint32(m.Payload); n != next {
					fail("ping: got pong #%d, want #%d", n, next)
				}
				next++
				if pongs.Add(1) == rounds {
					close(done)
					return
				}
			}
			if err := c.Send(pong, binary.LittleEndian.AppendUint32(nil, next)); err != nil {
				fail("ping: Send: %v", err)
			}
		}}
	})
	mustRegister(t, e, "pong", func() Agent {
		next := uint32(0)
		return &fn{recv: func(c *Context, m Message) {
			if n := binary.LittleEndian.Uint32(m.Payload); n != next {
				fail("pong: got ping #%d, want #%d", n, next)
			}
			next++
			if err := c.Send(m.Sender, m.Payload); err != nil {
				fail("pong: Send: %v", err)
			}
		}}
	})
	ping := mustSpawn(t, e, AgentID{"ping", "1"}, OnLoop(0))
	pong = mustSpawn(t, e, AgentID{"pong", "1"}, OnLoop(1))
	before := e.Stats()
	if err := ping.Send(nil); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, e, done, failed, &pongs, rounds)
	after := e.Stats()
	stop(t, e)
	var borrowed uint64
	for i := range after.Loops {
		parks := after.Loops[i].Parks - before.Loops[i].Parks
		b := after.Loops[i].Borrowed - before.Loops[i].Borrowed
		borrowed += b
		t.Logf("loop %d: %d parks, borrowed %d times during %d round trips", i, parks, b, rounds)
		if !handoff && parks == 0 {
			t.Errorf("loop %d never parked during the ping-pong", i)
		}
		if !handoff && b != 0 {
			t.Errorf("loop %d was borrowed %d times with handoffs off", i, b)
		}
	}
	if handoff && borrowed == 0 {
		t.Error("no loop ran its peer's turns during the ping-pong with handoffs on")
	}
	if st := e.Stats(); st.DeadLetters != 0 {
		t.Fatalf("%d dead letters", st.DeadLetters)
	}
}

// TestIdleEngineMakesNoTurns: once every loop has parked, an engine with
// nothing to do, even with a far-off timer armed, runs no turn at all: it
// sleeps instead of polling.
func TestIdleEngineMakesNoTurns(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	armed := make(chan struct{}, 2)
	mustRegister(t, e, "t", recvAgent(func(c *Context, _ Message) {
		if _, err := c.After(time.Hour, nil); err != nil {
			t.Error(err)
		}
		armed <- struct{}{}
	}))
	for i := 0; i < 2; i++ {
		if err := e.SendID(AgentID{"t", fmt.Sprint(i)}, nil); err != nil {
			t.Fatal(err)
		}
		mustSpawn(t, e, AgentID{"t", fmt.Sprint(10 + i)}, OnLoop(i))
		if err := e.SendID(AgentID{"t", fmt.Sprint(10 + i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ {
		wait(t, armed, "timer armed")
	}
	// A loop that parked with part of its counters unpublished is woken by
	// the next Stats for the rest, and parks again: let that happen before
	// the measurement, so that from then on nothing has a reason to wake a
	// loop.
	e.Stats()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
	before := e.Stats()
	// The subject of the test, not a synchronisation: time passes.
	time.Sleep(100 * time.Millisecond)
	after := e.Stats()
	for i := range after.Loops {
		b, a := before.Loops[i], after.Loops[i]
		if a.Turns != b.Turns || a.Parks != b.Parks {
			t.Errorf("idle loop %d ran %d turns and parked %d times in 100ms", i, a.Turns-b.Turns, a.Parks-b.Parks)
		}
	}
	stop(t, e)
}
