package engine_test

// Lifecycle, hooks and supervision.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/lifecycle"
)

// hookAgent logs every hook with the state its own Ref reports then.
func hookAgent(log *accLog, recv func(c *engine.Context, m engine.Message)) func() engine.Agent {
	st := func(c *engine.Context) string { return c.Self().State().String() }
	return func() engine.Agent {
		return &accFunc{
			init:      func(c *engine.Context) error { log.add("Init@" + st(c)); return nil },
			pause:     func(c *engine.Context) { log.add("OnPause@" + st(c)) },
			resume:    func(c *engine.Context) { log.add("OnResume@" + st(c)) },
			terminate: func(c *engine.Context) { log.add("OnTerminate@" + st(c)) },
			recv: func(c *engine.Context, m engine.Message) {
				log.add("msg " + string(m.Payload))
				if recv != nil {
					recv(c, m)
				}
			},
		}
	}
}

// doc.go: "An agent moves through the six states of package lifecycle";
// plugin.go: "TransitionObserver sees every lifecycle transition of every
// agent"; agent.go: the hooks run on the agent's loop, OnPause "after the
// agent moved to Paused", OnResume "after the agent moved back to Running".
func TestAcceptanceLifecycleTransitionsAndHooks(t *testing.T) {
	e := accNew(t, engine.WithLoops(2))
	obs := accObserve(e)
	var log accLog
	loops := make(chan int, 8)
	accRegister(t, e, "h", func() engine.Agent {
		a := hookAgent(&log, nil)().(*accFunc)
		in := a.init
		a.init = func(c *engine.Context) error { loops <- c.Loop(); return in(c) }
		return a
	})
	id := engine.AgentID{Type: "h", Key: "1"}
	r := accSpawn(t, e, id, engine.OnLoop(1))
	if s := r.State(); s != lifecycle.Initializing {
		t.Errorf("state after Spawn before Start = %v, want Initializing", s)
	}
	accStart(t, e)
	accIdle(t, e)
	if l := accRecv(t, loops, "Init"); l != 1 {
		t.Errorf("Init ran on loop %d, want 1 (OnLoop)", l)
	}
	if s, err := e.State(id); err != nil || s != lifecycle.Running {
		t.Fatalf("State = %v, %v; want Running", s, err)
	}
	if err := e.Pause(id); err != nil {
		t.Fatal(err)
	}
	accIdle(t, e)
	if err := e.Resume(id); err != nil {
		t.Fatal(err)
	}
	accIdle(t, e)
	if err := e.Terminate(id); err != nil {
		t.Fatal(err)
	}
	accIdle(t, e)
	want := []string{"Init@Initializing", "OnPause@Paused", "OnResume@Running", "OnTerminate@Running"}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("hooks %q, want %q", got, want)
	}
	S := func(a, b lifecycle.State) [2]lifecycle.State { return [2]lifecycle.State{a, b} }
	wantT := [][2]lifecycle.State{
		S(lifecycle.Idle, lifecycle.Initializing), S(lifecycle.Initializing, lifecycle.Ready),
		S(lifecycle.Ready, lifecycle.Running), S(lifecycle.Running, lifecycle.Paused),
		S(lifecycle.Paused, lifecycle.Running), S(lifecycle.Running, lifecycle.Terminated),
	}
	if got := obs.transitions(id); !slices.Equal(got, wantT) {
		t.Errorf("transitions %v, want %v", got, wantT)
	}
	if r.State() != lifecycle.Terminated {
		t.Errorf("Ref.State after Terminate = %v", r.State())
	}
	if _, err := e.Lookup(id); !errors.Is(err, engine.ErrUnknownAgent) {
		t.Errorf("Lookup after Terminate: %v, want ErrUnknownAgent", err)
	}
	accIs(t, "Ref.Send to a terminated agent", r.Send(nil), engine.ErrTerminated)
	// README: "A later Send by ID spawns a new instance."
	if err := e.SendID(id, []byte("again")); err != nil {
		t.Fatal(err)
	}
	accIdle(t, e)
	if n := log.count("Init@Initializing"); n != 2 {
		t.Errorf("Init ran %d times after a Send by ID to a terminated ID, want 2", n)
	}
}

