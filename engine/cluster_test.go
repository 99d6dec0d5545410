package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// fakeCluster joins engines in one process: owner picks the node of an
// ID, and each call is carried straight to that node's entry points.
type fakeCluster struct {
	self  int
	nodes *[]*engine.Engine
	owner func(id engine.AgentID) int

	owns     atomic.Int64 // Owns calls
	mu       sync.Mutex
	sends    []fakeSend
	requests int
	pubs     []string
	dropReqs bool // Request accepts and never answers
}

type fakeSend struct{ from, to engine.AgentID }

func (f *fakeCluster) Owns(id engine.AgentID) bool {
	f.owns.Add(1)
	return f.owner(id) == f.self
}

func (f *fakeCluster) Send(ctx context.Context, from, to engine.AgentID, payload []byte) error {
	f.mu.Lock()
	f.sends = append(f.sends, fakeSend{from, to})
	f.mu.Unlock()
	return (*f.nodes)[f.owner(to)].DeliverRemote(ctx, to, payload)
}

func (f *fakeCluster) Request(from, to engine.AgentID, payload []byte, timeout time.Duration, done func([]byte, error)) error {
	f.mu.Lock()
	f.requests++
	drop := f.dropReqs
	f.mu.Unlock()
	if drop {
		return nil
	}
	return (*f.nodes)[f.owner(to)].RequestRemote(from, to, payload, done)
}

func (f *fakeCluster) Publish(from engine.AgentID, topic string, payload []byte) error {
	f.mu.Lock()
	f.pubs = append(f.pubs, topic)
	f.mu.Unlock()
	var errs []error
	for i, e := range *f.nodes {
		if i != f.self {
			errs = append(errs, e.PublishLocal(topic, payload))
		}
	}
	return errors.Join(errs...)
}

// byKey owns keys "a…" on node 0 and every other key on node 1.
func byKey(id engine.AgentID) int {
	if id.Key != "" && id.Key[0] == 'a' {
		return 0
	}
	return 1
}

// twoNodes starts two engines joined by fake clusters; each registers the
// types reg registers.
func twoNodes(t *testing.T, reg func(i int, e *engine.Engine)) ([]*engine.Engine, []*fakeCluster) {
	t.Helper()
	var nodes []*engine.Engine
	fakes := make([]*fakeCluster, 2)
	for i := range fakes {
		fakes[i] = &fakeCluster{self: i, nodes: &nodes, owner: byKey}
		e := accNew(t, engine.WithLoops(2), engine.WithCluster(fakes[i]))
		reg(i, e)
		nodes = append(nodes, e)
	}
	for _, e := range nodes {
		accStart(t, e)
	}
	return nodes, fakes
}

type got struct {
	node    int
	id      engine.AgentID
	payload string
	sender  engine.Ref
}

func TestClusterSendIDGoesToOwner(t *testing.T) {
	ch := make(chan got, 16)
	nodes, fakes := twoNodes(t, func(i int, e *engine.Engine) {
		accRegister(t, e, "dev", accRecvOnly(func(c *engine.Context, m engine.Message) {
			ch <- got{i, c.ID(), string(m.Payload), m.Sender}
		}))
	})
	remote := engine.AgentID{Type: "dev", Key: "b1"}
	if err := nodes[0].SendID(remote, []byte("x")); err != nil {
		t.Fatalf("SendID: %v", err)
	}
	g := accRecv(t, ch, "remote delivery")
	if g.node != 1 || g.id != remote || g.payload != "x" || !g.sender.IsZero() {
		t.Fatalf("got %+v, want node 1 %v \"x\" zero sender", g, remote)
	}
	if _, err := nodes[0].Lookup(remote); !errors.Is(err, engine.ErrUnknownAgent) {
		t.Fatalf("node 0 spawned the remote agent: Lookup = %v", err)
	}
	if err := nodes[0].SendIDContext(accCtx(t), engine.AgentID{Type: "dev", Key: "a1"}, []byte("y")); err != nil {
		t.Fatalf("SendIDContext: %v", err)
	}
	if g := accRecv(t, ch, "local delivery"); g.node != 0 || g.payload != "y" {
		t.Fatalf("local send got %+v", g)
	}
	fakes[0].mu.Lock()
	defer fakes[0].mu.Unlock()
	if len(fakes[0].sends) != 1 || fakes[0].sends[0] != (fakeSend{to: remote}) {
		t.Fatalf("cluster sends = %+v, want one from outside to %v", fakes[0].sends, remote)
	}
}

