package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"
)

// typeStats returns the totals of one type.
func typeStats(s Stats, typ string) Counts {
	for _, ts := range s.Types {
		if ts.Type == typ {
			return ts.Counts
		}
	}
	return Counts{}
}

// TestMailboxDropPolicies fills a small mailbox of a paused agent, so the
// messages pile up deterministically, and checks which ones the policy
// keeps, which it dead-letters and why, and what Stats counts.
func TestMailboxDropPolicies(t *testing.T) {
	const capacity, sent = 4, 10
	cases := []struct {
		policy   Overflow
		kept     []string
		deadLets []string
	}{
		{DropNewest, rangeStrs(0, capacity), rangeStrs(capacity, sent)},
		{DropOldest, rangeStrs(sent-capacity, sent), rangeStrs(0, sent-capacity)},
	}
	for _, c := range cases {
		t.Run(c.policy.String(), func(t *testing.T) {
			e := startedEngine(t, WithLoops(2))
			rec := newRecorder()
			e.Use(rec)
			s := newSink()
			mustRegister(t, e, "mb", func() Agent { return s }, Mailbox(capacity, c.policy))
			id := AgentID{"mb", "1"}
			r := mustSpawn(t, e, id, OnLoop(1))
			pauseRunning(t, e, r)
			for i := 0; i < sent; i++ {
				if err := r.Send(seq(i)); err != nil {
					t.Fatalf("Send %d: %v (%v never refuses)", i, err, c.policy)
				}
			}
			settleLoop(t, e, 1)
			// The mailbox holds what the policy kept, and counts its bytes.
			sv, err := e.Survey(context.Background(), 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(sv.Mailboxes) != 1 || sv.Mailboxes[0].Queued != capacity || sv.Mailboxes[0].Bytes != int64(len(strings.Join(c.kept, ""))) {
				t.Errorf("Survey mailboxes %+v, want %d queued holding %d bytes", sv.Mailboxes, capacity, len(strings.Join(c.kept, "")))
			}
			// The drops happen at the mailbox door, while the agent is paused.
			dl := rec.deadLetters()
			if got := payloads(dl, id); !slices.Equal(got, c.deadLets) {
				t.Fatalf("dead letters while paused %q, want %q", got, c.deadLets)
			}
			for _, d := range dl {
				if !errors.Is(d.Reason, ErrMailboxFull) {
					t.Errorf("dead letter %q: reason %v, want ErrMailboxFull", d.Message.Payload, d.Reason)
				}
			}
			if err := e.Resume(id); err != nil {
				t.Fatal(err)
			}
			stop(t, e)
			if got := s.got(id); !slices.Equal(got, c.kept) {
				t.Fatalf("delivered %q, want %q", got, c.kept)
			}
			st := e.Stats()
			ts := typeStats(st, "mb")
			want := Counts{Received: sent, Processed: capacity, Dropped: sent - capacity}
			if ts != want {
				t.Errorf("type stats %+v, want %+v", ts, want)
			}
			if st.DeadLetters != uint64(sent-capacity) {
				t.Errorf("Stats().DeadLetters = %d, want %d", st.DeadLetters, sent-capacity)
			}
		})
	}
}

// TestMailboxRejectOutside: a full Reject mailbox refuses outside senders
// with ErrMailboxFull, and accepts again once the agent has made room.
func TestMailboxRejectOutside(t *testing.T) {
	const capacity = 4
	e := startedEngine(t, WithLoops(2))
	rec := newRecorder()
	e.Use(rec)
	s := newSink()
	mustRegister(t, e, "rj", func() Agent { return s }, Mailbox(capacity, Reject))
	id := AgentID{"rj", "1"}
	r := mustSpawn(t, e, id, OnLoop(0))
	pauseRunning(t, e, r)
	for i := 0; i < capacity; i++ {
		if err := r.Send(seq(i)); err != nil {
			t.Fatalf("Send %d into a mailbox with room: %v", i, err)
		}
	}
	checkErr(t, "Send into a full mailbox", r.Send([]byte("x")), ErrMailboxFull, id.String(), "capacity 4")
	settleLoop(t, e, 0) // the accepted messages are now in the mailbox
	checkErr(t, "Send by ID into a full mailbox", e.SendID(id, []byte("y")), ErrMailboxFull, id.String())

	if err := e.Resume(id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the resumed agent drains its mailbox", func() bool { return s.n.Load() == capacity }, waitTimeout)
	// Room again. The agent publishes its occupancy after each run, so the
	// first sends after the drain may still see it full for a moment.
	eventually(t, "the mailbox accepts again", func() bool { return r.Send([]byte("z")) == nil }, waitTimeout)
	stop(t, e)
	want := append(rangeStrs(0, capacity), "z")
	if got := s.got(id); !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	if n := rec.deadN.Load(); n != 0 {
		t.Fatalf("%d dead letters: a rejected message is the sender's, not a dead letter", n)
	}
}

// TestMailboxFullInEngineSenders: senders inside the engine, on the same
// loop and on another loop, get ErrMailboxFull from a full Reject or Block
// mailbox; a handler never waits.
func TestMailboxFullInEngineSenders(t *testing.T) {
	for _, policy := range []Overflow{Reject, Block} {
		t.Run(policy.String(), func(t *testing.T) {
			const capacity = 3
			e := startedEngine(t, WithLoops(2))
			s := newSink()
			mustRegister(t, e, "full", func() Agent { return s }, Mailbox(capacity, policy))
			target := mustSpawn(t, e, AgentID{"full", "1"}, OnLoop(0))
			results := make(chan error, 2)
			mustRegister(t, e, "sender", recvAgent(func(c *Context, _ Message) {
				results <- c.Send(target, []byte("from "+strconv.Itoa(c.Loop())))
			}))
			pauseRunning(t, e, target)
			for i := 0; i < capacity; i++ {
				if err := target.Send(seq(i)); err != nil {
					t.Fatal(err)
				}
			}
			settleLoop(t, e, 0)
			for loop := 0; loop < 2; loop++ {
				sender := mustSpawn(t, e, AgentID{"sender", strconv.Itoa(loop)}, OnLoop(loop))
				if err := sender.Send(nil); err != nil {
					t.Fatal(err)
				}
				err := wait(t, results, "sender result")
				checkErr(t, "in-engine send from loop "+strconv.Itoa(loop), err, ErrMailboxFull, target.ID().String())
			}
			if err := e.Resume(target.ID()); err != nil {
				t.Fatal(err)
			}
			stop(t, e)
			if got := s.got(target.ID()); !slices.Equal(got, rangeStrs(0, capacity)) {
				t.Fatalf("delivered %q, want 0..%d", got, capacity-1)
			}
		})
	}
}

// TestMailboxBlockOutside: an outside sender to a full Block mailbox waits
// until the agent makes room, then its message is delivered in order; no
// message is dropped.
func TestMailboxBlockOutside(t *testing.T) {
	const capacity = 2
	e := startedEngine(t, WithLoops(2))
	rec := newRecorder()
	e.Use(rec)
	s := newSink()
	mustRegister(t, e, "bl", func() Agent { return s }, Mailbox(capacity, Block))
	id := AgentID{"bl", "1"}
	r := mustSpawn(t, e, id, OnLoop(1))
	pauseRunning(t, e, r)
	for i := 0; i < capacity; i++ {
		if err := r.Send(seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	settleLoop(t, e, 1)

	done := make(chan error, 1)
	go func() { done <- r.Send(seq(capacity)) }()
	// The sender must reach the wait for room and stay there.
	waitBlocked(t, "engine.Ref.Send", done)
	settleLoop(t, e, 1) // the loop has run since, and made no room
	select {
	case err := <-done:
		t.Fatalf("Send to a full Block mailbox returned %v before the agent made room", err)
	default:
	}

	if err := e.Resume(id); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done, "the blocked sender"); err != nil {
		t.Fatalf("blocked Send after Resume: %v", err)
	}
	stop(t, e)
	if got := s.got(id); !slices.Equal(got, rangeStrs(0, capacity+1)) {
		t.Fatalf("delivered %q, want 0..%d in order", got, capacity)
	}
	if n := rec.deadN.Load(); n != 0 {
		t.Fatalf("%d dead letters from a Block mailbox", n)
	}
}

// TestMailboxBlockReleasedByStop: a sender blocked on a mailbox that never
// drains is released by Stop with ErrStopped.
func TestMailboxBlockReleasedByStop(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	rec := newRecorder()
	e.Use(rec)
	s := newSink()
	mustRegister(t, e, "bl", func() Agent { return s }, Mailbox(1, Block))
	r := mustSpawn(t, e, AgentID{"bl", "1"})
	pauseRunning(t, e, r)
	if err := r.Send([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	settleLoop(t, e, 0)
	done := make(chan error, 1)
	go func() { done <- r.Send([]byte("blocked")) }()
	waitBlocked(t, "engine.Ref.Send", done)
	stop(t, e)
	checkErr(t, "blocked Send released by Stop", wait(t, done, "blocked sender"), ErrStopped)
	if got := s.got(r.ID()); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("delivered %q, want the accepted message only", got)
	}
	if n := rec.deadN.Load(); n != 0 {
		t.Fatalf("%d dead letters, want 0", n)
	}
}

// TestMailboxAccounting is a randomized mix of mailbox policies, outside
// senders, forwarding agents on both loops, pauses and resumes. Every send
// that returned nil must end up delivered or dead-lettered, exactly once:
// the counts must match as soon as Stop has returned.
func TestMailboxAccounting(t *testing.T) {
	cases := []struct {
		name string
		// stopEarly stops the engine while the senders still run; their
		// later sends fail with ErrStopped and do not count.
		stopEarly bool
		immediate bool
		opts      []Option
	}{
		{name: "graceful"},
		{name: "immediate", immediate: true},
		{name: "stop while sending", stopEarly: true},
		{name: "stop while sending, tiny inbox", stopEarly: true, opts: []Option{WithInboxSize(4)}},
	}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			e := startedEngine(t, append([]Option{WithLoops(2)}, c.opts...)...)
			rec := newRecorder()
			e.Use(rec)

			var accepted, delivered atomic.Int64
			var ids []AgentID
			policies := []struct {
				typ string
				pol Overflow
			}{{"dn", DropNewest}, {"do", DropOldest}, {"rj", Reject}, {"bl", Block}, {"fw", DropNewest}}
			for _, p := range policies {
				capacity := 4
				if p.typ == "fw" {
					capacity = 64
				}
				mustRegister(t, e, p.typ, func() Agent {
					return &fn{recv: func(c *Context, m Message) {
						delivered.Add(1)
						// Payload: hops, target index. Forwarders pass it on.
						if c.ID().Type != "fw" || m.Payload[0] >= 3 {
							return
						}
						next := []byte{m.Payload[0] + 1, m.Payload[1]*7 + 3}
						to := ids[int(next[1])%len(ids)]
						if c.SendID(to, next) == nil {
							accepted.Add(1)
						}
					}}
				}, Mailbox(capacity, p.pol))
				for k := 0; k < 3; k++ {
					id := AgentID{p.typ, strconv.Itoa(k)}
					mustSpawn(t, e, id, OnLoop(k%2))
					ids = append(ids, id)
				}
			}

			const senders, ops = 4, 1500
			var issued atomic.Int64
			half := make(chan struct{})
			var halfOnce sync.Once
			var wg sync.WaitGroup
			for g := 0; g < senders; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(seed, uint64(g*10+ci)))
					for i := 0; i < ops; i++ {
						if issued.Add(1) == senders*ops/2 {
							halfOnce.Do(func() { close(half) })
						}
						id := ids[rng.IntN(len(ids))]
						var err error
						switch op := rng.IntN(100); {
						case op < 75:
							err = e.SendID(id, []byte{0, byte(rng.IntN(256))})
							if err == nil {
								accepted.Add(1)
							}
						case op < 87:
							if id.Type != "bl" { // nobody would resume a blocked sender's target
								err = e.Pause(id)
							}
						case op < 99:
							err = e.Resume(id)
						default:
							// Burst of sends to one agent.
							for j := 0; j < 20 && err == nil; j++ {
								if err = e.SendID(id, []byte{0, byte(j)}); err == nil {
									accepted.Add(1)
								}
							}
						}
						if errors.Is(err, ErrStopped) {
							return
						}
					}
				}()
			}
			if c.stopEarly {
				<-half
			} else {
				wg.Wait()
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			var opts []StopOption
			if c.immediate {
				opts = append(opts, Immediate())
			}
			if err := e.Stop(ctx, opts...); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			wg.Wait() // senders still running get ErrStopped and return

			st := e.Stats()
			acc, del, dead := accepted.Load(), delivered.Load(), rec.deadN.Load()
			t.Logf("accepted %d, delivered %d, dead letters %d (Stats: %d), dropped %d",
				acc, del, dead, st.DeadLetters, st.Dropped)
			if acc != del+dead {
				t.Errorf("accepted %d != delivered %d + dead-lettered %d (off by %d)", acc, del, dead, acc-del-dead)
			}
			if st.DeadLetters != uint64(dead) {
				t.Errorf("Stats().DeadLetters = %d, observer saw %d", st.DeadLetters, dead)
			}
			if st.Processed != uint64(del) {
				t.Errorf("Stats().Processed = %d, handlers ran %d times", st.Processed, del)
			}
			if st.Queued != 0 || st.Agents != 0 {
				t.Errorf("after Stop: Queued %d, Agents %d; want 0 and 0", st.Queued, st.Agents)
			}
			if del == 0 {
				t.Error("nothing was delivered: the test did not exercise the engine")
			}
		})
	}
}

