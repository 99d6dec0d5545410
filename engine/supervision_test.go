package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/lifecycle"
)

// crashy panics on the payload "boom" and records which instance handled
// every other message. Its methods are named so stacks can be checked.
type crashy struct {
	log  *crashLog
	inst int
}

type crashLog struct {
	mu        sync.Mutex
	made      int
	inits     []int
	seen      []string // "payload@instance"
	terminate atomic.Int32
	done      chan struct{} // closed on the payload "last"
}

func (l *crashLog) factory() func() Agent {
	return func() Agent {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.made++
		return &crashy{log: l, inst: l.made}
	}
}

func (a *crashy) Init(*Context) error {
	a.log.mu.Lock()
	a.log.inits = append(a.log.inits, a.inst)
	a.log.mu.Unlock()
	return nil
}

func (a *crashy) Receive(_ *Context, m Message) {
	p := string(m.Payload)
	if p == "boom" {
		panic("boom value")
	}
	a.log.mu.Lock()
	a.log.seen = append(a.log.seen, fmt.Sprintf("%s@%d", p, a.inst))
	a.log.mu.Unlock()
	if p == "last" && a.log.done != nil {
		close(a.log.done)
	}
}

func (a *crashy) OnTerminate(*Context) { a.log.terminate.Add(1) }

func (l *crashLog) snapshot() (made int, inits []int, seen []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.made, append([]int(nil), l.inits...), append([]string(nil), l.seen...)
}

// queueWhilePaused pauses r's agent, sends the payloads, waits until they
// are in its mailbox and resumes it, so the agent sees them as one queue.
func queueWhilePaused(t *testing.T, e *Engine, r Ref, loop int, ps ...string) {
	t.Helper()
	pauseRunning(t, e, r)
	for _, p := range ps {
		if err := r.Send([]byte(p)); err != nil {
			t.Fatalf("Send %q: %v", p, err)
		}
	}
	settleLoop(t, e, loop)
	if err := e.Resume(r.ID()); err != nil {
		t.Fatal(err)
	}
}