func TestClusterContextSendIDNamesSender(t *testing.T) {
	ch := make(chan got, 16)
	nodes, fakes := twoNodes(t, func(i int, e *engine.Engine) {
		accRegister(t, e, "dev", accRecvOnly(func(c *engine.Context, m engine.Message) {
			if string(m.Payload) == "fwd" {
				if err := c.SendID(engine.AgentID{Type: "dev", Key: "b2"}, []byte("hop")); err != nil {
					t.Errorf("Context.SendID: %v", err)
				}
				return
			}
			ch <- got{i, c.ID(), string(m.Payload), m.Sender}
		}))
	})
	if err := nodes[0].SendID(engine.AgentID{Type: "dev", Key: "a2"}, []byte("fwd")); err != nil {
		t.Fatal(err)
	}
	if g := accRecv(t, ch, "hop"); g.node != 1 || g.payload != "hop" {
		t.Fatalf("got %+v", g)
	}
	fakes[0].mu.Lock()
	defer fakes[0].mu.Unlock()
	want := fakeSend{engine.AgentID{Type: "dev", Key: "a2"}, engine.AgentID{Type: "dev", Key: "b2"}}
	if len(fakes[0].sends) != 1 || fakes[0].sends[0] != want {
		t.Fatalf("cluster sends = %+v, want %+v", fakes[0].sends, want)
	}
}

func TestClusterRequestIDAcrossNodes(t *testing.T) {
	senders := make(chan engine.AgentID, 4)
	replies := make(chan string, 4)
	nodes, _ := twoNodes(t, func(i int, e *engine.Engine) {
		accRegister(t, e, "echo", accRecvOnly(func(c *engine.Context, m engine.Message) {
			if string(m.Payload) == "silent" {
				return
			}
			if string(m.Payload) == "ask" { // a handler asks a remote agent
				err := c.RequestID(engine.AgentID{Type: "echo", Key: "b3"}, []byte("hi"), time.Minute,
					func(c *engine.Context, reply []byte, err error) { replies <- string(reply) + "|" + errString(err) })
				if err != nil {
					t.Errorf("Context.RequestID: %v", err)
				}
				return
			}
			if from, ok := c.RemoteSender(); ok {
				senders <- from
			} else {
				senders <- engine.AgentID{}
			}
			_ = c.Reply(append([]byte("re:"), m.Payload...))
		}))
	})
	ctx := accCtx(t)
	rep, err := nodes[0].RequestID(ctx, engine.AgentID{Type: "echo", Key: "b3"}, []byte("q"))
	if err != nil || string(rep) != "re:q" {
		t.Fatalf("RequestID = %q, %v; want re:q", rep, err)
	}
	if from := accRecv(t, senders, "sender"); from != (engine.AgentID{}) {
		t.Fatalf("RemoteSender of an outside request = %v, want none", from)
	}
	_, err = nodes[0].RequestID(ctx, engine.AgentID{Type: "echo", Key: "b3"}, []byte("silent"))
	accIs(t, "remote request without reply", err, engine.ErrNoReply)

	if err := nodes[0].SendID(engine.AgentID{Type: "echo", Key: "a3"}, []byte("ask")); err != nil {
		t.Fatal(err)
	}
	if from := accRecv(t, senders, "sender"); from != (engine.AgentID{Type: "echo", Key: "a3"}) {
		t.Fatalf("RemoteSender = %v, want echo/a3", from)
	}
	if r := accRecv(t, replies, "callback"); r != "re:hi|nil" {
		t.Fatalf("callback got %q, want re:hi with no error", r)
	}
}

func TestClusterRemoteRequestTimesOut(t *testing.T) {
	errs := make(chan error, 1)
	nodes, fakes := twoNodes(t, func(i int, e *engine.Engine) {
		accRegister(t, e, "q", accRecvOnly(func(c *engine.Context, m engine.Message) {
			err := c.RequestID(engine.AgentID{Type: "q", Key: "b4"}, nil, time.Millisecond,
				func(c *engine.Context, _ []byte, err error) { errs <- err })
			if err != nil {
				t.Errorf("RequestID: %v", err)
			}
		}))
	})
	fakes[0].mu.Lock()
	fakes[0].dropReqs = true
	fakes[0].mu.Unlock()
	if err := nodes[0].SendID(engine.AgentID{Type: "q", Key: "a4"}, nil); err != nil {
		t.Fatal(err)
	}
	err := accRecv(t, errs, "timeout")
	accIs(t, "unanswered remote request", err, engine.ErrTimeout)
	if want := "q/b4"; !contains(err.Error(), want) {
		t.Fatalf("timeout error %q does not name %s", err, want)
	}
}

