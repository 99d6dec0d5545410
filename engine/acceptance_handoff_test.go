package engine_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// A handler that posts to an agent on a parked loop may leave that loop's
// wake-up to its own loop (a handoff). An outside send to the parked loop
// must wake it all the same: here the posting handler waits until the
// parked agent has heard from outside, which never happens if the outside
// send leaves the wake-up to the blocked loop. (Handlers must not block;
// the test blocks one only to hold its loop while the wake-up is held.)
func TestHandoffOutsideSendWakesAHeldLoop(t *testing.T) {
	for _, handoff := range []bool{true, false} {
		e := accNew(t, engine.WithLoops(2), engine.WithHandoff(handoff))
		heard := make(chan struct{})
		sent := make(chan struct{})
		var got atomic.Int32
		accRegister(t, e, "far", accRecvOnly(func(c *engine.Context, m engine.Message) {
			if string(m.Payload) == "outside" {
				close(heard)
			}
			got.Add(1)
		}))
		var far engine.Ref
		accRegister(t, e, "near", accRecvOnly(func(c *engine.Context, m engine.Message) {
			if err := c.Send(far, []byte("inside")); err != nil {
				t.Errorf("Send: %v", err)
			}
			close(sent)
			select { // bounded past the test's own deadline, so that a broken engine fails the test rather than hanging it
			case <-heard:
			case <-time.After(2 * accTimeout):
			}
		}))
		far = accSpawn(t, e, engine.AgentID{Type: "far", Key: "1"}, engine.OnLoop(1))
		near := accSpawn(t, e, engine.AgentID{Type: "near", Key: "1"}, engine.OnLoop(0))
		accStart(t, e)
		accIdle(t, e) // both loops parked
		if err := near.Send(nil); err != nil {
			t.Fatal(err)
		}
		accRecv(t, sent, "the near handler's send")
		if err := far.Send([]byte("outside")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-heard:
		case <-accCtx(t).Done():
			t.Fatalf("handoff %v: the outside send did not wake the loop whose wake-up a blocked loop held", handoff)
		}
		accIdle(t, e)
		if n := got.Load(); n != 2 {
			t.Fatalf("handoff %v: far got %d messages, want 2", handoff, n)
		}
		accStop(t, e)
	}
}

// A ping-pong across loops runs on handoffs; WaitIdle returns only after
// its last message, and an immediate Stop in the middle of one ends it
// with every sent message either delivered or dead-lettered, whichever goroutine ran the
// loop that took Stop's last step.
func TestHandoffPingPongIdleAndStop(t *testing.T) {
	const rounds = 20_000
	e := accNew(t, engine.WithLoops(2))
	var pings, pongs atomic.Int64
	var ping, pong engine.Ref
	accRegister(t, e, "ping", accRecvOnly(func(c *engine.Context, m engine.Message) {
		if pings.Add(1) < rounds {
			_ = c.Send(pong, nil)
		}
	}))
	accRegister(t, e, "pong", accRecvOnly(func(c *engine.Context, m engine.Message) {
		pongs.Add(1)
		_ = c.Send(ping, nil)
	}))
	ping = accSpawn(t, e, engine.AgentID{Type: "ping", Key: "1"}, engine.OnLoop(0))
	pong = accSpawn(t, e, engine.AgentID{Type: "pong", Key: "1"}, engine.OnLoop(1))
	accStart(t, e)
	if err := ping.Send(nil); err != nil {
		t.Fatal(err)
	}
	accIdle(t, e)
	if p, q := pings.Load(), pongs.Load(); p != rounds || q != rounds-1 {
		t.Fatalf("after WaitIdle: %d pings, %d pongs; want %d, %d", p, q, rounds, rounds-1)
	}
	var borrowed uint64
	for _, l := range e.Stats().Loops {
		borrowed += l.Borrowed
	}
	if borrowed == 0 {
		t.Fatal("no loop ran its peer's turns during the ping-pong")
	}
	accStop(t, e)

	// Stop while the ball is in the air, many times over.
	for i := 0; i < 20; i++ {
		e := accNew(t, engine.WithLoops(2))
		o := accObserve(e)
		var sends, received atomic.Int64
		var a, b engine.Ref
		half := make(chan struct{})
		volley := func(peer *engine.Ref) func(c *engine.Context, m engine.Message) {
			return func(c *engine.Context, m engine.Message) {
				if received.Add(1) == 1000 {
					close(half)
				}
				if c.Send(*peer, nil) == nil {
					sends.Add(1)
				}
			}
		}
		accRegister(t, e, "a", accRecvOnly(volley(&b)))
		accRegister(t, e, "b", accRecvOnly(volley(&a)))
		a = accSpawn(t, e, engine.AgentID{Type: "a", Key: "1"}, engine.OnLoop(0))
		b = accSpawn(t, e, engine.AgentID{Type: "b", Key: "1"}, engine.OnLoop(1))
		accStart(t, e)
		if err := a.Send(nil); err != nil {
			t.Fatal(err)
		}
		accRecv(t, half, "a thousand hops")
		accStop(t, e, engine.Immediate()) // a graceful Stop would wait for the endless rally
		if got, want := received.Load()+int64(len(o.allDead())), sends.Load()+1; got != want {
			t.Fatalf("run %d: %d received + %d dead letters = %d, want the %d accepted", i, received.Load(), len(o.allDead()), got, want)
		}
	}
}
