package engine_test

// Stop: graceful drain, Immediate, deadlines, idempotence, no goroutine
// left, and what is refused afterwards.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/agentloop/agentloop/engine"
)

// stopFixture: agents on two loops, one of them paused with queued
// messages, each counting deliveries and OnTerminate calls.
type stopFixture struct {
	e          *engine.Engine
	obs        *accObserver
	delivered  atomic.Int32
	terminated atomic.Int32
	queued     int
}

func newStopFixture(t *testing.T) *stopFixture {
	t.Helper()
	f := &stopFixture{}
	f.e = accNew(t, engine.WithLoops(2))
	f.obs = accObserve(f.e)
	accRegister(t, f.e, "w", func() engine.Agent {
		return &accFunc{
			recv:      func(c *engine.Context, m engine.Message) { f.delivered.Add(1) },
			terminate: func(c *engine.Context) { f.terminated.Add(1) },
		}
	})
	for i := 0; i < 4; i++ {
		accSpawn(t, f.e, engine.AgentID{Type: "w", Key: fmt.Sprint(i)}, engine.OnLoop(i%2))
	}
	accStart(t, f.e)
	accIdle(t, f.e)
	paused := engine.AgentID{Type: "w", Key: "0"}
	if err := f.e.Pause(paused); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := f.e.SendID(paused, []byte("q")); err != nil {
			t.Fatal(err)
		}
		f.queued++
	}
	accIdle(t, f.e)
	return f
}

// stop.go: "Graceful (the default): outside sends are refused with
// ErrStopped at once, timers are dropped, every queued message is delivered
// (paused agents' too), OnTerminate runs once for every agent, and every
// goroutine the engine started has exited when Stop returns nil."
// "Stop is idempotent: later calls wait for the first and return its
// result."
func TestAcceptanceStopGraceful(t *testing.T) {
	before := goleak.IgnoreCurrent()
	f := newStopFixture(t)
	if f.delivered.Load() != 0 {
		t.Fatalf("a paused agent handled %d messages", f.delivered.Load())
	}
	accStop(t, f.e)
	if got := f.delivered.Load(); got != int32(f.queued) {
		t.Errorf("graceful Stop delivered %d of %d queued messages", got, f.queued)
	}
	if got := f.terminated.Load(); got != 4 {
		t.Errorf("OnTerminate ran %d times for 4 agents", got)
	}
	if dl := f.obs.allDead(); len(dl) != 0 {
		t.Errorf("graceful Stop dead-lettered %d messages", len(dl))
	}
	goleak.VerifyNone(t, before)
	if err := f.e.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v, want the first's nil", err)
	}
	if got := f.terminated.Load(); got != 4 {
		t.Errorf("a second Stop ran OnTerminate again (%d)", got)
	}
}

// stop.go: "With Immediate ... queued messages are dead-lettered instead;
// OnTerminate still runs once each."
func TestAcceptanceStopImmediate(t *testing.T) {
	before := goleak.IgnoreCurrent()
	f := newStopFixture(t)
	accStop(t, f.e, engine.Immediate())
	dl := f.obs.allDead()
	if len(dl) != f.queued || f.delivered.Load() != 0 {
		t.Errorf("Immediate: %d dead letters, %d delivered; want %d and 0", len(dl), f.delivered.Load(), f.queued)
	}
	for _, d := range dl {
		accIs(t, "dead-letter reason", d.Reason, engine.ErrStopped)
	}
	if got := f.terminated.Load(); got != 4 {
		t.Errorf("OnTerminate ran %d times for 4 agents", got)
	}
	goleak.VerifyNone(t, before)
}