// TestPanicRestartsAgent: a panic in Receive is caught; the loop and the
// other agents on it carry on, OnPanic sees the value and the stack, and
// the agent restarts as a fresh instance (factory and Init again) that
// keeps the mailbox, so the messages after the panicking one arrive.
func TestPanicRestartsAgent(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	rec := newRecorder()
	e.Use(rec)
	log := &crashLog{done: make(chan struct{})}
	mustRegister(t, e, "crashy", log.factory(), Restarts(3, time.Minute))
	by := newSink()
	mustRegister(t, e, "bystander", func() Agent { return by })
	id := AgentID{"crashy", "1"}
	r := mustSpawn(t, e, id)
	if err := r.Send([]byte("warm")); err != nil {
		t.Fatal(err)
	}
	queueWhilePaused(t, e, r, 0, "a", "boom", "b", "c", "last")
	for i := 0; i < 10; i++ {
		if err := e.SendID(AgentID{"bystander", "1"}, seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	wait(t, log.done, "messages after the panic")
	if st := r.State(); st != lifecycle.Running {
		t.Fatalf("State after a restart = %v, want Running", st)
	}
	if looked, err := e.Lookup(id); err != nil || looked != r {
		t.Fatalf("Lookup after restart: %v (same Ref: %v); the restart keeps the agent's identity", err, looked == r)
	}
	stop(t, e)

	made, inits, seen := log.snapshot()
	if made != 2 || !slices.Equal(inits, []int{1, 2}) {
		t.Fatalf("factory calls %d, Init on instances %v; want 2 and [1 2]", made, inits)
	}
	want := []string{"warm@1", "a@1", "b@2", "c@2", "last@2"}
	if !slices.Equal(seen, want) {
		t.Fatalf("deliveries %q, want %q", seen, want)
	}
	if got := by.got(AgentID{"bystander", "1"}); !slices.Equal(got, rangeStrs(0, 10)) {
		t.Fatalf("bystander on the same loop got %q", got)
	}
	ps := rec.panicked()
	if len(ps) != 1 {
		t.Fatalf("OnPanic called %d times, want 1", len(ps))
	}
	if ps[0].id != id || ps[0].value != "boom value" {
		t.Fatalf("OnPanic(%v, %v), want (%v, boom value)", ps[0].id, ps[0].value, id)
	}
	if !strings.Contains(string(ps[0].stack), "(*crashy).Receive") {
		t.Fatalf("OnPanic stack does not show the panicking handler:\n%s", ps[0].stack)
	}
	st := e.Stats()
	if st.Panics != 1 || typeStats(st, "crashy").Restarts != 1 {
		t.Fatalf("Stats: Panics %d, Restarts %d; want 1 and 1", st.Panics, typeStats(st, "crashy").Restarts)
	}
	if p := typeStats(st, "crashy").Processed; p != 6 {
		t.Fatalf("Processed = %d, want 6 (the panicking message counts as handled)", p)
	}
	if n := log.terminate.Load(); n != 1 {
		t.Fatalf("OnTerminate ran %d times, want 1 (at Stop, not at restarts)", n)
	}
	if n := rec.countTo(id, lifecycle.Terminated); n != 1 {
		t.Fatalf("Terminated %d times, want 1", n)
	}
}

// TestPanicBudgetTerminates: one panic more than Restarts allows in its
// window terminates the agent; the rest of its mailbox is dead-lettered
// with a reason matching ErrPanicked.
func TestPanicBudgetTerminates(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	rec := newRecorder()
	rec.terminated = make(chan AgentID, 4)
	e.Use(rec)
	log := &crashLog{}
	mustRegister(t, e, "crashy", log.factory(), Restarts(2, time.Minute))
	id := AgentID{"crashy", "1"}
	r := mustSpawn(t, e, id, OnLoop(1))
	queueWhilePaused(t, e, r, 1, "boom", "a", "boom", "b", "boom", "x", "y", "z")
	if got := wait(t, rec.terminated, "termination"); got != id {
		t.Fatalf("terminated %v, want %v", got, id)
	}
	eventually(t, "the agent leaves the registry", func() bool {
		_, err := e.Lookup(id)
		return errors.Is(err, ErrUnknownAgent)
	}, waitTimeout)
	stop(t, e)

	made, inits, seen := log.snapshot()
	if made != 3 || len(inits) != 3 {
		t.Fatalf("factory calls %d, Inits %v; want 3 incarnations (2 restarts)", made, inits)
	}
	if want := []string{"a@2", "b@3"}; !slices.Equal(seen, want) {
		t.Fatalf("deliveries %q, want %q", seen, want)
	}
	dl := rec.deadLetters()
	if got := payloads(dl, id); !slices.Equal(got, []string{"x", "y", "z"}) {
		t.Fatalf("dead letters %q, want x y z", got)
	}
	for _, d := range dl {
		var pe *PanicError
		if !errors.Is(d.Reason, ErrPanicked) || !errors.As(d.Reason, &pe) || pe.Value != "boom value" {
			t.Errorf("dead letter reason %v: want a PanicError matching ErrPanicked", d.Reason)
		}
	}
	if n := log.terminate.Load(); n != 1 {
		t.Fatalf("OnTerminate ran %d times, want 1", n)
	}
	if n := rec.countTo(id, lifecycle.Terminated); n != 1 {
		t.Fatalf("Terminated %d times, want 1", n)
	}
	if n := len(rec.panicked()); n != 3 {
		t.Fatalf("OnPanic %d times, want 3", n)
	}
	if rs := typeStats(e.Stats(), "crashy").Restarts; rs != 2 {
		t.Fatalf("Stats Restarts = %d, want 2", rs)
	}
}

// manualClock is a Clock the test moves by hand. Its AfterFunc never fires
// on its own: the tests that use it schedule no timers.
type manualClock struct{ now atomic.Int64 }

func (c *manualClock) Now() time.Time { return time.Unix(0, c.now.Load()) }
func (c *manualClock) AfterFunc(time.Duration, func()) func() bool {
	return func() bool { return true }
}
func (c *manualClock) advance(d time.Duration) { c.now.Add(int64(d)) }

// TestRestartWindow: panics spread over more than the window do not add
// up; Restarts(0, d) terminates on the first panic.
func TestRestartWindow(t *testing.T) {
	clk := &manualClock{}
	clk.now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	e := startedEngine(t, WithLoops(1), WithClock(clk))
	rec := newRecorder()
	rec.terminated = make(chan AgentID, 4)
	e.Use(rec)
	log := &crashLog{done: make(chan struct{})}
	mustRegister(t, e, "crashy", log.factory(), Restarts(1, time.Minute))
	r := mustSpawn(t, e, AgentID{"crashy", "1"})
	for i, step := range []string{"boom", "boom", "boom"} {
		if err := r.Send([]byte(step)); err != nil {
			t.Fatal(err)
		}
		if err := r.Send([]byte("ack" + fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		// Wait for the ack so the panic has been handled before time moves.
		eventually(t, "ack "+fmt.Sprint(i), func() bool {
			_, _, seen := log.snapshot()
			return len(seen) == i+1
		}, waitTimeout)
		clk.advance(2 * time.Minute)
	}
	if st := r.State(); st != lifecycle.Running {
		t.Fatalf("after three panics two minutes apart: %v, want Running (one restart per window)", st)
	}
	if rs := typeStats(e.Stats(), "crashy").Restarts; rs != 3 {
		t.Fatalf("Restarts = %d, want 3", rs)
	}
	// Two panics within one window: the second terminates.
	if err := r.Send([]byte("boom")); err != nil {
		t.Fatal(err)
	}
	if err := r.Send([]byte("boom")); err != nil {
		t.Fatal(err)
	}
	wait(t, rec.terminated, "termination after two panics in one window")

	mustRegister(t, e, "fragile", log.factory(), Restarts(0, time.Minute))
	f := mustSpawn(t, e, AgentID{"fragile", "1"})
	if err := f.Send([]byte("boom")); err != nil {
		t.Fatal(err)
	}
	if got := wait(t, rec.terminated, "fragile termination"); got != f.ID() {
		t.Fatalf("terminated %v, want %v", got, f.ID())
	}
	stop(t, e)
}

// TestPanicInOnTerminateDuringStop: a panicking OnTerminate is reported,
// does not bring the agent back, and Stop still succeeds.
func TestPanicInOnTerminateDuringStop(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	rec := newRecorder()
	e.Use(rec)
	var made, inits, terms atomic.Int32
	got := make(chan struct{}, 1)
	mustRegister(t, e, "t", func() Agent {
		made.Add(1)
		return &fn{
			init:      func(*Context) error { inits.Add(1); return nil },
			recv:      func(*Context, Message) { got <- struct{}{} },
			terminate: func(*Context) { terms.Add(1); panic("bye") },
		}
	})
	id := AgentID{"t", "1"}
	r := mustSpawn(t, e, id)
	if err := r.Send(nil); err != nil {
		t.Fatal(err)
	}
	wait(t, got, "message")
	stop(t, e)
	if made.Load() != 1 || inits.Load() != 1 || terms.Load() != 1 {
		t.Fatalf("factory %d, Init %d, OnTerminate %d; want 1 each", made.Load(), inits.Load(), terms.Load())
	}
	if r.State() != lifecycle.Terminated || rec.countTo(id, lifecycle.Terminated) != 1 {
		t.Fatalf("state %v, Terminated reached %d times", r.State(), rec.countTo(id, lifecycle.Terminated))
	}
	ps := rec.panicked()
	if len(ps) != 1 || ps[0].value != "bye" {
		t.Fatalf("OnPanic saw %d panics (%v), want the one from OnTerminate", len(ps), ps)
	}
	if n := e.Stats().Panics; n != 1 {
		t.Fatalf("Stats().Panics = %d, want 1", n)
	}
}

// TestPanicInInitTerminates: a panic in Init on the first start terminates
// the agent: no delivery, no OnTerminate, the panic reported, and the
// messages queued for it dead-lettered.
func TestPanicInInitTerminates(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	rec := newRecorder()
	rec.terminated = make(chan AgentID, 2)
	e.Use(rec)
	var delivered, terms atomic.Int32
	mustRegister(t, e, "bad", func() Agent {
		return &fn{
			init:      func(*Context) error { panic("init boom") },
			recv:      func(*Context, Message) { delivered.Add(1) },
			terminate: func(*Context) { terms.Add(1) },
		}
	})
	bad := AgentID{"bad", "1"}
	sent := make(chan error, 2)
	mustRegister(t, e, "caller", recvAgent(func(c *Context, _ Message) {
		sent <- c.SendID(bad, []byte("m1"))
		sent <- c.SendID(bad, []byte("m2"))
	}))
	if err := e.SendID(AgentID{"caller", "1"}, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := wait(t, sent, "SendID"); err != nil {
			t.Fatal(err)
		}
	}
	if got := wait(t, rec.terminated, "termination"); got != bad {
		t.Fatalf("terminated %v, want %v", got, bad)
	}
	stop(t, e)
	want := []tr{{lifecycle.Idle, lifecycle.Initializing}, {lifecycle.Initializing, lifecycle.Terminated}}
	if trs := rec.transitionsOf(bad); !slices.Equal(trs, want) {
		t.Fatalf("transitions %v, want %v", trs, want)
	}
	if delivered.Load() != 0 || terms.Load() != 0 {
		t.Fatalf("delivered %d, OnTerminate %d; want 0 and 0", delivered.Load(), terms.Load())
	}
	ps := rec.panicked()
	if len(ps) != 1 || ps[0].value != "init boom" || ps[0].id != bad {
		t.Fatalf("OnPanic saw %v, want the Init panic", ps)
	}
	dl := rec.deadLetters()
	if got := payloads(dl, bad); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("dead letters %q, want m1 m2", got)
	}
	for _, d := range dl {
		if !errors.Is(d.Reason, ErrPanicked) && !errors.Is(d.Reason, ErrInitFailed) {
			t.Errorf("dead letter reason %v: want ErrInitFailed or ErrPanicked", d.Reason)
		}
	}
}

// panicky is a plugin whose every callback panics.
type panicky struct{ calls atomic.Int32 }

func (p *panicky) OnTransition(AgentID, lifecycle.State, lifecycle.State) {
	p.calls.Add(1)
	panic("transition observer")
}
func (p *panicky) OnDeadLetter(DeadLetter) { p.calls.Add(1); panic("dead letter observer") }
func (p *panicky) OnPanic(AgentID, any, []byte) {
	p.calls.Add(1)
	panic("panic observer")
}

// TestPanickingPluginsDoNotKillLoops: observers that panic on every call
// are recovered and counted; agents, their lifecycle and their deliveries
// are unaffected.
func TestPanickingPluginsDoNotKillLoops(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	p := &panicky{}
	e.Use(p)
	rec := newRecorder()
	e.Use(rec) // installed after the panicking one: still called
	log := &crashLog{done: make(chan struct{})}
	mustRegister(t, e, "crashy", log.factory(), Mailbox(3, DropNewest), Restarts(5, time.Minute))
	r := mustSpawn(t, e, AgentID{"crashy", "1"}, OnLoop(0))
	queueWhilePaused(t, e, r, 0, "a", "boom", "last", "dropped")
	wait(t, log.done, "delivery after plugin panics")
	stop(t, e)

	_, _, seen := log.snapshot()
	if want := []string{"a@1", "last@2"}; !slices.Equal(seen, want) {
		t.Fatalf("deliveries %q, want %q", seen, want)
	}
	if len(rec.panicked()) != 1 || rec.deadN.Load() != 1 || rec.countTo(r.ID(), lifecycle.Terminated) != 1 {
		t.Fatalf("the second plugin saw panics %d, dead letters %d, terminations %d; want 1 each",
			len(rec.panicked()), rec.deadN.Load(), rec.countTo(r.ID(), lifecycle.Terminated))
	}
	calls := uint64(p.calls.Load())
	if calls == 0 {
		t.Fatal("the panicking plugin was never called")
	}
	// Stats().Panics counts the agent's panic and every plugin panic.
	if n := e.Stats().Panics; n != 1+calls {
		t.Fatalf("Stats().Panics = %d, want 1 agent panic + %d plugin panics", n, calls)
	}
}

// TestSendToAgentTerminatedByPanic: a Ref whose agent terminated after
// exhausting its restart budget refuses outside sends with ErrTerminated,
// as it does after Terminate and as Context.Send does.
func TestSendToAgentTerminatedByPanic(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	rec := newRecorder()
	rec.terminated = make(chan AgentID, 2)
	e.Use(rec)
	log := &crashLog{}
	mustRegister(t, e, "crashy", log.factory(), Restarts(0, time.Minute))
	r := mustSpawn(t, e, AgentID{"crashy", "1"})
	if err := r.Send([]byte("boom")); err != nil {
		t.Fatal(err)
	}
	wait(t, rec.terminated, "termination")
	waitState(t, r, lifecycle.Terminated)
	checkErr(t, "Ref.Send to an agent terminated by a panic", r.Send([]byte("late")), ErrTerminated, r.ID().String())
	stop(t, e)
	if got := payloads(rec.deadLetters(), r.ID()); len(got) != 0 {
		t.Fatalf("dead letters %q: the late send was accepted and then dropped", got)
	}
}

// TestPanicInInitReasonIsInitFailed: ErrInitFailed is documented as the
// reason an agent terminated because its Init returned an error or
// panicked on its first run; its queued messages carry that reason.
func TestPanicInInitReasonIsInitFailed(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	rec := newRecorder()
	rec.terminated = make(chan AgentID, 2)
	e.Use(rec)
	mustRegister(t, e, "bad", func() Agent {
		return &fn{init: func(*Context) error { panic("init boom") }}
	})
	bad := AgentID{"bad", "1"}
	mustRegister(t, e, "caller", recvAgent(func(c *Context, _ Message) {
		_ = c.SendID(bad, []byte("m1"))
	}))
	if err := e.SendID(AgentID{"caller", "1"}, nil); err != nil {
		t.Fatal(err)
	}
	wait(t, rec.terminated, "termination")
	stop(t, e)
	dl := rec.deadLetters()
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	if !errors.Is(dl[0].Reason, ErrInitFailed) {
		t.Fatalf("dead letter reason %q does not match ErrInitFailed", dl[0].Reason)
	}
}

// TestPanickingMessageObserver: a MessageObserver that panics is a plugin
// like the others: recovered and counted, never blamed on the agent. The
// agent must not be restarted or terminated and must get every message.
func TestPanickingMessageObserver(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	e.Use(panickyMessages{})
	log := &crashLog{done: make(chan struct{})}
	mustRegister(t, e, "crashy", log.factory(), Restarts(1, time.Minute))
	r := mustSpawn(t, e, AgentID{"crashy", "1"})
	for _, p := range []string{"a", "b", "c", "last"} {
		if err := r.Send([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-log.done:
	case <-time.After(2 * time.Second):
	}
	stop(t, e)
	made, _, seen := log.snapshot()
	if want := []string{"a@1", "b@1", "c@1", "last@1"}; !slices.Equal(seen, want) || made != 1 {
		t.Fatalf("deliveries %q from %d instances; want %q from one instance", seen, made, want)
	}
	if n := e.Stats().Panics; n != 4 {
		t.Fatalf("Stats().Panics = %d, want 4 plugin panics", n)
	}
}

type panickyMessages struct{}

func (panickyMessages) OnMessage(AgentID, Message) { panic("message observer") }
