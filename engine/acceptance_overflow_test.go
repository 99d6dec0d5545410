package engine_test

// Overflow accounting, per policy and per send path.
//
// doc.go: "When it is full the type's Overflow policy applies: DropNewest,
// DropOldest, Reject (an error to the sender) or Block (outside senders
// wait; senders inside the engine get ErrMailboxFull, since a loop never
// blocks). Every dropped or undeliverable message is a dead letter, seen by
// DeadLetterObserver plugins and counted in Stats, so that the number of
// accepted sends always equals delivered plus dead-lettered."
// README.md: "accepted sends = delivered + dead-lettered, exactly."

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

const (
	ovCap   = 2 // the receiver's mailbox bound
	ovBurst = 8 // messages sent in one burst
)

// ovPath is one way of getting a message to the receiver.
type ovPath struct {
	name    string
	sub     string // "agent": SubscribeAgent("a.k"); "type": SubscribeType("t.*")
	outside func(e *engine.Engine, r engine.Ref, id engine.AgentID, p []byte) error
	inside  func(c *engine.Context, r engine.Ref, id engine.AgentID, p []byte) error
}

var ovPaths = []ovPath{
	{name: "RefSend", outside: func(e *engine.Engine, r engine.Ref, id engine.AgentID, p []byte) error { return r.Send(p) }},
	{name: "EngineSendID", outside: func(e *engine.Engine, r engine.Ref, id engine.AgentID, p []byte) error { return e.SendID(id, p) }},
	{name: "ContextSend", inside: func(c *engine.Context, r engine.Ref, id engine.AgentID, p []byte) error { return c.Send(r, p) }},
	{name: "ContextSendID", inside: func(c *engine.Context, r engine.Ref, id engine.AgentID, p []byte) error { return c.SendID(id, p) }},
	{name: "EnginePublishAgentSub", sub: "agent", outside: func(e *engine.Engine, r engine.Ref, id engine.AgentID, p []byte) error { return e.Publish("a.k", p) }},
	{name: "EnginePublishTypeSub", sub: "type", outside: func(e *engine.Engine, r engine.Ref, id engine.AgentID, p []byte) error { return e.Publish("t.k", p) }},
	{name: "ContextPublishAgentSub", sub: "agent", inside: func(c *engine.Context, r engine.Ref, id engine.AgentID, p []byte) error { return c.Publish("a.k", p) }},
	{name: "ContextPublishTypeSub", sub: "type", inside: func(c *engine.Context, r engine.Ref, id engine.AgentID, p []byte) error { return c.Publish("t.k", p) }},
}

var ovPolicies = []engine.Overflow{engine.DropNewest, engine.DropOldest, engine.Reject, engine.Block}

// ovResult is what one burst did.
type ovResult struct {
	errs      []error  // per message sent, in order
	accepted  []string // payloads whose send returned nil
	delivered []string // payloads the receiver handled, in order
	dead      []engine.DeadLetter
	statsDL   uint64
	allDL     int
}

// ovRun sends ovBurst messages to a receiver with a full-able mailbox and
// reports what became of them. mode is "outside", "same" (a handler on the
// receiver's loop) or "cross" (a handler on another loop). Outside and
// cross, the receiver is held in a handler while the burst is sent, so its
// mailbox fills; on its own loop it cannot run until the burst's handler
// returns.
func ovRun(t *testing.T, pol engine.Overflow, p ovPath, mode string) ovResult {
	t.Helper()
	e := accNew(t, engine.WithLoops(2))
	obs := accObserve(e)
	var got accLog
	entered := make(chan struct{}, 1)
	gate := make(chan struct{})
	accRegister(t, e, "rcv", accRecvOnly(func(c *engine.Context, m engine.Message) {
		if string(m.Payload) == "block" {
			entered <- struct{}{}
			accGateWait(gate)
			return
		}
		got.add(string(m.Payload))
	}), engine.Mailbox(ovCap, pol))
	rid := engine.AgentID{Type: "rcv", Key: "k"}
	rloop := 1
	if mode == "same" {
		rloop = 0
	}
	rref := accSpawn(t, e, rid, engine.OnLoop(rloop))
	msgs := make([][]byte, ovBurst)
	for i := range msgs {
		msgs[i] = []byte(fmt.Sprintf("m%d", i))
	}
	burstDone := make(chan []error, 1)
	accRegister(t, e, "snd", accRecvOnly(func(c *engine.Context, m engine.Message) {
		errs := make([]error, len(msgs))
		for i, pl := range msgs {
			errs[i] = p.inside(c, rref, rid, pl)
		}
		burstDone <- errs
	}))
	sref := accSpawn(t, e, engine.AgentID{Type: "snd", Key: "s"}, engine.OnLoop(0))
	switch p.sub {
	case "agent":
		if err := e.SubscribeAgent("a.k", rid); err != nil {
			t.Fatal(err)
		}
	case "type":
		if err := e.SubscribeType("t.*", "rcv"); err != nil {
			t.Fatal(err)
		}
	}
	accStart(t, e)
	held := mode != "same"
	if held {
		if err := rref.Send([]byte("block")); err != nil {
			t.Fatal(err)
		}
		accRecv(t, entered, "receiver to hold")
	}
	var errs []error
	if mode == "outside" {
		progress := make(chan struct{}, len(msgs))
		go func() {
			errs := make([]error, len(msgs))
			for i, pl := range msgs {
				errs[i] = p.outside(e, rref, rid, pl)
				progress <- struct{}{}
			}
			burstDone <- errs
		}()
		if pol == engine.Block {
			// The block message holds one place: ovCap-1 sends fit before
			// a Block sender has to wait. Release the receiver then.
			for i := 0; i < ovCap-1; i++ {
				accRecv(t, progress, "outside sends")
			}
			close(gate)
			held = false
		}
		errs = accRecv(t, burstDone, "outside burst")
	} else {
		if err := sref.Send([]byte("go")); err != nil {
			t.Fatal(err)
		}
		errs = accRecv(t, burstDone, "handler burst")
	}
	if held {
		close(gate)
	}
	accIdle(t, e)
	res := ovResult{errs: errs, delivered: got.get(), dead: obs.deadTo("rcv")}
	for i, err := range errs {
		if err == nil {
			res.accepted = append(res.accepted, string(msgs[i]))
		}
	}
	res.statsDL = e.Stats().DeadLetters
	res.allDL = len(obs.allDead())
	return res
}

