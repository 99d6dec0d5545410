package engine_test

import (
	"errors"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// A Block mailbox refuses a handler's send only when it really is full,
// counting every accepted message, even while outside senders are sending
// to it: no place may be held for senders that have not sent. The outside
// message to the target and the message that starts the handler reach the
// loop in one inbox batch (the loop is held by a gate meanwhile), so the
// handler runs while the loop is still busy with outside traffic for the
// target.
func TestBlockHandlerRefusedOnlyWhenFullWhileOutsideSendersSend(t *testing.T) {
	const capacity = 4096
	e := accNew(t, engine.WithLoops(1), engine.WithInboxSize(64))
	accRegister(t, e, "blk", accRecvOnly(func(*engine.Context, engine.Message) {}), engine.Mailbox(capacity, engine.Block))
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	accRegister(t, e, "gate", accRecvOnly(func(*engine.Context, engine.Message) {
		entered <- struct{}{}
		accGateWait(gate)
	}))
	target := engine.AgentID{Type: "blk", Key: "1"}
	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1)
	var ref engine.Ref // set before the filler's message is sent
	accRegister(t, e, "filler", accRecvOnly(func(c *engine.Context, m engine.Message) {
		n, err := 0, error(nil)
		for n <= capacity {
			if err = c.Send(ref, nil); err != nil {
				break
			}
			n++
		}
		got <- result{n, err}
	}))
	accStart(t, e)
	ref = accSpawn(t, e, target)
	g := accSpawn(t, e, engine.AgentID{Type: "gate", Key: "1"})
	f := accSpawn(t, e, engine.AgentID{Type: "filler", Key: "1"})
	accIdle(t, e)
	if err := e.Pause(target); err != nil { // its mailbox only fills
		t.Fatal(err)
	}
	accIdle(t, e)
	if err := g.Send(nil); err != nil {
		t.Fatal(err)
	}
	accRecv(t, entered, "the gate to hold the loop")
	if err := ref.Send(nil); err != nil { // one place taken from outside
		t.Fatal(err)
	}
	if err := f.Send(nil); err != nil {
		t.Fatal(err)
	}
	close(gate)
	r := accRecv(t, got, "the filler's sends")
	if r.n != capacity-1 || !errors.Is(r.err, engine.ErrMailboxFull) {
		t.Fatalf("handler sent %d messages before %v; want %d then ErrMailboxFull (capacity %d, one message queued)",
			r.n, r.err, capacity-1, capacity)
	}
}
