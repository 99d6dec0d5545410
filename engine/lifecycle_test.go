package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentloop/agentloop/lifecycle"
)

// events is an ordered, concurrency-safe log of what an agent saw.
type events struct {
	mu  sync.Mutex
	log []string
}

func (ev *events) add(format string, args ...any) {
	ev.mu.Lock()
	ev.log = append(ev.log, fmt.Sprintf(format, args...))
	ev.mu.Unlock()
}

func (ev *events) get() []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return append([]string(nil), ev.log...)
}

type tr = [2]lifecycle.State

// TestLifecycleThroughEngine walks one agent through every state and
// checks, through a TransitionObserver, that the engine takes exactly the
// legal transitions, that the hooks run on the agent's loop goroutine,
// that messages sent while paused wait and then arrive in order, and that
// illegal requests are refused with an error naming both states.
func TestLifecycleThroughEngine(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	rec := newRecorder()
	e.Use(rec)

	var ev events
	var recvG atomic.Uint64 // goroutine that runs Receive
	hookG := make(chan string, 8)
	paused := make(chan struct{}, 1)
	got := make(chan string, 64)
	checkHook := func(c *Context, name string) {
		if g := goid(); g != recvG.Load() {
			hookG <- fmt.Sprintf("%s ran on goroutine %d, Receive on %d", name, g, recvG.Load())
		}
		if c.Loop() != 1 {
			hookG <- fmt.Sprintf("%s: c.Loop() = %d, want 1", name, c.Loop())
		}
	}
	mustRegister(t, e, "life", func() Agent {
		return &fn{
			recv: func(c *Context, m Message) {
				recvG.Store(goid())
				ev.add("recv %s", m.Payload)
				got <- string(m.Payload)
			},
			init: func(c *Context) error {
				ev.add("init")
				return nil
			},
			onPause: func(c *Context) {
				checkHook(c, "OnPause")
				ev.add("pause")
				paused <- struct{}{}
			},
			onResume: func(c *Context) {
				checkHook(c, "OnResume")
				ev.add("resume")
			},
			terminate: func(c *Context) {
				checkHook(c, "OnTerminate")
				ev.add("terminate")
			},
		}
	})
	id := AgentID{"life", "1"}
	r := mustSpawn(t, e, id, OnLoop(1))
	if err := r.Send([]byte("first")); err != nil {
		t.Fatal(err)
	}
	wait(t, got, "first message")
	if st, err := e.State(id); err != nil || st != lifecycle.Running {
		t.Fatalf("State after the first delivery = %v, %v; want Running", st, err)
	}
	want := []tr{{lifecycle.Idle, lifecycle.Initializing}, {lifecycle.Initializing, lifecycle.Ready}, {lifecycle.Ready, lifecycle.Running}}
	if trs := rec.transitionsOf(id); !slices.Equal(trs, want) {
		t.Fatalf("transitions after start = %v, want %v", trs, want)
	}

	// Resume of a running agent is illegal.
	err := e.Resume(id)
	checkIllegal(t, "Resume of a running agent", err, lifecycle.Running, lifecycle.Running, id)

	if err := e.Pause(id); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if st := r.State(); st != lifecycle.Paused {
		t.Fatalf("State right after Pause = %v, want Paused", st)
	}
	wait(t, paused, "OnPause")
	err = e.Pause(id)
	checkIllegal(t, "Pause of a paused agent", err, lifecycle.Paused, lifecycle.Paused, id)

	// Messages sent while paused are kept, not delivered.
	for i := 0; i < 5; i++ {
		if err := r.Send(seq(i)); err != nil {
			t.Fatalf("Send while paused: %v", err)
		}
	}
	settleLoop(t, e, 1)
	select {
	case m := <-got:
		t.Fatalf("paused agent received %q", m)
	default:
	}
	if s := e.Stats(); s.Queued < 5 {
		t.Errorf("Stats().Queued while paused = %d, want ≥ 5", s.Queued)
	}

	if err := e.Resume(id); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	for i := 0; i < 5; i++ {
		if m := wait(t, got, "message after Resume"); m != fmt.Sprint(i) {
			t.Fatalf("after Resume got %q, want %d (in order)", m, i)
		}
	}

	if err := e.Terminate(id); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	waitState(t, r, lifecycle.Terminated)
	stop(t, e)

	select {
	case msg := <-hookG:
		t.Fatal(msg)
	default:
	}
	want = append(want,
		tr{lifecycle.Running, lifecycle.Paused},
		tr{lifecycle.Paused, lifecycle.Running},
		tr{lifecycle.Running, lifecycle.Terminated})
	if trs := rec.transitionsOf(id); !slices.Equal(trs, want) {
		t.Fatalf("transitions = %v\nwant %v", trs, want)
	}
	wantEv := []string{"init", "recv first", "pause", "resume", "recv 0", "recv 1", "recv 2", "recv 3", "recv 4", "terminate"}
	if log := ev.get(); !slices.Equal(log, wantEv) {
		t.Fatalf("hooks and deliveries = %q\nwant %q", log, wantEv)
	}
}