func ovEach(t *testing.T, check func(t *testing.T, pol engine.Overflow, p ovPath, mode string, r ovResult)) {
	for _, pol := range ovPolicies {
		for _, p := range ovPaths {
			modes := []string{"same", "cross"}
			if p.outside != nil {
				modes = []string{"outside"}
			}
			for _, mode := range modes {
				t.Run(fmt.Sprintf("%v/%s/%s", pol, p.name, mode), func(t *testing.T) {
					check(t, pol, p, mode, ovRun(t, pol, p, mode))
				})
			}
		}
	}
}

// TestAcceptanceOverflowInvariant: accepted = delivered + dead-lettered on
// every path, for every policy, and the plugins see what Stats counts.
func TestAcceptanceOverflowInvariant(t *testing.T) {
	ovEach(t, func(t *testing.T, pol engine.Overflow, p ovPath, mode string, r ovResult) {
		if a, d, dl := len(r.accepted), len(r.delivered), len(r.dead); a != d+dl {
			t.Errorf("accepted %d != delivered %d + dead-lettered %d\nerrs %v\ndelivered %q", a, d, dl, r.errs, r.delivered)
		}
		if r.statsDL != uint64(r.allDL) {
			t.Errorf("Stats().DeadLetters = %d, DeadLetterObserver saw %d", r.statsDL, r.allDL)
		}
		for _, d := range r.dead {
			if !errors.Is(d.Reason, engine.ErrMailboxFull) {
				t.Errorf("dead letter %q reason %v, want ErrMailboxFull", d.Message.Payload, d.Reason)
			}
		}
	})
}

// TestAcceptanceOverflowPolicy: what each policy does with the burst.
// DropNewest keeps the first messages, DropOldest the newest, Reject
// returns ErrMailboxFull to the sender and dead-letters nothing, Block makes
// an outside sender wait (nothing lost) and gives a handler ErrMailboxFull.
func TestAcceptanceOverflowPolicy(t *testing.T) {
	ovEach(t, func(t *testing.T, pol engine.Overflow, p ovPath, mode string, r ovResult) {
		rejects := 0
		for _, err := range r.errs {
			if err != nil {
				if !errors.Is(err, engine.ErrMailboxFull) {
					t.Errorf("send error %v, want ErrMailboxFull or nil", err)
				}
				rejects++
			}
		}
		switch {
		case pol == engine.DropNewest || pol == engine.DropOldest:
			if rejects != 0 {
				t.Errorf("%v: %d sends refused (%v); the policy accepts and dead-letters", pol, rejects, r.errs)
			}
			if len(r.delivered) != ovCap {
				t.Fatalf("%v: delivered %q, want %d messages", pol, r.delivered, ovCap)
			}
			want := r.accepted[:ovCap]
			if pol == engine.DropOldest {
				want = r.accepted[len(r.accepted)-ovCap:]
			}
			if !slices.Equal(r.delivered, want) {
				t.Errorf("%v: delivered %q, want %q", pol, r.delivered, want)
			}
		case pol == engine.Reject || (pol == engine.Block && mode != "outside"):
			if rejects == 0 {
				t.Errorf("%v (%s): no send got ErrMailboxFull; dead letters %d, delivered %q", pol, mode, len(r.dead), r.delivered)
			}
			if len(r.dead) != 0 {
				t.Errorf("%v (%s): %d messages dead-lettered instead of refused to the sender", pol, mode, len(r.dead))
			}
		case pol == engine.Block:
			if rejects != 0 || len(r.dead) != 0 {
				t.Errorf("Block from outside: %d refused, %d dead-lettered; the sender should have waited", rejects, len(r.dead))
			}
			if len(r.delivered) != ovBurst {
				t.Errorf("Block from outside: delivered %q, want all %d", r.delivered, ovBurst)
			}
		}
	})
}
