package cluster_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/cluster"
	"github.com/agentloop/agentloop/engine"
)

// slowPair starts n1 and n2, n2 with a type "slow" whose agents block in
// their first message until gate closes, with a mailbox of two messages
// (the one being handled holds its place) and the given policy, and a type "sink". It returns the members, the
// key of a "slow" agent on n2, and the dead letters n1 hears of.
func slowPair(t *testing.T, policy engine.Overflow, conf func(c *cluster.Config), gate, inGate chan struct{}) ([]*member, engine.AgentID, chan cluster.DeadLetter, *sync.Map, func()) {
	url := natsServer(t)
	var closeGate sync.Once
	open := func() { closeGate.Do(func() { close(gate) }) }
	dead := make(chan cluster.DeadLetter, 1024)
	var handled sync.Map
	var once sync.Once
	ms := startNodesWith(t, url, three[:2], func(name string, e *engine.Engine) {
		if err := e.Register("slow", func() engine.Agent {
			return fn(func(c *engine.Context, m engine.Message) {
				once.Do(func() { close(inGate); <-gate })
				handled.Store(string(m.Payload), true)
			})
		}, engine.Mailbox(2, policy)); err != nil {
			t.Fatal(err)
		}
		register(t, e, "sink", func(c *engine.Context, m engine.Message) { handled.Store(string(m.Payload), true) })
	}, func(name string, c *cluster.Config) {
		if conf != nil && name == "n2" {
			conf(c)
		}
	}, func(name string, n *cluster.Node) {
		n.OnDeadLetter(func(d cluster.DeadLetter) { dead <- d })
	})
	t.Cleanup(open) // before the nodes stop (cleanups run last first)
	return ms, engine.AgentID{Type: "slow", Key: keyOn(three[:2], "slow", "n2")}, dead, &handled, open
}

// fillSlow sends "a" (held in the handler) and "b" (fills the mailbox) to
// the slow agent and waits until n2's engine has taken both.
func fillSlow(t *testing.T, ms []*member, slow engine.AgentID, inGate chan struct{}) {
	t.Helper()
	if err := ms[0].e.SendID(slow, []byte("a")); err != nil {
		t.Fatal(err)
	}
	recv(t, inGate, "the slow handler")
	if err := ms[0].e.SendID(slow, []byte("b")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 to take a and b", func() bool { return ms[1].node.Stats().RemoteDelivered == 2 })
}

// TestRejectMailboxRefusesAcrossNodes: sends to a full Reject mailbox on
// another node come back as dead letters with ErrMailboxFull, one each.
func TestRejectMailboxRefusesAcrossNodes(t *testing.T) {
	gate, inGate := make(chan struct{}), make(chan struct{})
	ms, slow, dead, handled, open := slowPair(t, engine.Reject, nil, gate, inGate)
	fillSlow(t, ms, slow, inGate)
	for _, p := range []string{"c", "d"} {
		if err := ms[0].e.SendID(slow, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"c", "d"} {
		d := recv(t, dead, "dead letter")
		if string(d.Payload) != want || d.To != slow || !errors.Is(d.Reason, engine.ErrMailboxFull) {
			t.Fatalf("dead letter %q to %v: %v; want %q, ErrMailboxFull", d.Payload, d.To, d.Reason, want)
		}
	}
	open()
	eventually(t, "a and b handled", func() bool {
		_, a := handled.Load("a")
		_, b := handled.Load("b")
		return a && b
	})
	eventually(t, "n1's sends settled", func() bool { return ms[0].node.Stats().InFlight == 0 })
	if st := ms[0].node.Stats(); st.Sent != 4 || st.Confirmed != 2 || st.Nacked != 2 {
		t.Fatalf("n1's stats %+v, want 4 sent, 2 confirmed, 2 refused", st)
	}
}

// TestBlockMailboxWaitsBlockForAcrossNodes: a send to a full Block
// mailbox on another node waits there for room at most Config.BlockFor,
// then comes back as a dead letter with ErrMailboxFull.
func TestBlockMailboxWaitsBlockForAcrossNodes(t *testing.T) {
	gate, inGate := make(chan struct{}), make(chan struct{})
	ms, slow, dead, handled, open := slowPair(t, engine.Block, func(c *cluster.Config) { c.BlockFor = 10 * time.Millisecond }, gate, inGate)
	fillSlow(t, ms, slow, inGate)
	if err := ms[0].e.SendID(slow, []byte("c")); err != nil {
		t.Fatal(err)
	}
	d := recv(t, dead, "dead letter")
	if string(d.Payload) != "c" || !errors.Is(d.Reason, engine.ErrMailboxFull) {
		t.Fatalf("dead letter %q: %v; want c, ErrMailboxFull", d.Payload, d.Reason)
	}
	open()
	// Room now: the next send waits for it and is delivered.
	if err := ms[0].e.SendID(slow, []byte("e")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "e handled", func() bool { _, ok := handled.Load("e"); return ok })
	if _, ok := handled.Load("c"); ok {
		t.Fatal("c was refused and handled")
	}
}

// TestSlowConsumerDropsAreDeadLetters: while the owner waits on a Block
// mailbox, the frames behind it fill its NATS buffer and NATS drops the
// rest; every dropped send comes back to its sender as a dead letter with
// ErrSlowConsumer, the owner counts the drops, and the accounting adds up.
func TestSlowConsumerDropsAreDeadLetters(t *testing.T) {
	gate, inGate := make(chan struct{}), make(chan struct{})
	ms, slow, dead, handled, open := slowPair(t, engine.Block, func(c *cluster.Config) {
		c.BlockFor = wait
		c.PendingLimit = 4
	}, gate, inGate)
	fillSlow(t, ms, slow, inGate)
	if err := ms[0].e.SendID(slow, []byte("c")); err != nil { // waits on n2, holding up the rest
		t.Fatal(err)
	}
	const flood = 200
	sink := keyOn(three[:2], "sink", "n2")
	for i := range flood {
		if err := ms[0].e.SendID(engine.AgentID{Type: "sink", Key: sink}, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "n2 to see NATS drop frames", func() bool { return ms[1].node.Stats().SlowConsumer > 0 })
	open()
	eventually(t, "n1's sends settled", func() bool { return ms[0].node.Stats().InFlight == 0 })
	st := ms[0].node.Stats()
	if st.Dropped == 0 || st.Sent != st.Confirmed+st.Dropped || st.Sent != flood+3 {
		t.Fatalf("n1's stats %+v: want %d sent, each confirmed or dropped, some dropped", st, flood+3)
	}
	if got := ms[1].node.Stats().SlowConsumer; got < st.Dropped {
		t.Fatalf("n2 counts %d dropped by NATS, n1 %d dead letters", got, st.Dropped)
	}
	for range st.Dropped {
		d := recv(t, dead, "dead letter")
		if !errors.Is(d.Reason, cluster.ErrSlowConsumer) {
			t.Fatalf("dead letter %q: %v, want ErrSlowConsumer", d.Payload, d.Reason)
		}
		if _, ok := handled.Load(string(d.Payload)); ok {
			t.Fatalf("%q dead-lettered and handled", d.Payload)
		}
	}
	delivered := 0
	handled.Range(func(_, _ any) bool { delivered++; return true })
	eventually(t, "n2's engine idle", func() bool {
		delivered = 0
		handled.Range(func(_, _ any) bool { delivered++; return true })
		return uint64(delivered) == st.Confirmed
	})
}