func TestClusterPublishReachesEveryNodeAndOwnerSpawns(t *testing.T) {
	ch := make(chan got, 16)
	nodes, fakes := twoNodes(t, func(i int, e *engine.Engine) {
		accRegister(t, e, "sub", accRecvOnly(func(c *engine.Context, m engine.Message) {
			if m.Topic == "" {
				if err := c.Subscribe("t.>"); err != nil {
					t.Errorf("Subscribe: %v", err)
				}
				ch <- got{node: i, payload: "subscribed"}
				return
			}
			ch <- got{i, c.ID(), m.Topic, m.Sender}
		}))
		accRegister(t, e, "dev", accRecvOnly(func(c *engine.Context, m engine.Message) {
			ch <- got{i, c.ID(), m.Topic, m.Sender}
		}))
		if err := e.SubscribeType("t.*", "dev"); err != nil {
			t.Fatal(err)
		}
	})
	// A plain subscriber on each node (keys owned locally: node 0 a…, node 1 b…).
	for i, k := range []string{"as", "bs"} {
		if err := nodes[i].SendID(engine.AgentID{Type: "sub", Key: k}, nil); err != nil {
			t.Fatal(err)
		}
		accRecv(t, ch, "subscribe")
	}
	if err := nodes[0].Publish("t.b5", []byte("p")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	seen := map[got]bool{}
	for range 3 {
		g := accRecv(t, ch, "publish")
		g.sender = engine.Ref{}
		seen[g] = true
	}
	for _, want := range []got{
		{0, engine.AgentID{Type: "sub", Key: "as"}, "t.b5", engine.Ref{}},
		{1, engine.AgentID{Type: "sub", Key: "bs"}, "t.b5", engine.Ref{}},
		{1, engine.AgentID{Type: "dev", Key: "b5"}, "t.b5", engine.Ref{}},
	} {
		if !seen[want] {
			t.Fatalf("publish deliveries %v miss %v", seen, want)
		}
	}
	accIdle(t, nodes[0])
	accIdle(t, nodes[1])
	if _, err := nodes[0].Lookup(engine.AgentID{Type: "dev", Key: "b5"}); !errors.Is(err, engine.ErrUnknownAgent) {
		t.Fatalf("type subscription spawned the key's agent off its owner: %v", err)
	}
	fakes[1].mu.Lock()
	defer fakes[1].mu.Unlock()
	if len(fakes[1].pubs) != 0 {
		t.Fatalf("PublishLocal forwarded again: %v", fakes[1].pubs)
	}
	if err := nodes[0].Publish("bad..topic", nil); err == nil {
		t.Fatal("Publish of a bad topic: no error")
	}
	fakes[0].mu.Lock()
	defer fakes[0].mu.Unlock()
	if len(fakes[0].pubs) != 1 {
		t.Fatalf("cluster publishes = %v, want the one good topic", fakes[0].pubs)
	}
}

func TestClusterRefSendsAndBadIDsStayLocal(t *testing.T) {
	ch := make(chan got, 4)
	nodes, fakes := twoNodes(t, func(i int, e *engine.Engine) {
		accRegister(t, e, "dev", accRecvOnly(func(c *engine.Context, m engine.Message) { ch <- got{node: i} }))
	})
	// Spawned on node 0 although node 1 owns the key: a Ref is local.
	r := accSpawn(t, nodes[0], engine.AgentID{Type: "dev", Key: "b6"})
	before := fakes[0].owns.Load()
	if err := r.Send(nil); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].Send(r, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if g := accRecv(t, ch, "ref send"); g.node != 0 {
			t.Fatalf("Ref send delivered on node %d", g.node)
		}
	}
	if n := fakes[0].owns.Load() - before; n != 0 {
		t.Fatalf("Ref sends asked the cluster %d times", n)
	}
	err := nodes[0].SendID(engine.AgentID{Type: "dev/x", Key: "b"}, nil)
	accIs(t, "bad ID", err, engine.ErrInvalidID)
	fakes[0].mu.Lock()
	defer fakes[0].mu.Unlock()
	if len(fakes[0].sends) != 0 {
		t.Fatalf("a bad ID reached the cluster: %v", fakes[0].sends)
	}
}

func TestClusterDeliverRemoteAppliesOverflow(t *testing.T) {
	gate := make(chan struct{})
	e := accNew(t, engine.WithLoops(1))
	accRegister(t, e, "slow", accRecvOnly(func(c *engine.Context, m engine.Message) { accGateWait(gate) }),
		engine.Mailbox(1, engine.Reject))
	accStart(t, e)
	defer close(gate)
	id := engine.AgentID{Type: "slow", Key: "k"}
	var err error
	for range 3 { // one in the handler, one queued, the third refused
		if err = e.DeliverRemote(accCtx(t), id, nil); err != nil {
			break
		}
	}
	accIs(t, "DeliverRemote to a full Reject mailbox", err, engine.ErrMailboxFull)
	err = e.RequestRemote(engine.AgentID{}, id, nil, func([]byte, error) {})
	accIs(t, "RequestRemote to a full Reject mailbox", err, engine.ErrMailboxFull)
}

// TestClusterIDPathsAllocateNothing: with no Cluster, and with one that
// owns everything, SendID to an existing agent allocates nothing.
func TestClusterIDPathsAllocateNothing(t *testing.T) {
	for _, c := range []engine.Cluster{nil, &fakeCluster{owner: func(engine.AgentID) int { return 0 }}} {
		e := accNew(t, engine.WithLoops(1), engine.WithCluster(c))
		accRegister(t, e, "dev", accRecvOnly(func(*engine.Context, engine.Message) {}))
		accStart(t, e)
		id := engine.AgentID{Type: "dev", Key: "k"}
		accSpawn(t, e, id)
		payload := []byte("x")
		if n := testing.AllocsPerRun(200, func() { _ = e.SendID(id, payload) }); n != 0 {
			t.Fatalf("cluster %T: SendID allocates %v per call", c, n)
		}
		accStop(t, e)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