// TestMailboxFullFromInsideRefusesOutside: when agents on the same loop
// have filled a paused Reject or Block mailbox, an outside sender must be
// refused (Reject) or made to wait (Block). A send that returns nil must
// not then be dead-lettered for a full mailbox.
func TestMailboxFullFromInsideRefusesOutside(t *testing.T) {
	for _, policy := range []Overflow{Reject, Block} {
		t.Run(policy.String(), func(t *testing.T) {
			const capacity = 3
			e := startedEngine(t, WithLoops(1))
			rec := newRecorder()
			e.Use(rec)
			s := newSink()
			mustRegister(t, e, "full", func() Agent { return s }, Mailbox(capacity, policy))
			target := mustSpawn(t, e, AgentID{"full", "1"})
			filled := make(chan []error, 1)
			mustRegister(t, e, "filler", recvAgent(func(c *Context, _ Message) {
				var errs []error
				for i := 0; i < capacity+1; i++ {
					errs = append(errs, c.Send(target, seq(i)))
				}
				filled <- errs
			}))
			pauseRunning(t, e, target)
			if err := e.SendID(AgentID{"filler", "1"}, nil); err != nil {
				t.Fatal(err)
			}
			errs := wait(t, filled, "filler")
			for i, err := range errs[:capacity] {
				if err != nil {
					t.Fatalf("in-engine send %d into a mailbox with room: %v", i, err)
				}
			}
			checkErr(t, "in-engine send into the full mailbox", errs[capacity], ErrMailboxFull)

			done := make(chan error, 1)
			go func() { done <- target.Send([]byte("outside")) }()
			var outsideErr error
			returned := false
			if policy == Reject {
				outsideErr, returned = wait(t, done, "outside Send"), true
				checkErr(t, "outside Send into a mailbox filled from inside", outsideErr, ErrMailboxFull)
			} else {
				eventually(t, "the outside sender waits or returns", func() bool {
					select {
					case outsideErr = <-done:
						returned = true
						return true
					default:
						return blockedIn("engine.Ref.Send")
					}
				}, waitTimeout)
				if returned {
					t.Errorf("outside Send into a full Block mailbox returned %v at once instead of waiting", outsideErr)
				}
			}
			if err := e.Resume(target.ID()); err != nil {
				t.Fatal(err)
			}
			if !returned {
				outsideErr = wait(t, done, "blocked sender after Resume")
			}
			stop(t, e)
			for _, d := range rec.deadLetters() {
				t.Errorf("dead letter %q (%v): an accepted message was dropped", d.Message.Payload, d.Reason)
			}
			t.Logf("outside Send: %v; delivered %q", outsideErr, s.got(target.ID()))
		})
	}
}