// Pause and Resume posted back to back, before the agent's loop has run
// either: each hook must still run once ("Its OnPause hook runs on its
// loop"; Resume: "its OnResume hook runs"), and never OnResume without the
// OnPause before it.
func TestAcceptanceLifecyclePauseResumeHooksWhileLoopBusy(t *testing.T) {
	for _, moves := range [][]string{{"pause", "resume"}, {"pause", "resume", "pause"}, {"pause", "resume", "pause", "resume"}} {
		t.Run(strings.Join(moves, "-"), func(t *testing.T) {
			e := accNew(t, engine.WithLoops(1))
			var log accLog
			entered := make(chan struct{}, 1)
			gate := make(chan struct{})
			accRegister(t, e, "h", hookAgent(&log, nil))
			accRegister(t, e, "busy", accRecvOnly(func(c *engine.Context, m engine.Message) {
				entered <- struct{}{}
				accGateWait(gate)
			}))
			id := engine.AgentID{Type: "h", Key: "1"}
			accSpawn(t, e, id)
			accStart(t, e)
			accIdle(t, e)
			if err := e.SendID(engine.AgentID{Type: "busy", Key: "1"}, nil); err != nil {
				t.Fatal(err)
			}
			accRecv(t, entered, "busy handler")
			pauses, resumes := 0, 0
			for _, mv := range moves {
				var err error
				if mv == "pause" {
					err, pauses = e.Pause(id), pauses+1
				} else {
					err, resumes = e.Resume(id), resumes+1
				}
				if err != nil {
					t.Fatalf("%s: %v", mv, err)
				}
			}
			close(gate)
			accIdle(t, e)
			if got := log.count("OnPause@Paused") + log.count("OnPause@Running"); got != pauses {
				t.Errorf("OnPause ran %d times for %d successful Pause calls; hooks %q", got, pauses, log.get())
			}
			if got := log.count("OnResume@Running") + log.count("OnResume@Paused"); got != resumes {
				t.Errorf("OnResume ran %d times for %d successful Resume calls; hooks %q", got, resumes, log.get())
			}
		})
	}
}

// doc.go: "an illegal move returns an error naming both states";
// engine.go Pause: "Pausing an agent that is not Running is an error naming
// both states."
func TestAcceptanceLifecycleIllegalMovesNameBothStates(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	accRegister(t, e, "h", accRecvOnly(nil))
	early := engine.AgentID{Type: "h", Key: "early"}
	accSpawn(t, e, early) // Initializing until Start
	check := func(what string, err error, from, to lifecycle.State) {
		t.Helper()
		var te *lifecycle.TransitionError
		if !errors.As(err, &te) || !errors.Is(err, lifecycle.ErrIllegalTransition) {
			t.Errorf("%s: err = %v, want a *lifecycle.TransitionError", what, err)
			return
		}
		if te.From != from || te.To != to {
			t.Errorf("%s: TransitionError{%v, %v}, want {%v, %v}", what, te.From, te.To, from, to)
		}
		if !strings.Contains(err.Error(), from.String()) || !strings.Contains(err.Error(), to.String()) {
			t.Errorf("%s: %q does not name %v and %v", what, err, from, to)
		}
	}
	check("Pause before Start", e.Pause(early), lifecycle.Initializing, lifecycle.Paused)
	check("Resume before Start", e.Resume(early), lifecycle.Initializing, lifecycle.Running)
	accStart(t, e)
	accIdle(t, e)
	check("Resume a running agent", e.Resume(early), lifecycle.Running, lifecycle.Running)
	if err := e.Pause(early); err != nil {
		t.Fatal(err)
	}
	check("Pause a paused agent", e.Pause(early), lifecycle.Paused, lifecycle.Paused)
	if err := e.Terminate(early); err != nil {
		t.Fatal(err)
	}
	// "Terminating an agent that is already terminating is a no-op."
	if err := e.Terminate(early); err != nil && !errors.Is(err, engine.ErrUnknownAgent) {
		t.Errorf("second Terminate: %v", err)
	}
}