// checkIllegal checks a refused lifecycle request: it matches
// ErrIllegalTransition, carries a TransitionError with the given states,
// and its message names both states and the agent.
func checkIllegal(t *testing.T, what string, err error, from, to lifecycle.State, id AgentID) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	if !errors.Is(err, lifecycle.ErrIllegalTransition) {
		t.Errorf("%s: %v does not match lifecycle.ErrIllegalTransition", what, err)
	}
	var te *lifecycle.TransitionError
	if !errors.As(err, &te) || te.From != from || te.To != to {
		t.Errorf("%s: %v: want a TransitionError %v → %v", what, err, from, to)
	}
	for _, s := range []string{from.String() + " → " + to.String(), id.String()} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: %q does not mention %q", what, err, s)
		}
	}
}

// TestTerminateConcurrently terminates one agent from 8 goroutines at once:
// OnTerminate runs once, Terminated is reached once, the agent leaves the
// registry, its old Ref refuses sends, and a send by ID then spawns a new
// incarnation.
func TestTerminateConcurrently(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	rec := newRecorder()
	e.Use(rec)
	var made, terminated atomic.Int32
	termCh := make(chan struct{}, 8)
	got := make(chan *fn, 4)
	mustRegister(t, e, "victim", func() Agent {
		made.Add(1)
		a := &fn{}
		a.recv = func(*Context, Message) { got <- a }
		a.terminate = func(*Context) {
			terminated.Add(1)
			termCh <- struct{}{}
		}
		return a
	})
	id := AgentID{"victim", "v"}
	old := mustSpawn(t, e, id)
	if err := old.Send(nil); err != nil {
		t.Fatal(err)
	}
	first := wait(t, got, "first incarnation's message")

	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = e.Terminate(id)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, ErrUnknownAgent) {
			t.Errorf("Terminate #%d: %v", i, err)
		}
	}
	wait(t, termCh, "OnTerminate")
	waitState(t, old, lifecycle.Terminated)
	eventually(t, "the terminated agent leaves the registry", func() bool {
		_, err := e.Lookup(id)
		return errors.Is(err, ErrUnknownAgent)
	}, waitTimeout)
	checkErr(t, "Send on the old Ref", old.Send(nil), ErrTerminated, id.String())

	// A send by ID spawns a new incarnation.
	if err := e.SendID(id, nil); err != nil {
		t.Fatalf("Send by ID after termination: %v", err)
	}
	second := wait(t, got, "second incarnation's message")
	if second == first {
		t.Fatal("the new incarnation is the old agent value")
	}
	if n := made.Load(); n != 2 {
		t.Fatalf("factory called %d times, want 2", n)
	}
	newRef, err := e.Lookup(id)
	if err != nil || newRef == old {
		t.Fatalf("Lookup after respawn = %v (same as old: %v)", err, newRef == old)
	}
	if newRef.State() != lifecycle.Running || old.State() != lifecycle.Terminated {
		t.Fatalf("new Ref state %v, old Ref state %v", newRef.State(), old.State())
	}
	checkErr(t, "Send on the old Ref after respawn", old.Send(nil), ErrTerminated)

	stop(t, e)
	if n := terminated.Load(); n != 2 {
		t.Fatalf("OnTerminate ran %d times over two incarnations, want 2", n)
	}
	if n := rec.countTo(id, lifecycle.Terminated); n != 2 {
		t.Fatalf("Terminated reached %d times over two incarnations, want 2", n)
	}
}