// ---- engine bugs: tests below fail until the code is fixed ----

// TestOutsideSendersFeelInboxBackpressure: WithInboxSize documents that a
// full inbox makes outside senders wait. While a loop is stuck in a
// handler, an outside sender must therefore stall after about an inbox's
// worth of messages instead of queueing without bound.
func TestOutsideSendersFeelInboxBackpressure(t *testing.T) {
	const inbox = 64
	e := startedEngine(t, WithLoops(1), WithInboxSize(inbox))
	rec := newRecorder()
	e.Use(rec)
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	var delivered atomic.Int64
	mustRegister(t, e, "slow", recvAgent(func(*Context, Message) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-gate
		delivered.Add(1)
	}), Mailbox(1<<20, DropNewest))
	r := mustSpawn(t, e, AgentID{"slow", "1"})
	if err := r.Send(nil); err != nil {
		t.Fatal(err)
	}
	wait(t, entered, "the handler")

	const total = 20000
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			if r.Send(nil) != nil {
				return
			}
			sent.Add(1)
		}
	}()
	// The subject of the test: while the loop is stuck for a while, the
	// sender must not get far.
	select {
	case <-time.After(300 * time.Millisecond):
	case <-done:
	}
	max := sent.Load()
	close(gate)
	wait(t, done, "the sender")
	stop(t, e)
	if acc, del, dead := 1+sent.Load(), delivered.Load(), rec.deadN.Load(); acc != del+dead {
		t.Errorf("accepted %d != delivered %d + dead-lettered %d", acc, del, dead)
	}
	if max > 4*inbox {
		t.Fatalf("an outside sender got %d messages accepted while the loop was stuck, with an inbox of %d: no backpressure (they queue without bound)", max, inbox)
	}
}

