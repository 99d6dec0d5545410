package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// The Block policy's documented waits: Send waits without a deadline and
// is released when the agent terminates (or the engine stops, see
// TestMailboxBlockReleasedByStop); SendContext gives up with its context.
func TestBlockSendWaitsUntilTerminatedSendContextGivesUp(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	accRegister(t, e, "blk", accRecvOnly(func(*engine.Context, engine.Message) {}), engine.Mailbox(1, engine.Block))
	accStart(t, e)
	id := engine.AgentID{Type: "blk", Key: "1"}
	r := accSpawn(t, e, id)
	accIdle(t, e)
	if err := e.Pause(id); err != nil {
		t.Fatal(err)
	}
	if err := r.Send(nil); err != nil { // fills the mailbox
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.SendContext(ctx, r, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("SendContext with an ended ctx: %v", err)
	}
	sent := make(chan error, 1)
	go func() { sent <- r.Send(nil) }()
	select {
	case err := <-sent:
		t.Fatalf("Send to a full Block mailbox returned (%v) without room", err)
	default:
	}
	if err := e.Terminate(id); err != nil {
		t.Fatal(err)
	}
	accIs(t, "the blocked Send", accRecv(t, sent, "the blocked Send to return"), engine.ErrTerminated)
}