// TestTerminateDeliversQueuedMessagesFirst: a running agent handles what is
// already in its mailbox, then OnTerminate runs; later sends are refused.
func TestTerminateDeliversQueuedMessagesFirst(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	var ev events
	done := make(chan struct{})
	mustRegister(t, e, "t", func() Agent {
		return &fn{
			recv:      func(_ *Context, m Message) { ev.add("%s", m.Payload) },
			terminate: func(*Context) { ev.add("terminate"); close(done) },
		}
	})
	id := AgentID{"t", "1"}
	r := mustSpawn(t, e, id)
	for i := 0; i < 100; i++ {
		if err := r.Send(seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Terminate(id); err != nil {
		t.Fatal(err)
	}
	checkErr(t, "Send after Terminate", r.Send(nil), ErrTerminated)
	if err := e.Terminate(id); err != nil && !errors.Is(err, ErrUnknownAgent) {
		t.Fatalf("second Terminate: %v", err)
	}
	wait(t, done, "OnTerminate")
	want := append(rangeStrs(0, 100), "terminate")
	if log := ev.get(); !slices.Equal(log, want) {
		t.Fatalf("got %d events, want the 100 messages then terminate: %q", len(log), log)
	}
}

// TestTerminatePausedAgent: a paused agent's queued messages are
// dead-lettered with ErrTerminated, and OnTerminate still runs once.
func TestTerminatePausedAgent(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	rec := newRecorder()
	e.Use(rec)
	var delivered, terminated atomic.Int32
	mustRegister(t, e, "t", func() Agent {
		return &fn{
			recv:      func(*Context, Message) { delivered.Add(1) },
			terminate: func(*Context) { terminated.Add(1) },
		}
	})
	id := AgentID{"t", "p"}
	r := mustSpawn(t, e, id)
	pauseRunning(t, e, r)
	for i := 0; i < 10; i++ {
		if err := r.Send(seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Terminate(id); err != nil {
		t.Fatal(err)
	}
	waitState(t, r, lifecycle.Terminated)
	stop(t, e)
	if delivered.Load() != 0 || terminated.Load() != 1 {
		t.Fatalf("delivered %d, OnTerminate %d; want 0 and 1", delivered.Load(), terminated.Load())
	}
	dl := rec.deadLetters()
	if got := payloads(dl, id); !slices.Equal(got, rangeStrs(0, 10)) {
		t.Fatalf("dead letters %q, want 0..9", got)
	}
	for _, d := range dl {
		if !errors.Is(d.Reason, ErrTerminated) {
			t.Errorf("dead letter %q reason %v, want ErrTerminated", d.Message.Payload, d.Reason)
		}
	}
}

// TestLazySpawn: Engine.Send and Context.SendID create a registered agent
// that does not exist, once, and deliver to it.
func TestLazySpawn(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	var made atomic.Int32
	s := newSink()
	mustRegister(t, e, "virtual", func() Agent { made.Add(1); return s })
	done := make(chan struct{})
	mustRegister(t, e, "caller", recvAgent(func(c *Context, m Message) {
		for i := 0; i < 3; i++ {
			if err := c.SendID(AgentID{"virtual", "from-inside"}, seq(i)); err != nil {
				t.Errorf("SendID: %v", err)
			}
		}
		close(done)
	}))
	for i := 0; i < 3; i++ {
		if err := e.SendID(AgentID{"virtual", "from-outside"}, seq(i)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if err := e.SendID(AgentID{"caller", "c"}, nil); err != nil {
		t.Fatal(err)
	}
	wait(t, done, "caller")
	for _, k := range []string{"from-outside", "from-inside"} {
		if _, err := e.Lookup(AgentID{"virtual", k}); err != nil {
			t.Errorf("Lookup(virtual/%s) after lazy spawn: %v", k, err)
		}
	}
	stop(t, e)
	if n := made.Load(); n != 2 {
		t.Fatalf("factory called %d times, want 2 (one per ID)", n)
	}
	for _, k := range []string{"from-outside", "from-inside"} {
		if got := s.got(AgentID{"virtual", k}); !slices.Equal(got, strs(0, 1, 2)) {
			t.Errorf("virtual/%s received %q, want 0 1 2", k, got)
		}
	}
}

// TestSpawnBeforeStart: agents spawned and sent to before Start are
// initialised at Start and get their messages in order.
func TestSpawnBeforeStart(t *testing.T) {
	e := newEngine(t, WithLoops(2))
	rec := newRecorder()
	e.Use(rec)
	var ev events
	done := make(chan struct{})
	mustRegister(t, e, "early", func() Agent {
		return &fn{
			init: func(*Context) error { ev.add("init"); return nil },
			recv: func(_ *Context, m Message) {
				ev.add("%s", m.Payload)
				if string(m.Payload) == "9" {
					close(done)
				}
			},
		}
	})
	id := AgentID{"early", "1"}
	r := mustSpawn(t, e, id)
	for i := 0; i < 5; i++ {
		if err := r.Send(seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 5; i < 10; i++ {
		if err := e.SendID(id, seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	if st := r.State(); st != lifecycle.Initializing && st != lifecycle.Ready {
		t.Fatalf("State before Start = %v, want Initializing or Ready", st)
	}
	if log := ev.get(); len(log) != 0 {
		t.Fatalf("agent code ran before Start: %q", log)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	wait(t, done, "messages sent before Start")
	want := append([]string{"init"}, rangeStrs(0, 10)...)
	if log := ev.get(); !slices.Equal(log, want) {
		t.Fatalf("got %q, want %q", log, want)
	}
	stop(t, e)
}

// TestInitErrorTerminates: an Init that fails terminates the agent without
// OnTerminate; the messages queued in its mailbox are dead-lettered with a
// reason matching ErrInitFailed and naming the cause.
func TestInitErrorTerminates(t *testing.T) {
	e := startedEngine(t, WithLoops(1)) // one loop: the caller's sends go straight to the mailbox
	rec := newRecorder()
	rec.terminated = make(chan AgentID, 4)
	e.Use(rec)
	var onTerminate, delivered atomic.Int32
	mustRegister(t, e, "bad", func() Agent {
		return &fn{
			init:      func(*Context) error { return errors.New("no disk") },
			recv:      func(*Context, Message) { delivered.Add(1) },
			terminate: func(*Context) { onTerminate.Add(1) },
		}
	})
	bad := AgentID{"bad", "1"}
	sent := make(chan error, 3)
	mustRegister(t, e, "caller", recvAgent(func(c *Context, _ Message) {
		for i := 0; i < 3; i++ {
			sent <- c.SendID(bad, seq(i))
		}
	}))
	if err := e.SendID(AgentID{"caller", "c"}, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := wait(t, sent, "SendID result"); err != nil {
			t.Fatalf("SendID to an agent not yet initialised: %v", err)
		}
	}
	if id := wait(t, rec.terminated, "Terminated"); id != bad {
		t.Fatalf("terminated %v, want %v", id, bad)
	}
	stop(t, e)

	want := []tr{{lifecycle.Idle, lifecycle.Initializing}, {lifecycle.Initializing, lifecycle.Terminated}}
	if trs := rec.transitionsOf(bad); !slices.Equal(trs, want) {
		t.Fatalf("transitions %v, want %v", trs, want)
	}
	if delivered.Load() != 0 || onTerminate.Load() != 0 {
		t.Fatalf("delivered %d, OnTerminate %d; want 0 and 0 for an agent that never started", delivered.Load(), onTerminate.Load())
	}
	dl := rec.deadLetters()
	if got := payloads(dl, bad); !slices.Equal(got, strs(0, 1, 2)) {
		t.Fatalf("dead letters %q, want 0 1 2", got)
	}
	for _, d := range dl {
		if !errors.Is(d.Reason, ErrInitFailed) || !strings.Contains(d.Reason.Error(), "no disk") {
			t.Errorf("dead letter reason %v: want ErrInitFailed naming the cause", d.Reason)
		}
	}
}

// TestInitErrorBeforeStart: messages sent from outside to an agent whose
// Init fails are dead-lettered, none delivered, none lost.
func TestInitErrorBeforeStart(t *testing.T) {
	e := newEngine(t, WithLoops(1))
	rec := newRecorder()
	e.Use(rec)
	var delivered atomic.Int32
	mustRegister(t, e, "bad", func() Agent {
		return &fn{
			init: func(*Context) error { return errors.New("no config") },
			recv: func(*Context, Message) { delivered.Add(1) },
		}
	})
	id := AgentID{"bad", "1"}
	r := mustSpawn(t, e, id)
	for i := 0; i < 4; i++ {
		if err := r.Send(seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	waitState(t, r, lifecycle.Terminated)
	stop(t, e)
	if delivered.Load() != 0 {
		t.Fatalf("delivered %d messages to an agent whose Init failed", delivered.Load())
	}
	dl := rec.deadLetters()
	if got := payloads(dl, id); !slices.Equal(got, strs(0, 1, 2, 3)) {
		t.Fatalf("dead letters %q, want 0..3", got)
	}
	for _, d := range dl {
		if !errors.Is(d.Reason, ErrInitFailed) && !errors.Is(d.Reason, ErrTerminated) {
			t.Errorf("dead letter reason %v: want ErrInitFailed or ErrTerminated", d.Reason)
		}
	}
}

// TestConcurrentSpawnSameID: many goroutines spawning and sending to one ID
// at once get one agent: one Init, one Ref, every message delivered to it.
func TestConcurrentSpawnSameID(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	var inits atomic.Int32
	s := newSink()
	mustRegister(t, e, "one", func() Agent {
		return &fn{
			init: func(*Context) error { inits.Add(1); return nil },
			recv: s.Receive,
		}
	})
	id := AgentID{"one", "x"}
	const g = 8
	start := make(chan struct{})
	refs := make([]Ref, g)
	errs := make([]error, g)
	var wg sync.WaitGroup
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if i%2 == 0 {
				refs[i], errs[i] = e.Spawn(id)
			} else {
				errs[i] = e.SendID(id, seq(i))
			}
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	var ref Ref
	for i := 0; i < g; i += 2 {
		switch {
		case errs[i] == nil:
			created++
		case !errors.Is(errs[i], ErrAgentExists):
			t.Fatalf("Spawn: %v", errs[i])
		}
		if ref.IsZero() {
			ref = refs[i]
		} else if refs[i] != ref {
			t.Fatal("concurrent Spawns returned different Refs")
		}
	}
	for i := 1; i < g; i += 2 {
		if errs[i] != nil {
			t.Fatalf("Send: %v", errs[i])
		}
	}
	if created > 1 {
		t.Fatalf("%d Spawns of one ID succeeded", created)
	}
	if looked, err := e.Lookup(id); err != nil || looked != ref {
		t.Fatalf("Lookup = %v; want the Ref every Spawn returned", err)
	}
	stop(t, e)
	if n := inits.Load(); n != 1 {
		t.Fatalf("Init ran %d times, want 1", n)
	}
	if got := s.got(id); len(got) != g/2 {
		t.Fatalf("delivered %q, want the %d sends", got, g/2)
	}
}

// TestTerminateRacingSends: sends racing with Terminate are either refused
// with ErrTerminated or accepted, and every accepted one is delivered or
// dead-lettered.
func TestTerminateRacingSends(t *testing.T) {
	for round := 0; round < 20; round++ {
		e := startedEngine(t, WithLoops(2))
		rec := newRecorder()
		e.Use(rec)
		var delivered, accepted atomic.Int64
		mustRegister(t, e, "t", recvAgent(func(*Context, Message) { delivered.Add(1) }))
		r := mustSpawn(t, e, AgentID{"t", "1"}, OnLoop(round%2))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < 200; i++ {
					switch err := r.Send(nil); {
					case err == nil:
						accepted.Add(1)
					case errors.Is(err, ErrTerminated):
						return
					default:
						t.Errorf("Send: %v", err)
						return
					}
				}
			}()
		}
		close(start)
		if err := e.Terminate(r.ID()); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		stop(t, e)
		if acc, del, dead := accepted.Load(), delivered.Load(), rec.deadN.Load(); acc != del+dead {
			t.Fatalf("round %d: accepted %d != delivered %d + dead-lettered %d", round, acc, del, dead)
		}
	}
}