// TestMailboxClearTaken: the slots a run took are cleared when it ends,
// except those a send during the run has reused, which keep their
// messages.
func TestMailboxClearTaken(t *testing.T) {
	var mb mailbox
	for i := range 8 {
		*mb.push() = Message{Payload: seq(i), Topic: "t"}
	}
	buf := mb.buf
	for i := range 5 {
		if p := mb.take(); string(p.Payload) != strconv.Itoa(i) {
			t.Fatalf("take %d: %q", i, p.Payload)
		}
	}
	for i := 8; i < 11; i++ { // three of the five taken slots are reused
		*mb.push() = Message{Payload: seq(i)}
	}
	mb.clearTaken(buf, 5)
	for i := range buf {
		live := mb.n > 0 && (i-int(mb.head)+len(buf))%len(buf) < int(mb.n)
		if !live && (buf[i].Payload != nil || buf[i].Topic != "") {
			t.Errorf("free slot %d still holds %q", i, buf[i].Payload)
		}
	}
	var got []string
	for {
		var m Message
		if !mb.pop(&m) {
			break
		}
		got = append(got, string(m.Payload))
	}
	if want := rangeStrs(5, 11); !slices.Equal(got, want) {
		t.Errorf("left in the mailbox %q, want %q", got, want)
	}
}

