package engine_test

// Helpers of the acceptance suite (the acceptance_*_test.go files). The
// suite checks, from outside and through the public API only, the promises
// made by the package documentation, the doc comments and README.md. Every
// wait is on a channel or WaitIdle, bounded by accTimeout, which only turns a
// hang into a failure.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/lifecycle"
)

const accTimeout = 10 * time.Second

// accCtx returns a context that ends after accTimeout (or with the test).
func accCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), accTimeout)
	t.Cleanup(cancel)
	return ctx
}

// accNew returns an engine that is not started; it is stopped when the test
// ends (a second Stop is a no-op, so tests may stop it themselves).
func accNew(t testing.TB, opts ...engine.Option) *engine.Engine {
	t.Helper()
	e, err := engine.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), accTimeout)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e
}

func accStart(t testing.TB, e *engine.Engine) {
	t.Helper()
	if err := e.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func accRegister(t testing.TB, e *engine.Engine, name string, f func() engine.Agent, opts ...engine.RegisterOption) {
	t.Helper()
	if err := e.Register(name, f, opts...); err != nil {
		t.Fatalf("Register(%q): %v", name, err)
	}
}

func accSpawn(t testing.TB, e *engine.Engine, id engine.AgentID, opts ...engine.SpawnOption) engine.Ref {
	t.Helper()
	r, err := e.Spawn(id, opts...)
	if err != nil {
		t.Fatalf("Spawn(%v): %v", id, err)
	}
	return r
}

func accIdle(t testing.TB, e *engine.Engine) {
	t.Helper()
	if err := e.WaitIdle(accCtx(t)); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
}

func accStop(t testing.TB, e *engine.Engine, opts ...engine.StopOption) {
	t.Helper()
	if err := e.Stop(accCtx(t), opts...); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// accRecv waits for one value from ch.
func accRecv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(accTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// accGateWait blocks a handler until gate is closed (bounded, so that a
// broken test cannot hang the loop for ever).
func accGateWait(gate <-chan struct{}) {
	select {
	case <-gate:
	case <-time.After(accTimeout):
	}
}

// accFunc is an agent made of optional functions.
type accFunc struct {
	recv      func(c *engine.Context, m engine.Message)
	init      func(c *engine.Context) error
	pause     func(c *engine.Context)
	resume    func(c *engine.Context)
	terminate func(c *engine.Context)
}

func (a *accFunc) Receive(c *engine.Context, m engine.Message) {
	if a.recv != nil {
		a.recv(c, m)
	}
}
func (a *accFunc) Init(c *engine.Context) error {
	if a.init != nil {
		return a.init(c)
	}
	return nil
}
func (a *accFunc) OnPause(c *engine.Context) {
	if a.pause != nil {
		a.pause(c)
	}
}
func (a *accFunc) OnResume(c *engine.Context) {
	if a.resume != nil {
		a.resume(c)
	}
}
func (a *accFunc) OnTerminate(c *engine.Context) {
	if a.terminate != nil {
		a.terminate(c)
	}
}

func accRecvOnly(f func(c *engine.Context, m engine.Message)) func() engine.Agent {
	return func() engine.Agent { return &accFunc{recv: f} }
}

// accObserver records dead letters, panics and transitions.
type accObserver struct {
	mu     sync.Mutex
	dead   []engine.DeadLetter
	panics []accPanic
	trans  map[engine.AgentID][][2]lifecycle.State
}

type accPanic struct {
	id    engine.AgentID
	value any
	stack []byte
}

func accObserve(e *engine.Engine) *accObserver {
	o := &accObserver{trans: map[engine.AgentID][][2]lifecycle.State{}}
	e.Use(o)
	return o
}

func (o *accObserver) OnDeadLetter(d engine.DeadLetter) {
	o.mu.Lock()
	o.dead = append(o.dead, d)
	o.mu.Unlock()
}

func (o *accObserver) OnPanic(id engine.AgentID, v any, stack []byte) {
	o.mu.Lock()
	o.panics = append(o.panics, accPanic{id, v, stack})
	o.mu.Unlock()
}

func (o *accObserver) OnTransition(id engine.AgentID, from, to lifecycle.State) {
	o.mu.Lock()
	o.trans[id] = append(o.trans[id], [2]lifecycle.State{from, to})
	o.mu.Unlock()
}

// deadTo returns the dead letters addressed to agents of type typ.
func (o *accObserver) deadTo(typ string) []engine.DeadLetter {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []engine.DeadLetter
	for _, d := range o.dead {
		if d.To.Type == typ {
			out = append(out, d)
		}
	}
	return out
}

func (o *accObserver) allDead() []engine.DeadLetter {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]engine.DeadLetter(nil), o.dead...)
}

func (o *accObserver) allPanics() []accPanic {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]accPanic(nil), o.panics...)
}

func (o *accObserver) transitions(id engine.AgentID) [][2]lifecycle.State {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([][2]lifecycle.State(nil), o.trans[id]...)
}

// accLog is a goroutine-safe list of strings.
type accLog struct {
	mu  sync.Mutex
	log []string
}

func (l *accLog) add(s string) {
	l.mu.Lock()
	l.log = append(l.log, s)
	l.mu.Unlock()
}

func (l *accLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.log...)
}

func (l *accLog) count(s string) int {
	n := 0
	for _, x := range l.get() {
		if x == s {
			n++
		}
	}
	return n
}

// accIs fails the test unless errors.Is(err, target).
func accIs(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want one matching %v", what, err, target)
	}
}
