package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name     string
		opt      Option
		target   error
		mentions []string
	}{
		{"zero loops", WithLoops(0), ErrInvalidOption, []string{"WithLoops(0)"}},
		{"negative loops", WithLoops(-3), ErrInvalidOption, []string{"WithLoops(-3)"}},
		{"too many loops", WithLoops(1025), ErrInvalidOption, []string{"WithLoops(1025)"}},
		{"tiny inbox", WithInboxSize(1), ErrInvalidOption, []string{"WithInboxSize(1)"}},
		{"zero quantum", WithQuantum(0), ErrInvalidOption, []string{"WithQuantum(0)"}},
		{"sub-ms tick", WithTimerTick(time.Microsecond), ErrInvalidOption, []string{"WithTimerTick(1µs)"}},
		{"negative restarts", WithDefaultRestarts(-1, time.Second), ErrInvalidOption, []string{"-1"}},
		{"zero restart window", WithDefaultRestarts(1, 0), ErrInvalidDuration, []string{"0s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := New(c.opt)
			if e != nil {
				t.Errorf("New returned an engine with error %v", err)
			}
			checkErr(t, "New", err, c.target, c.mentions...)
		})
	}
}

func TestNewDefaults(t *testing.T) {
	e, err := New(nil) // a nil option is ignored
	if err != nil {
		t.Fatal(err)
	}
	if e.Loops() < 1 {
		t.Fatalf("Loops() = %d", e.Loops())
	}
	e2, err := New(WithLoops(3))
	if err != nil {
		t.Fatal(err)
	}
	if e2.Loops() != 3 {
		t.Fatalf("WithLoops(3): Loops() = %d", e2.Loops())
	}
	// Neither was started: Stop works and leaves nothing behind.
	stop(t, e)
	stop(t, e2)
}

func TestRegisterErrors(t *testing.T) {
	e := newEngine(t, WithLoops(1))
	factory := recvAgent(nil)
	mustRegister(t, e, "taken", factory)
	long := strings.Repeat("x", MaxIDLen+1)
	cases := []struct {
		name     string
		typ      string
		factory  func() Agent
		opts     []RegisterOption
		target   error
		mentions []string
	}{
		{"empty name", "", factory, nil, ErrInvalidID, []string{`""`}},
		{"over-long name", long, factory, nil, ErrInvalidID, []string{long}},
		{"nil factory", "nilf", nil, nil, ErrNilFactory, []string{`"nilf"`}},
		{"duplicate", "taken", factory, nil, ErrDuplicateType, []string{`"taken"`}},
		{"priority above 100", "p1", factory, []RegisterOption{Priority(101)}, ErrInvalidOption, []string{"Priority(101)", `"p1"`}},
		{"negative priority", "p2", factory, []RegisterOption{Priority(-1)}, ErrInvalidOption, []string{"Priority(-1)"}},
		{"zero mailbox", "m1", factory, []RegisterOption{Mailbox(0, DropNewest)}, ErrInvalidOption, []string{"Mailbox(0)", `"m1"`}},
		{"unknown policy", "m2", factory, []RegisterOption{Mailbox(8, Overflow(9))}, ErrInvalidOption, []string{"Overflow(9)"}},
		{"negative restarts", "r1", factory, []RegisterOption{Restarts(-2, time.Second)}, ErrInvalidOption, []string{"-2"}},
		{"zero restart window", "r2", factory, []RegisterOption{Restarts(1, 0)}, ErrInvalidDuration, []string{"0s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkErr(t, "Register", e.Register(c.typ, c.factory, c.opts...), c.target, c.mentions...)
		})
	}
	// A refused registration leaves nothing behind: the name is still free.
	if err := e.Register("p1", factory); err != nil {
		t.Fatalf("Register after a refused one with the same name: %v", err)
	}
	// The factory returning nil is refused at spawn, not a crash later.
	mustRegister(t, e, "nilagent", func() Agent { return nil })
	_, err := e.Spawn(AgentID{"nilagent", "k"})
	checkErr(t, "Spawn of a type whose factory returns nil", err, ErrNilFactory, `"nilagent"`)
}