// TestMailboxKeepsNoPayloadAlive: once an agent has handled its messages,
// its mailbox holds none of their payloads, also when its handler's sends
// to itself reused the slots of the run.
func TestMailboxKeepsNoPayloadAlive(t *testing.T) {
	const n = 8
	var mu sync.Mutex
	var tracked []weak.Pointer[byte]
	payload := func() []byte {
		b := make([]byte, 64)
		mu.Lock()
		tracked = append(tracked, weak.Make(&b[0]))
		mu.Unlock()
		return b
	}
	var handled atomic.Int64
	e := startedEngine(t, WithLoops(1))
	mustRegister(t, e, "self", recvAgent(func(c *Context, m Message) {
		if handled.Add(1) <= n {
			if err := c.Send(c.Self(), payload()); err != nil {
				t.Error(err)
			}
		}
	}))
	id := AgentID{"self", "1"}
	r := mustSpawn(t, e, id)
	pauseRunning(t, e, r)
	for range n {
		if err := r.Send(payload()); err != nil {
			t.Fatal(err)
		}
	}
	settleLoop(t, e, 0)
	if err := e.Resume(id); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := handled.Load(); got != 2*n {
		t.Fatalf("handled %d messages, want %d", got, 2*n)
	}
	runtime.GC()
	runtime.GC()
	mu.Lock()
	defer mu.Unlock()
	for i, w := range tracked {
		if w.Value() != nil {
			t.Errorf("payload %d of %d is still reachable after delivery", i, len(tracked))
		}
	}
}
