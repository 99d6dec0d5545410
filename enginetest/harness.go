package enginetest

import (
	"context"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// TB is the part of testing.TB the harness uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Harness runs an engine on a manual clock, deterministically: Advance
// steps time from one due timer to the next and lets the engine settle in
// between, so an hour of five-minute ticks arrives as exactly twelve
// messages, in order, in microseconds of real time.
type Harness struct {
	Engine *engine.Engine
	Clock  *Clock
	t      TB
	// SettleTimeout is how long Settle waits for the engine to go idle, and
	// the Stop at the end of the test for the engine to stop, before the
	// test fails (default 10s of real time).
	SettleTimeout time.Duration
}

// Epoch is the manual clock's default start: a fixed instant, so runs are
// repeatable.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// New returns a harness with a new engine on a manual clock starting at
// Epoch. The engine is not started: register types, then call Start. It is
// stopped when the test ends.
func New(t TB, opts ...engine.Option) *Harness {
	t.Helper()
	clk := NewClock(Epoch)
	e, err := engine.New(append(opts, engine.WithClock(clk))...)
	if err != nil {
		t.Fatalf("enginetest: %v", err)
	}
	h := &Harness{Engine: e, Clock: clk, t: t, SettleTimeout: 10 * time.Second}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), h.SettleTimeout)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Fatalf("enginetest: stop: %v", err)
		}
	})
	return h
}

// Start starts the engine and waits for it to settle.
func (h *Harness) Start() {
	h.t.Helper()
	if err := h.Engine.Start(); err != nil {
		h.t.Fatalf("enginetest: start: %v", err)
	}
	h.Settle()
}

// Settle waits until the engine has nothing left to do at the current
// clock time.
func (h *Harness) Settle() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.SettleTimeout)
	defer cancel()
	if err := h.Engine.WaitIdle(ctx); err != nil {
		h.t.Fatalf("enginetest: engine did not settle: %v", err)
	}
}

// Advance moves the clock forward by d, stopping at every due timer on the
// way and settling the engine after each, so timers that re-arm (Every,
// Cron, timers set by handlers) fire as many times as they would in real
// time, in order.
func (h *Harness) Advance(d time.Duration) {
	h.t.Helper()
	target := h.Clock.Now().Add(d)
	h.Settle()
	for {
		next, ok := h.Clock.Next()
		if !ok || next.After(target) {
			break
		}
		h.Clock.Set(next)
		h.Settle()
	}
	h.Clock.Set(target)
	h.Settle()
}
