package engine_test

// The agent's context (Context.Context) and the context of Context.Go
// work, from outside: when they end, why, and what Stop does with work
// that waits on them.

import (
	"context"
	"errors"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// waitingWork is Context.Go work that blocks until its context ends and
// reports the cause, then returns it.
func waitingWork(started chan<- struct{}, causes chan<- error) func(ctx context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		close(started)
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return nil, context.Cause(ctx)
	}
}

// Go work sees ctx.Done() when its agent terminates, with ErrTerminated as
// the cause; the result is dropped (the agent is gone).
func TestGoContextEndsWhenAgentTerminates(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	started, causes := make(chan struct{}), make(chan error, 1)
	thenRan := make(chan error, 1)
	accRegister(t, e, "io", accRecvOnly(func(c *engine.Context, m engine.Message) {
		if err := c.Go(waitingWork(started, causes), func(_ *engine.Context, _ []byte, err error) { thenRan <- err }); err != nil {
			t.Errorf("Go: %v", err)
		}
	}))
	accStart(t, e)
	id := engine.AgentID{Type: "io", Key: "1"}
	if err := e.SendID(id, nil); err != nil {
		t.Fatal(err)
	}
	accRecv(t, started, "the work to start")
	if err := e.Terminate(id); err != nil {
		t.Fatal(err)
	}
	accIs(t, "the work's context cause", accRecv(t, causes, "the work to see its context end"), engine.ErrTerminated)
	accIdle(t, e)
	select {
	case err := <-thenRan:
		t.Fatalf("then ran (%v) for an agent that had terminated", err)
	default:
	}
}