// engine.go Terminate: "a running agent first handles what is already in
// its mailbox, then OnTerminate runs"; agent.go Terminator: "called once,
// when the agent terminates, after its last message".
func TestAcceptanceLifecycleTerminateDrainsThenOnTerminate(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	var log accLog
	entered := make(chan struct{}, 1)
	gate := make(chan struct{})
	accRegister(t, e, "h", hookAgent(&log, func(c *engine.Context, m engine.Message) {
		if string(m.Payload) == "hold" {
			entered <- struct{}{}
			accGateWait(gate)
		}
	}))
	id := engine.AgentID{Type: "h", Key: "1"}
	r := accSpawn(t, e, id)
	accStart(t, e)
	if err := r.Send([]byte("hold")); err != nil {
		t.Fatal(err)
	}
	accRecv(t, entered, "hold")
	for i := 0; i < 3; i++ {
		if err := r.Send([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Terminate(id); err != nil {
		t.Fatal(err)
	}
	accIs(t, "Send to a terminating agent", r.Send([]byte("late")), engine.ErrTerminated)
	close(gate)
	accIdle(t, e)
	want := []string{"Init@Initializing", "msg hold", "msg 0", "msg 1", "msg 2", "OnTerminate@Running"}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("log %q, want %q", got, want)
	}
}

// Context.Terminate: "ends the running agent after the current handler
// returns and its already-queued messages are handled"; OnTerminate runs
// "after its last message", so never inside the handler that asked.
func TestAcceptanceLifecycleContextTerminate(t *testing.T) {
	for _, queued := range []int{0, 2} {
		t.Run(fmt.Sprintf("queued=%d", queued), func(t *testing.T) {
			e := accNew(t, engine.WithLoops(1))
			var log accLog
			accRegister(t, e, "h", hookAgent(&log, func(c *engine.Context, m engine.Message) {
				if string(m.Payload) == "stop" {
					for i := 0; i < queued; i++ {
						_ = c.Send(c.Self(), []byte(fmt.Sprint(i)))
					}
					c.Terminate()
					log.add("handler returns")
				}
			}))
			r := accSpawn(t, e, engine.AgentID{Type: "h", Key: "1"})
			accStart(t, e)
			if err := r.Send([]byte("stop")); err != nil {
				t.Fatal(err)
			}
			accIdle(t, e)
			want := []string{"Init@Initializing", "msg stop", "handler returns"}
			for i := 0; i < queued; i++ {
				want = append(want, fmt.Sprint("msg ", i))
			}
			want = append(want, "OnTerminate@Running")
			if got := log.get(); !slices.Equal(got, want) {
				t.Errorf("log %q, want %q", got, want)
			}
		})
	}
}

// engine.go Terminate: "A paused agent's queued messages are
// dead-lettered"; ErrTerminated "is also the dead-letter reason for
// messages left in a terminated agent's mailbox".
func TestAcceptanceLifecycleTerminatePausedDeadLetters(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	obs := accObserve(e)
	var log accLog
	accRegister(t, e, "h", hookAgent(&log, nil))
	id := engine.AgentID{Type: "h", Key: "1"}
	r := accSpawn(t, e, id)
	accStart(t, e)
	accIdle(t, e)
	if err := e.Pause(id); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := r.Send([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	accIdle(t, e)
	if n := len(log.get()); n != 2 { // Init, OnPause
		t.Errorf("a paused agent handled messages: %q", log.get())
	}
	if err := e.Terminate(id); err != nil {
		t.Fatal(err)
	}
	accIdle(t, e)
	dl := obs.deadTo("h")
	if len(dl) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dl))
	}
	for i, d := range dl {
		if string(d.Message.Payload) != fmt.Sprint(i) || !errors.Is(d.Reason, engine.ErrTerminated) {
			t.Errorf("dead letter %d: %q %v", i, d.Message.Payload, d.Reason)
		}
	}
	if n := log.count("OnTerminate@Paused") + log.count("OnTerminate@Running"); n != 1 {
		t.Errorf("OnTerminate ran %d times", n)
	}
}

// agent.go Initializer: "A non-nil error on the first start terminates the
// agent"; errors.go ErrInitFailed: "the reason an agent terminated because
// its Init hook returned an error or panicked on its first run".
func TestAcceptanceLifecycleInitFailure(t *testing.T) {
	for _, mode := range []string{"error", "panic"} {
		t.Run(mode, func(t *testing.T) {
			e := accNew(t, engine.WithLoops(1))
			obs := accObserve(e)
			boom := errors.New("boom")
			var terminated atomic.Int32
			accRegister(t, e, "h", func() engine.Agent {
				return &accFunc{
					init: func(c *engine.Context) error {
						if mode == "panic" {
							panic("init")
						}
						return boom
					},
					terminate: func(c *engine.Context) { terminated.Add(1) },
				}
			})
			r := accSpawn(t, e, engine.AgentID{Type: "h", Key: "1"})
			if err := r.Send([]byte("queued")); err != nil { // waits in the mailbox until Start
				t.Fatal(err)
			}
			accStart(t, e)
			accIdle(t, e)
			if r.State() != lifecycle.Terminated {
				t.Fatalf("state %v after failed Init", r.State())
			}
			if terminated.Load() != 0 {
				t.Errorf("OnTerminate ran for an agent that never started")
			}
			dl := obs.deadTo("h")
			if len(dl) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dl))
			}
			accIs(t, "dead-letter reason", dl[0].Reason, engine.ErrInitFailed)
			if mode == "error" {
				accIs(t, "dead-letter reason", dl[0].Reason, boom)
			} else if len(obs.allPanics()) != 1 {
				t.Errorf("PanicObserver saw %d panics, want 1", len(obs.allPanics()))
			}
		})
	}
}