func TestSpawnErrors(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	mustRegister(t, e, "t", recvAgent(nil))
	cases := []struct {
		name     string
		id       AgentID
		opts     []SpawnOption
		target   error
		mentions []string
	}{
		{"empty type", AgentID{"", "k"}, nil, ErrInvalidID, []string{`"/k"`}},
		{"empty key", AgentID{"t", ""}, nil, ErrInvalidID, []string{`"t/"`}},
		{"empty both", AgentID{}, nil, ErrInvalidID, nil},
		{"over-long key", AgentID{"t", strings.Repeat("k", MaxIDLen+1)}, nil, ErrInvalidID, []string{"256"}},
		{"unknown type", AgentID{"nope", "k"}, nil, ErrUnknownType, []string{`"nope"`}},
		{"loop out of range", AgentID{"t", "k1"}, []SpawnOption{OnLoop(2)}, ErrInvalidOption, []string{"OnLoop(2)"}},
		{"negative loop", AgentID{"t", "k2"}, []SpawnOption{OnLoop(-1)}, ErrInvalidOption, []string{"OnLoop(-1)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := e.Spawn(c.id, c.opts...)
			checkErr(t, "Spawn", err, c.target, c.mentions...)
			if !r.IsZero() {
				t.Errorf("Spawn returned a Ref %v with error %v", r.ID(), err)
			}
		})
	}
	// No failed Spawn left an agent behind.
	for _, c := range cases {
		if c.id.Validate() == nil {
			if _, err := e.Lookup(c.id); !errors.Is(err, ErrUnknownAgent) {
				t.Errorf("Lookup(%v) after a failed Spawn: %v, want ErrUnknownAgent", c.id, err)
			}
		}
	}

	t.Run("duplicate", func(t *testing.T) {
		id := AgentID{"t", "dup"}
		first := mustSpawn(t, e, id)
		again, err := e.Spawn(id)
		checkErr(t, "second Spawn", err, ErrAgentExists, "t/dup")
		if again != first {
			t.Fatalf("second Spawn returned a different Ref")
		}
		looked, err := e.Lookup(id)
		if err != nil || looked != first {
			t.Fatalf("Lookup = %v, %v; want the first Ref", looked.ID(), err)
		}
	})
}

func TestLookupAndSendErrors(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	mustRegister(t, e, "t", recvAgent(nil))

	_, err := e.Lookup(AgentID{"t", "ghost"})
	checkErr(t, "Lookup of an agent never spawned", err, ErrUnknownAgent, "t/ghost")
	_, err = e.Lookup(AgentID{"t", ""})
	checkErr(t, "Lookup of an invalid ID", err, ErrInvalidID, `"t/"`)
	_, err = e.State(AgentID{"t", "ghost"})
	checkErr(t, "State of an agent never spawned", err, ErrUnknownAgent, "t/ghost")

	checkErr(t, "Send to an unknown type", e.SendID(AgentID{"nope", "k"}, nil), ErrUnknownType, `"nope"`)
	checkErr(t, "Send to an invalid ID", e.SendID(AgentID{"", "k"}, nil), ErrInvalidID, `"/k"`)
	checkErr(t, "Send on the zero Ref", Ref{}.Send(nil), ErrUnknownAgent)
	if (Ref{}).ID() != (AgentID{}) || !(Ref{}).IsZero() {
		t.Error("zero Ref: ID not zero or IsZero false")
	}

	for _, op := range []struct {
		name string
		f    func(AgentID) error
	}{
		{"Pause", e.Pause}, {"Resume", e.Resume}, {"Terminate", e.Terminate},
	} {
		checkErr(t, op.name+" of an unknown agent", op.f(AgentID{"t", "ghost"}), ErrUnknownAgent, "t/ghost")
		checkErr(t, op.name+" of an invalid ID", op.f(AgentID{"t", ""}), ErrInvalidID)
	}

	// Inside a handler: the zero Ref and SendID to bad IDs.
	errs := make(chan [3]error, 1)
	mustRegister(t, e, "inside", recvAgent(func(c *Context, _ Message) {
		errs <- [3]error{
			c.Send(Ref{}, nil),
			c.SendID(AgentID{"nope", "x"}, nil),
			c.SendID(AgentID{"t", ""}, nil),
		}
	}))
	if err := e.SendID(AgentID{"inside", "1"}, nil); err != nil {
		t.Fatal(err)
	}
	got := wait(t, errs, "handler errors")
	checkErr(t, "Context.Send on the zero Ref", got[0], ErrUnknownAgent)
	checkErr(t, "Context.SendID to an unknown type", got[1], ErrUnknownType, `"nope"`)
	checkErr(t, "Context.SendID to an invalid ID", got[2], ErrInvalidID, `"t/"`)
}

func TestTimerDurationErrors(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	type result struct {
		name string
		tm   Timer
		err  error
	}
	results := make(chan []result, 1)
	mustRegister(t, e, "timers", recvAgent(func(c *Context, _ Message) {
		var rs []result
		for _, d := range []time.Duration{0, -time.Millisecond} {
			tm, err := c.After(d, nil)
			rs = append(rs, result{"After(" + d.String() + ")", tm, err})
			tm, err = c.Every(d, nil)
			rs = append(rs, result{"Every(" + d.String() + ")", tm, err})
		}
		results <- rs
	}))
	if err := e.SendID(AgentID{"timers", "1"}, nil); err != nil {
		t.Fatal(err)
	}
	rs := wait(t, results, "timer errors")
	if len(rs) != 4 {
		t.Fatalf("got %d results", len(rs))
	}
	for _, r := range rs {
		checkErr(t, r.name, r.err, ErrInvalidDuration, r.name)
		if r.tm.Stop() {
			t.Errorf("%s: the Timer returned with an error stops something", r.name)
		}
	}
	if (Timer{}).Stop() {
		t.Error("the zero Timer's Stop returned true")
	}
}