// Go work sees ctx.Done() when Stop begins, with ErrStopped as the cause;
// a graceful Stop waits for it and delivers its result to then, and
// returns nil with no goroutine left (goleak checks the rest).
func TestGoContextEndsWhenStopBegins(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	started, causes := make(chan struct{}), make(chan error, 1)
	thenRan := make(chan error, 1)
	accRegister(t, e, "io", accRecvOnly(func(c *engine.Context, m engine.Message) {
		if err := c.Go(waitingWork(started, causes), func(_ *engine.Context, _ []byte, err error) { thenRan <- err }); err != nil {
			t.Errorf("Go: %v", err)
		}
	}))
	accStart(t, e)
	if err := e.SendID(engine.AgentID{Type: "io", Key: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	accRecv(t, started, "the work to start")
	// The work ignores everything but its context: Stop returns in time
	// only because the context ended.
	if err := e.Stop(accCtx(t)); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	accIs(t, "the work's context cause", accRecv(t, causes, "the cause"), engine.ErrStopped)
	select {
	case err := <-thenRan:
		accIs(t, "then's error", err, engine.ErrStopped)
	default:
		t.Fatal("Stop returned before the result of the work reached then")
	}
}

// Immediate stops cancel the work as well.
func TestGoContextEndsWithImmediateStop(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	started, causes := make(chan struct{}), make(chan error, 1)
	accRegister(t, e, "io", accRecvOnly(func(c *engine.Context, m engine.Message) {
		_ = c.Go(waitingWork(started, causes), func(*engine.Context, []byte, error) {})
	}))
	accStart(t, e)
	if err := e.SendID(engine.AgentID{Type: "io", Key: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	accRecv(t, started, "the work to start")
	if err := e.Stop(accCtx(t), engine.Immediate()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	accIs(t, "cause", accRecv(t, causes, "the cause"), engine.ErrStopped)
}

// ctxAgent hands out its context on "ctx", panics on "panic" and records
// what its context looks like in OnTerminate.
type ctxAgent struct {
	ctxs   chan<- context.Context
	atTerm chan<- error // ctx.Err() during OnTerminate
	inits  chan<- context.Context
	fail   bool // Init fails
}

func (a *ctxAgent) Init(c *engine.Context) error {
	if a.inits != nil {
		a.inits <- c.Context()
	}
	if a.fail {
		return errors.New("no database")
	}
	return nil
}

func (a *ctxAgent) Receive(c *engine.Context, m engine.Message) {
	switch string(m.Payload) {
	case "ctx":
		a.ctxs <- c.Context()
	case "panic":
		panic("boom")
	}
}

func (a *ctxAgent) OnTerminate(c *engine.Context) {
	if a.atTerm != nil {
		a.atTerm <- c.Context().Err()
	}
}

// The agent's context is the same across a restart and ends, after
// OnTerminate, when the agent terminates.
func TestAgentContextSurvivesRestartEndsAtTermination(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	ctxs, atTerm := make(chan context.Context, 2), make(chan error, 1)
	accRegister(t, e, "a", func() engine.Agent { return &ctxAgent{ctxs: ctxs, atTerm: atTerm} },
		engine.Restarts(1, 1<<40))
	accStart(t, e)
	r := accSpawn(t, e, engine.AgentID{Type: "a", Key: "1"})
	for _, p := range []string{"ctx", "panic", "ctx"} {
		if err := r.Send([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	before, after := accRecv(t, ctxs, "the context"), accRecv(t, ctxs, "the context after the restart")
	if before != after {
		t.Fatal("a restart gave the agent a new context; it keeps the incarnation's")
	}
	if err := after.Err(); err != nil {
		t.Fatalf("the context ended with the restart: %v", err)
	}
	if err := e.Terminate(r.ID()); err != nil {
		t.Fatal(err)
	}
	if err := accRecv(t, atTerm, "OnTerminate"); err != nil {
		t.Fatalf("in OnTerminate the context has already ended: %v", err)
	}
	accIdle(t, e)
	select {
	case <-after.Done():
	default:
		t.Fatal("the context did not end when the agent terminated")
	}
	accIs(t, "cause", context.Cause(after), engine.ErrTerminated)
}

// Past the restart budget the cause is the *PanicError; an Init failure's
// cause matches ErrInitFailed.
func TestAgentContextCause(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	ctxs := make(chan context.Context, 1)
	inits := make(chan context.Context, 1)
	accRegister(t, e, "fragile", func() engine.Agent { return &ctxAgent{ctxs: ctxs} }, engine.Restarts(0, 1<<40))
	accRegister(t, e, "broken", func() engine.Agent { return &ctxAgent{inits: inits, fail: true} })
	accStart(t, e)
	r := accSpawn(t, e, engine.AgentID{Type: "fragile", Key: "1"})
	_ = r.Send([]byte("ctx"))
	_ = r.Send([]byte("panic"))
	ctx := accRecv(t, ctxs, "the context")
	accSpawn(t, e, engine.AgentID{Type: "broken", Key: "1"})
	ictx := accRecv(t, inits, "Init's context")
	accIdle(t, e)
	var pe *engine.PanicError
	if !errors.As(context.Cause(ctx), &pe) {
		t.Errorf("cause past the budget = %v, want a *PanicError", context.Cause(ctx))
	}
	accIs(t, "cause of a failed Init", context.Cause(ictx), engine.ErrInitFailed)
}

// A recycled (pooled) record gives the next incarnation a fresh context;
// the old one stays ended.
func TestPooledAgentGetsFreshContext(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	ctxs := make(chan context.Context, 2)
	accRegister(t, e, "p", func() engine.Agent { return &ctxAgent{ctxs: ctxs} }, engine.Pooled())
	accStart(t, e)
	id := engine.AgentID{Type: "p", Key: "1"}
	r := accSpawn(t, e, id)
	_ = r.Send([]byte("ctx"))
	old := accRecv(t, ctxs, "the first context")
	if err := e.Terminate(id); err != nil {
		t.Fatal(err)
	}
	accIdle(t, e)
	r2 := accSpawn(t, e, id)
	_ = r2.Send([]byte("ctx"))
	fresh := accRecv(t, ctxs, "the second context")
	if fresh == old {
		t.Fatal("the new incarnation got the old incarnation's context")
	}
	if fresh.Err() != nil || old.Err() == nil {
		t.Fatalf("fresh.Err() = %v, old.Err() = %v; want nil and canceled", fresh.Err(), old.Err())
	}
}

// Stop ends the agents' contexts as it begins, while their handlers still
// run, and a graceful Stop still delivers their queued messages.
func TestAgentContextEndsWhenStopBegins(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	ctxs := make(chan context.Context, 2)
	gate := make(chan struct{})
	accRegister(t, e, "a", accRecvOnly(func(c *engine.Context, m engine.Message) {
		ctxs <- c.Context()
		if string(m.Payload) == "gate" {
			accGateWait(gate)
		}
	}))
	accStart(t, e)
	r := accSpawn(t, e, engine.AgentID{Type: "a", Key: "1"})
	_ = r.Send([]byte("gate"))
	_ = r.Send([]byte("queued"))
	first := accRecv(t, ctxs, "the gated handler's context")
	stopped := make(chan error, 1)
	go func() { stopped <- e.Stop(context.Background()) }()
	// The handler still holds the loop: only Stop can end the context now.
	accRecv(t, first.Done(), "the context to end as Stop begins")
	accIs(t, "cause", context.Cause(first), engine.ErrStopped)
	close(gate)
	if accRecv(t, ctxs, "the queued message") != first {
		t.Error("the queued message saw another context")
	}
	if err := accRecv(t, stopped, "Stop"); err != nil {
		t.Fatal(err)
	}
}