// doc.go Supervision: "A panic in Receive restarts the agent: a fresh value
// from its factory, Init again, the mailbox kept. More restarts than its
// budget within the window (Restarts) terminate it instead."
func TestAcceptanceLifecycleSupervision(t *testing.T) {
	t.Run("restart", func(t *testing.T) {
		e := accNew(t, engine.WithLoops(1))
		obs := accObserve(e)
		var made, inits atomic.Int32
		var log accLog
		entered := make(chan struct{}, 1)
		gate := make(chan struct{})
		accRegister(t, e, "h", func() engine.Agent {
			n := made.Add(1)
			return &accFunc{
				init: func(c *engine.Context) error { inits.Add(1); return nil },
				recv: func(c *engine.Context, m engine.Message) {
					switch string(m.Payload) {
					case "hold":
						entered <- struct{}{}
						accGateWait(gate)
					case "panic":
						panic("boom")
					default:
						log.add(fmt.Sprintf("v%d %s", n, m.Payload))
					}
				},
			}
		}, engine.Restarts(5, time.Minute))
		r := accSpawn(t, e, engine.AgentID{Type: "h", Key: "1"})
		accStart(t, e)
		for _, p := range []string{"hold", "a", "panic", "b", "c"} {
			if err := r.Send([]byte(p)); err != nil {
				t.Fatal(err)
			}
			if p == "hold" {
				accRecv(t, entered, "hold")
			}
		}
		close(gate)
		accIdle(t, e)
		if want := []string{"v1 a", "v2 b", "v2 c"}; !slices.Equal(log.get(), want) {
			t.Errorf("deliveries %q, want %q (fresh value after the panic, mailbox kept)", log.get(), want)
		}
		if made.Load() != 2 || inits.Load() != 2 {
			t.Errorf("factory calls %d, Init calls %d; want 2 and 2", made.Load(), inits.Load())
		}
		if p := obs.allPanics(); len(p) != 1 || p[0].value != "boom" || len(p[0].stack) == 0 {
			t.Errorf("panics observed: %v", p)
		}
		if r.State() != lifecycle.Running {
			t.Errorf("state %v after one restart", r.State())
		}
		if s := e.Stats(); s.Restarts != 1 || s.Panics != 1 {
			t.Errorf("Stats restarts %d panics %d, want 1 and 1", s.Restarts, s.Panics)
		}
	})
	t.Run("budget", func(t *testing.T) {
		e := accNew(t, engine.WithLoops(1))
		obs := accObserve(e)
		var terminated atomic.Int32
		entered := make(chan struct{}, 1)
		gate := make(chan struct{})
		accRegister(t, e, "h", func() engine.Agent {
			return &accFunc{
				recv: func(c *engine.Context, m engine.Message) {
					switch string(m.Payload) {
					case "hold":
						entered <- struct{}{}
						accGateWait(gate)
					case "panic":
						panic("boom")
					}
				},
				terminate: func(c *engine.Context) { terminated.Add(1) },
			}
		}, engine.Restarts(0, time.Minute)) // "terminates on the first panic"
		r := accSpawn(t, e, engine.AgentID{Type: "h", Key: "1"})
		accStart(t, e)
		for _, p := range []string{"hold", "panic", "x", "y"} {
			if err := r.Send([]byte(p)); err != nil {
				t.Fatal(err)
			}
			if p == "hold" {
				accRecv(t, entered, "hold")
			}
		}
		close(gate)
		accIdle(t, e)
		if r.State() != lifecycle.Terminated {
			t.Fatalf("state %v, want Terminated", r.State())
		}
		if terminated.Load() != 1 {
			t.Errorf("OnTerminate ran %d times", terminated.Load())
		}
		dl := obs.deadTo("h")
		if len(dl) != 2 {
			t.Fatalf("%d dead letters, want 2 (x, y)", len(dl))
		}
		for _, d := range dl {
			var pe *engine.PanicError
			if !errors.As(d.Reason, &pe) || !errors.Is(d.Reason, engine.ErrPanicked) || pe.Hook != "Receive" || pe.Value != "boom" {
				t.Errorf("dead letter %q reason %v, want a *PanicError from Receive", d.Message.Payload, d.Reason)
			}
		}
	})
	t.Run("hook panics ignored", func(t *testing.T) {
		e := accNew(t, engine.WithLoops(1))
		obs := accObserve(e)
		var got accLog
		accRegister(t, e, "h", func() engine.Agent {
			return &accFunc{
				recv:      func(c *engine.Context, m engine.Message) { got.add(string(m.Payload)) },
				pause:     func(c *engine.Context) { panic("pause") },
				resume:    func(c *engine.Context) { panic("resume") },
				terminate: func(c *engine.Context) { panic("terminate") },
			}
		}, engine.Restarts(0, time.Minute))
		id := engine.AgentID{Type: "h", Key: "1"}
		r := accSpawn(t, e, id)
		accStart(t, e)
		accIdle(t, e)
		if err := e.Pause(id); err != nil {
			t.Fatal(err)
		}
		accIdle(t, e)
		if err := e.Resume(id); err != nil {
			t.Fatal(err)
		}
		if err := r.Send([]byte("after")); err != nil {
			t.Fatal(err)
		}
		accIdle(t, e)
		if r.State() != lifecycle.Running || !slices.Equal(got.get(), []string{"after"}) {
			t.Errorf("after hook panics: state %v, deliveries %q", r.State(), got.get())
		}
		if err := e.Terminate(id); err != nil {
			t.Fatal(err)
		}
		accIdle(t, e)
		if r.State() != lifecycle.Terminated {
			t.Errorf("state %v after Terminate with a panicking OnTerminate", r.State())
		}
		if n := len(obs.allPanics()); n != 3 {
			t.Errorf("PanicObserver saw %d panics, want 3", n)
		}
	})
}