// stop.go: "when ctx ends before the engine has drained, queued messages
// are dead-lettered instead ... On a deadline Stop returns a *StopError that
// wraps ctx.Err() and says what was left." errors.go StopError.Queued:
// "messages dead-lettered instead of delivered".
func TestAcceptanceStopDeadline(t *testing.T) {
	before := goleak.IgnoreCurrent()
	e := accNew(t, engine.WithLoops(1))
	obs := accObserve(e)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	entered := make(chan struct{}, 1)
	var delivered atomic.Int32
	accRegister(t, e, "busy", accRecvOnly(func(c *engine.Context, m engine.Message) {
		entered <- struct{}{}
		<-ctx.Done() // keeps the loop from draining until Stop's deadline
	}))
	accRegister(t, e, "w", accRecvOnly(func(c *engine.Context, m engine.Message) { delivered.Add(1) }))
	wid := engine.AgentID{Type: "w", Key: "1"}
	accSpawn(t, e, wid)
	accStart(t, e)
	accIdle(t, e)
	if err := e.Pause(wid); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := 0; i < n; i++ {
		if err := e.SendID(wid, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.SendID(engine.AgentID{Type: "busy", Key: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	accRecv(t, entered, "busy handler")
	err := e.Stop(ctx)
	var se *engine.StopError
	if !errors.As(err, &se) {
		t.Fatalf("Stop past its deadline: %v, want a *StopError", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("StopError %v does not match context.DeadlineExceeded", err)
	}
	dl := obs.deadTo("w")
	if int(delivered.Load())+len(dl) != n {
		t.Errorf("delivered %d + dead-lettered %d != %d accepted", delivered.Load(), len(dl), n)
	}
	if se.Queued != len(dl) {
		t.Errorf("StopError.Queued = %d, dead letters %d", se.Queued, len(dl))
	}
	if len(dl) != n {
		t.Errorf("%d of %d queued messages dead-lettered; the deadline had passed", len(dl), n)
	}
	again := e.Stop(context.Background())
	var se2 *engine.StopError
	if !errors.As(again, &se2) || se2.Queued != se.Queued {
		t.Errorf("second Stop: %v, want the first's result %v", again, err)
	}
	goleak.VerifyNone(t, before)
}

// After Stop, new work is refused with ErrStopped (errors.go: "ErrStopped
// occurs when the engine is asked to do new work after Stop"; Start:
// "it returns ErrStopped after Stop").
func TestAcceptanceStopRefusesNewWork(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	accRegister(t, e, "w", accRecvOnly(nil))
	id := engine.AgentID{Type: "w", Key: "1"}
	r := accSpawn(t, e, id)
	if err := e.SubscribeType("t.*", "w"); err != nil {
		t.Fatal(err)
	}
	accStart(t, e)
	accStop(t, e)
	accIs(t, "Start", e.Start(), engine.ErrStopped)
	accIs(t, "Ref.Send", r.Send(nil), engine.ErrStopped)
	accIs(t, "Send", e.SendID(id, nil), engine.ErrStopped)
	accIs(t, "Publish", e.Publish("t.1", nil), engine.ErrStopped)
	_, err := e.Spawn(engine.AgentID{Type: "w", Key: "2"})
	accIs(t, "Spawn", err, engine.ErrStopped)
	accIs(t, "Register", e.Register("x", accRecvOnly(nil)), engine.ErrStopped)
	_, err = e.RequestID(context.Background(), id, nil)
	accIs(t, "Request", err, engine.ErrStopped)
	accIs(t, "Pause", e.Pause(id), engine.ErrStopped)
	accIs(t, "WaitIdle", e.WaitIdle(context.Background()), engine.ErrStopped)
	_, err = e.Cron("@every 1m", id, nil)
	accIs(t, "Cron", err, engine.ErrStopped)
}

// Sends and publishes made by handlers while the engine shuts down, across
// loops with a tiny inbox: whatever was accepted is delivered or
// dead-lettered ("the number of accepted sends always equals delivered plus
// dead-lettered"; WithInboxSize: "other loops keep the overflow locally; it
// never loses a message").
func TestAcceptanceStopCrossLoopSendsDuringShutdown(t *testing.T) {
	for _, how := range []string{"ContextSend", "ContextPublish"} {
		t.Run(how, func(t *testing.T) {
			e := accNew(t, engine.WithLoops(2), engine.WithInboxSize(2))
			obs := accObserve(e)
			var delivered, accepted atomic.Int32
			accRegister(t, e, "sub", accRecvOnly(func(c *engine.Context, m engine.Message) { delivered.Add(1) }))
			sid := engine.AgentID{Type: "sub", Key: "1"}
			sref := accSpawn(t, e, sid, engine.OnLoop(0))
			if err := e.SubscribeAgent("t", sid); err != nil {
				t.Fatal(err)
			}
			accRegister(t, e, "pub", func() engine.Agent {
				return &accFunc{terminate: func(c *engine.Context) {
					for i := 0; i < 200; i++ {
						var err error
						if how == "ContextSend" {
							err = c.Send(sref, []byte("x"))
						} else {
							err = c.Publish("t", []byte("x"))
						}
						if err == nil {
							accepted.Add(1)
						}
					}
				}}
			})
			for i := 0; i < 4; i++ {
				accSpawn(t, e, engine.AgentID{Type: "pub", Key: fmt.Sprint(i)}, engine.OnLoop(1))
			}
			accStart(t, e)
			accIdle(t, e)
			accStop(t, e)
			dl := len(obs.deadTo("sub"))
			t.Logf("accepted %d delivered %d dead %d", accepted.Load(), delivered.Load(), dl)
			if a, d := accepted.Load(), delivered.Load(); int(a) != int(d)+dl {
				t.Errorf("accepted %d != delivered %d + dead-lettered %d", a, d, dl)
			}
		})
	}
}