// TestAfterStopEverythingIsRefused checks that once Stop has returned every
// entry point refuses new work with ErrStopped and names what it refused.
func TestAfterStopEverythingIsRefused(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	mustRegister(t, e, "t", recvAgent(nil))
	r := mustSpawn(t, e, AgentID{"t", "alive"})
	stop(t, e)

	checkErr(t, "Send by ID", e.SendID(AgentID{"t", "alive"}, nil), ErrStopped, "t/alive")
	checkErr(t, "Send by ID to a new agent", e.SendID(AgentID{"t", "new"}, nil), ErrStopped, "t/new")
	checkErr(t, "Ref.Send", r.Send(nil), ErrStopped, "t/alive")
	_, err := e.Spawn(AgentID{"t", "late"})
	checkErr(t, "Spawn", err, ErrStopped, "t/late")
	checkErr(t, "Register", e.Register("late", recvAgent(nil)), ErrStopped, `"late"`)
	checkErr(t, "Start", e.Start(), ErrStopped)
	for _, op := range []struct {
		name string
		f    func(AgentID) error
	}{
		{"Pause", e.Pause}, {"Resume", e.Resume}, {"Terminate", e.Terminate},
	} {
		err := op.f(AgentID{"t", "alive"})
		if !errors.Is(err, ErrStopped) && !errors.Is(err, ErrUnknownAgent) {
			t.Errorf("%s after Stop: %v, want ErrStopped or ErrUnknownAgent", op.name, err)
		}
	}
	if st := r.State(); st.String() != "Terminated" {
		t.Errorf("State after Stop = %v, want Terminated", st)
	}
	if n := e.Stats().Agents; n != 0 {
		t.Errorf("Stats().Agents after Stop = %d, want 0", n)
	}
	// Stop again: same (nil) result, at once, even with a done context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Stop(ctx); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}
}

// terminationReasons is a TerminationObserver that sends each reason on.
type terminationReasons chan error

func (c terminationReasons) OnTerminated(_ AgentID, reason error) { c <- reason }

func TestErrorTypes(t *testing.T) {
	se := &StopError{Err: context.DeadlineExceeded, Queued: 7, Agents: 2}
	if !errors.Is(se, context.DeadlineExceeded) {
		t.Error("StopError does not unwrap to its context error")
	}
	for _, s := range []string{"7", "2", context.DeadlineExceeded.Error()} {
		if !strings.Contains(se.Error(), s) {
			t.Errorf("StopError %q does not mention %q", se, s)
		}
	}
	pe := &PanicError{ID: AgentID{"a", "b"}, Hook: "Receive", Value: "boom"}
	if !errors.Is(pe, ErrPanicked) {
		t.Error("PanicError does not match ErrPanicked")
	}
	for _, s := range []string{"a/b", "Receive", "boom"} {
		if !strings.Contains(pe.Error(), s) {
			t.Errorf("PanicError %q does not mention %q", pe, s)
		}
	}
	// An Init error reaches TerminationObservers wrapped: it matches both
	// ErrInitFailed and the hook's own error, and names the agent.
	e := startedEngine(t, WithLoops(1))
	reasons := make(terminationReasons, 1)
	if err := e.Use(reasons); err != nil {
		t.Fatal(err)
	}
	noDisk := errors.New("no disk")
	mustRegister(t, e, "a", func() Agent {
		return &fn{init: func(*Context) error { return noDisk }}
	})
	mustSpawn(t, e, AgentID{"a", "b"})
	ie := wait(t, reasons, "the agent's end")
	if !errors.Is(ie, ErrInitFailed) || !errors.Is(ie, noDisk) || !strings.Contains(ie.Error(), "no disk") || !strings.Contains(ie.Error(), "a/b") {
		t.Errorf("init error %q: Is(ErrInitFailed) %v, Is(its cause) %v", ie, errors.Is(ie, ErrInitFailed), errors.Is(ie, noDisk))
	}
	cases := []struct {
		o    Overflow
		want string
	}{{DropNewest, "DropNewest"}, {DropOldest, "DropOldest"}, {Reject, "Reject"}, {Block, "Block"}, {Overflow(9), "Overflow(9)"}}
	for _, c := range cases {
		if got := c.o.String(); got != c.want {
			t.Errorf("Overflow(%d).String() = %q, want %q", uint8(c.o), got, c.want)
		}
	}
}
