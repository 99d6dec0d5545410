package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/agentloop/agentloop/cluster"
	"github.com/agentloop/agentloop/engine"
)

const wait = 20 * time.Second

// lostAfter is the test nodes' Config.LostAfter: above the longest pause
// a running node has on a loaded 2-core machine under the race detector,
// so that no running node is declared lost (which reports its sends lost
// although it delivers them), and above the time a node takes to restart.
const lostAfter = time.Second

// natsServer starts an embedded server on a random localhost port.
func natsServer(t testing.TB) string {
	t.Helper()
	return startServer(t, &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
}

// startServer starts an embedded server with opts and shuts it down when
// the test ends.
func startServer(t testing.TB, opts *server.Options) string {
	t.Helper()
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(wait) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}

type member struct {
	node   *cluster.Node
	e      *engine.Engine
	events chan cluster.Event
}

// startNodes starts one engine and node per name on url, with reg
// registering the types, and waits until every node sees all of them.
func startNodes(t *testing.T, url string, names []string, reg func(name string, e *engine.Engine)) []*member {
	t.Helper()
	return startNodesWith(t, url, names, reg, nil, nil)
}

// startNodesWith is startNodes with setup called on each node before it
// joins.
func startNodesWith(t *testing.T, url string, names []string, reg func(name string, e *engine.Engine),
	conf func(name string, c *cluster.Config), setup func(name string, n *cluster.Node)) []*member {
	t.Helper()
	var ms []*member
	for _, name := range names {
		ms = append(ms, startNode(t, url, name, reg, conf, setup))
	}
	for _, m := range ms {
		waitMembers(t, m, len(names))
	}
	return ms
}

// waitMembers waits for m's events until it sees want members.
func waitMembers(t *testing.T, m *member, want int) cluster.Event {
	t.Helper()
	deadline := time.After(wait)
	if len(m.node.Members()) == want {
		return cluster.Event{Members: m.node.Members()}
	}
	for {
		select {
		case ev := <-m.events:
			if len(ev.Members) == want {
				return ev
			}
		case <-deadline:
			t.Fatalf("%s sees %v, want %d members", m.node.Name(), m.node.Members(), want)
		}
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

type fn func(c *engine.Context, m engine.Message)

func (f fn) Receive(c *engine.Context, m engine.Message) { f(c, m) }

func register(t *testing.T, e *engine.Engine, typ string, f fn) {
	t.Helper()
	if err := e.Register(typ, func() engine.Agent { return f }); err != nil {
		t.Fatal(err)
	}
}

var three = []string{"n1", "n2", "n3"}

// keyOn returns a key of typ owned by node in members.
func keyOn(members []string, typ, node string) string {
	for i := 0; ; i++ {
		k := "k" + strconv.Itoa(i)
		if cluster.OwnerOf(members, engine.AgentID{Type: typ, Key: k}) == node {
			return k
		}
	}
}

// TestPlacementMovesOnlyTheLeaversAgents: when one of N members leaves,
// the agents that move are exactly those it owned, about 1/N of them.
func TestPlacementMovesOnlyTheLeaversAgents(t *testing.T) {
	const ids = 20000
	for _, n := range []int{3, 5, 10} {
		members := make([]string, n)
		for i := range members {
			members[i] = "node-" + strconv.Itoa(i)
		}
		leaver := members[n/2]
		rest := append(append([]string{}, members[:n/2]...), members[n/2+1:]...)
		moved := 0
		for i := range ids {
			id := engine.AgentID{Type: "device", Key: "dev-" + strconv.Itoa(i)}
			before, after := cluster.OwnerOf(members, id), cluster.OwnerOf(rest, id)
			if before != after {
				moved++
				if before != leaver {
					t.Fatalf("N=%d: %v moved from %s, which stayed", n, id, before)
				}
			} else if before == leaver {
				t.Fatalf("N=%d: %v stayed on the leaver", n, id)
			}
		}
		frac := float64(moved) / ids
		t.Logf("N=%d: %.4f of agents moved (1/N = %.4f)", n, frac, 1/float64(n))
		if lo, hi := 0.85/float64(n), 1.15/float64(n); frac < lo || frac > hi {
			t.Fatalf("N=%d: %.4f moved, want about 1/N", n, frac)
		}
	}
}

type delivery struct {
	node, id, payload string
}

func TestSendIDAcrossNodesInOrderPerSender(t *testing.T) {
	url := natsServer(t)
	const perSender = 500
	got := make(chan delivery, 4*perSender)
	ms := startNodes(t, url, three, func(name string, e *engine.Engine) {
		register(t, e, "sink", func(c *engine.Context, m engine.Message) {
			got <- delivery{name, c.ID().Key, string(m.Payload)}
		})
		register(t, e, "prod", func(c *engine.Context, m engine.Message) {
			// Each producer sends perSender numbered messages to the sink.
			to := engine.AgentID{Type: "sink", Key: string(m.Payload)}
			for i := range perSender {
				if err := c.SendID(to, []byte(c.ID().Key+":"+strconv.Itoa(i))); err != nil {
					t.Errorf("SendID: %v", err)
				}
			}
		})
	})
	members := ms[0].node.Members()
	sink := keyOn(members, "sink", "n3")
	// Two producers on n1 and one on n2, all to the sink on n3.
	for i, on := range []int{0, 0, 1} {
		key := "p" + strconv.Itoa(i)
		for cluster.OwnerOf(members, engine.AgentID{Type: "prod", Key: key}) != members[on] {
			key += "x"
		}
		if err := ms[on].e.SendID(engine.AgentID{Type: "prod", Key: key}, []byte(sink)); err != nil {
			t.Fatal(err)
		}
	}
	next := map[string]int{}
	for range 3 * perSender {
		d := recv(t, got, "deliveries")
		if d.node != "n3" || d.id != sink {
			t.Fatalf("delivered on %s to %s, want n3 %s", d.node, d.id, sink)
		}
		from, seq, _ := strings.Cut(d.payload, ":")
		i, _ := strconv.Atoi(seq)
		if i != next[from] {
			t.Fatalf("from %s: got %d, want %d: out of order", from, i, next[from])
		}
		next[from]++
	}
	if len(next) != 3 {
		t.Fatalf("senders seen: %v, want 3", next)
	}
}

func TestPublishFansOutAndTypeSubscriptionSpawnsOnOwner(t *testing.T) {
	url := natsServer(t)
	got := make(chan delivery, 16)
	ms := startNodes(t, url, three, func(name string, e *engine.Engine) {
		register(t, e, "listener", func(c *engine.Context, m engine.Message) {
			if m.Topic == "" {
				if err := c.Subscribe("alerts.>"); err != nil {
					t.Error(err)
				}
				got <- delivery{name, c.ID().Key, "subscribed"}
				return
			}
			got <- delivery{name, c.ID().Key, m.Topic}
		})
		register(t, e, "device", func(c *engine.Context, m engine.Message) {
			got <- delivery{name, c.ID().Type + "/" + c.ID().Key, m.Topic}
		})
		if err := e.SubscribeType("alerts.*", "device"); err != nil {
			t.Fatal(err)
		}
	})
	members := ms[0].node.Members()
	for i, m := range ms { // one listener on each node
		k := keyOn(members, "listener", members[i])
		if err := m.e.SendID(engine.AgentID{Type: "listener", Key: k}, nil); err != nil {
			t.Fatal(err)
		}
		recv(t, got, "subscribe")
	}
	dev := keyOn(members, "device", "n2")
	if err := ms[0].e.Publish("alerts."+dev, []byte("hot")); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for range 4 {
		d := recv(t, got, "publish")
		if d.payload != "alerts."+dev {
			t.Fatalf("got %+v", d)
		}
		if strings.HasPrefix(d.id, "device/") {
			if d.node != "n2" || d.id != "device/"+dev {
				t.Fatalf("type subscription fed %s on %s, want its owner n2", d.id, d.node)
			}
			seen["device"]++
			continue
		}
		seen[d.node]++
	}
	if seen["n1"] != 1 || seen["n2"] != 1 || seen["n3"] != 1 || seen["device"] != 1 {
		t.Fatalf("deliveries %v, want one per node's listener and one device", seen)
	}
}

func TestRequestsAcrossNodes(t *testing.T) {
	url := natsServer(t)
	ms := startNodes(t, url, three, func(name string, e *engine.Engine) {
		register(t, e, "echo", func(c *engine.Context, m engine.Message) {
			switch string(m.Payload) {
			case "silent":
				return
			case "hold": // answered only once the test is over
				h, err := c.ReplyLater()
				if err != nil {
					t.Error(err)
					return
				}
				held <- h
				return
			case "who":
				from, ok := c.RemoteSender()
				_ = c.Reply([]byte(fmt.Sprint(from, ok)))
				return
			case "ask":
				to := engine.AgentID{Type: "echo", Key: keyOn(three, "echo", "n3")}
				_ = c.RequestID(to, []byte("who"), wait, func(c *engine.Context, reply []byte, err error) {
					askReply <- string(reply) + "|" + fmt.Sprint(err)
				})
				_ = c.Reply([]byte("asked"))
				return
			}
			_ = c.Reply(append([]byte(name+":"), m.Payload...))
		})
	})
	members := ms[0].node.Members()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	k2 := keyOn(members, "echo", "n2")
	rep, err := ms[0].e.RequestID(ctx, engine.AgentID{Type: "echo", Key: k2}, []byte("q"))
	if err != nil || string(rep) != "n2:q" {
		t.Fatalf("RequestID = %q, %v; want n2:q", rep, err)
	}
	_, err = ms[0].e.RequestID(ctx, engine.AgentID{Type: "echo", Key: k2}, []byte("silent"))
	if !errors.Is(err, engine.ErrNoReply) {
		t.Fatalf("silent remote handler: %v, want ErrNoReply", err)
	}
	_, err = ms[0].e.RequestID(ctx, engine.AgentID{Type: "nosuch", Key: keyOn(members, "nosuch", "n3")}, nil)
	if !errors.Is(err, engine.ErrUnknownType) {
		t.Fatalf("unregistered type on the owner: %v, want ErrUnknownType", err)
	}
	// A request whose handler holds it past the requester's deadline
	// times out as on one node: ErrTimeout and DeadlineExceeded.
	holdErr := make(chan error, 1)
	short, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	hold := engine.AgentID{Type: "echo", Key: keyOn(members, "echo", "n3")}
	go func() {
		_, err := ms[0].e.RequestID(short, hold, []byte("hold"))
		holdErr <- err
	}()
	h := recv(t, held, "held request on n3")
	err = recv(t, holdErr, "short request's outcome")
	if !errors.Is(err, engine.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request held past its deadline: %v, want ErrTimeout and DeadlineExceeded", err)
	}
	_ = h.Reply([]byte("late")) // the requester has given up: it hears nothing
	// A handler's request: RemoteSender names it on the owner.
	k1 := keyOn(members, "echo", "n1")
	if rep, err := ms[0].e.RequestID(ctx, engine.AgentID{Type: "echo", Key: k1}, []byte("ask")); err != nil || string(rep) != "asked" {
		t.Fatalf("ask: %q %v", rep, err)
	}
	if r := recv(t, askReply, "callback"); r != fmt.Sprint(engine.AgentID{Type: "echo", Key: k1}, true)+"|<nil>" {
		t.Fatalf("callback got %q", r)
	}
}

var (
	askReply = make(chan string, 1)
	held     = make(chan engine.ReplyHandle, 1)
)

// TestOwnerLostFailsRequestsAndAgentsAreRecreated: a node that stops
// heartbeating is declared lost; a request waiting on it fails with
// ErrOwnerLost, and its keys are owned, and spawned, elsewhere after.
func TestOwnerLostFailsRequestsAndAgentsAreRecreated(t *testing.T) {
	url := natsServer(t)
	var mu sync.Mutex
	var handles []engine.ReplyHandle
	spawned := make(chan delivery, 8)
	ms := startNodes(t, url, three, func(name string, e *engine.Engine) {
		register(t, e, "dev", func(c *engine.Context, m engine.Message) {
			if m.IsRequest() {
				h, _ := c.ReplyLater() // never answered: the owner dies first
				mu.Lock()
				handles = append(handles, h)
				mu.Unlock()
				spawned <- delivery{name, c.ID().Key, "request"}
				return
			}
			spawned <- delivery{name, c.ID().Key, string(m.Payload)}
		})
	})
	members := ms[0].node.Members()
	k := keyOn(members, "dev", "n3")
	errc := make(chan error, 1)
	go func() {
		_, err := ms[0].e.RequestID(context.Background(), engine.AgentID{Type: "dev", Key: k}, nil)
		errc <- err
	}()
	if d := recv(t, spawned, "request on n3"); d.node != "n3" {
		t.Fatalf("request handled on %s", d.node)
	}
	ms[2].node.Close() // no leave: a crash as the others see it
	ev := waitMembers(t, ms[0], 2)
	if ev.Kind != cluster.MemberLost || ev.Node != "n3" {
		t.Fatalf("event %+v, want n3 lost", ev)
	}
	if err := recv(t, errc, "request outcome"); !errors.Is(err, cluster.ErrOwnerLost) {
		t.Fatalf("request to the lost node: %v, want ErrOwnerLost", err)
	}
	waitMembers(t, ms[1], 2)
	if err := ms[0].e.SendID(engine.AgentID{Type: "dev", Key: k}, []byte("again")); err != nil {
		t.Fatal(err)
	}
	d := recv(t, spawned, "re-created agent")
	want := cluster.OwnerOf([]string{"n1", "n2"}, engine.AgentID{Type: "dev", Key: k})
	if d.node != want || d.payload != "again" {
		t.Fatalf("re-created on %s with %q, want %s", d.node, d.payload, want)
	}
}

// TestCorruptFrameDroppedAndCounted: a frame that fails its checksum, or
// is of frame version 1, is dropped and counted, and the good frame after
// them is delivered.
func TestCorruptFrameDroppedAndCounted(t *testing.T) {
	url := natsServer(t)
	got := make(chan string, 4)
	ms := startNodes(t, url, three[:1], func(name string, e *engine.Engine) {
		register(t, e, "dev", func(c *engine.Context, m engine.Message) { got <- string(m.Payload) })
	})
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	good := cluster.Frame{Kind: cluster.KindSend, Node: "other", To: cluster.ID{Type: "dev", Key: "d"}, Payload: []byte("good")}
	b, _ := cluster.AppendFrame(nil, &good)
	bad := append([]byte{}, b...)
	bad[len(bad)-6] ^= 1 // a payload bit
	old := version1(t, cluster.Frame{Kind: cluster.KindSend, Node: "other", To: good.To, Payload: []byte("version 1")})
	for _, f := range [][]byte{bad, []byte("junk"), old, b} {
		if err := nc.Publish("agentloop.node.n1", f); err != nil {
			t.Fatal(err)
		}
	}
	if p := recv(t, got, "good frame"); p != "good" {
		t.Fatalf("delivered %q, want only the good frame", p)
	}
	// The agent may hear the good frame before the node counts it
	// delivered: wait for the count, then check it is exact.
	eventually(t, "the good frame counted delivered", func() bool { return ms[0].node.Stats().RemoteDelivered >= 1 })
	if s := ms[0].node.Stats(); s.Corrupt != 3 || s.RemoteDelivered != 1 {
		t.Fatalf("stats %+v, want 3 corrupt and 1 delivered", s)
	}
}

// TestHeartbeatCarriesFigures: what Config.Figures returns on one node is
// what the others see for it, bounded to [0, 1].
func TestHeartbeatCarriesFigures(t *testing.T) {
	url := natsServer(t)
	ev := make(chan cluster.Event, 16)
	var ms []*cluster.Node
	for i, name := range []string{"a", "b"} {
		n, err := cluster.New(cluster.Config{Name: name, URL: url, Heartbeat: 20 * time.Millisecond, LostAfter: time.Second,
			Figures: func() cluster.Figures {
				return cluster.Figures{CPUIdle: 0.25 * float64(i+1), MemFree: 2, NetFree: -1, Agents: uint32(i + 7)}
			},
			OnEvent: func(e cluster.Event) { ev <- e }})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := engine.New(engine.WithLoops(1), engine.WithCluster(n))
		_ = e.Start()
		if err := n.Join(e); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(); _ = e.Stop(context.Background()) })
		ms = append(ms, n)
	}
	recv(t, ev, "join")
	recv(t, ev, "join")
	got := ms[0].MemberFigures()["b"]
	if want := (cluster.Figures{CPUIdle: 0.5, MemFree: 1, NetFree: 0, Agents: 8}); got != want {
		t.Fatalf("a sees b's figures %+v, want %+v", got, want)
	}
}

// joined starts e, joins it to the cluster through n, and closes the node
// and stops the engine when the test ends.
func joined(t *testing.T, n *cluster.Node, e *engine.Engine, ev chan cluster.Event) *member {
	t.Helper()
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := n.Join(e); err != nil {
		t.Fatal(err)
	}
	m := &member{n, e, ev}
	t.Cleanup(func() {
		m.node.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = m.e.Stop(ctx)
	})
	return m
}

// startNode starts one node, called name, without waiting for its view:
// conf and setup may be nil.
func startNode(t *testing.T, url, name string, reg func(name string, e *engine.Engine),
	conf func(name string, c *cluster.Config), setup func(name string, n *cluster.Node)) *member {
	t.Helper()
	ev := make(chan cluster.Event, 64)
	cfg := cluster.Config{Name: name, URL: url, Heartbeat: 20 * time.Millisecond, LostAfter: lostAfter, Drain: wait,
		OnEvent: func(e cluster.Event) { ev <- e }}
	if conf != nil {
		conf(name, &cfg)
	}
	n, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.WithLoops(2), engine.WithCluster(n))
	if err != nil {
		t.Fatal(err)
	}
	reg(name, e)
	if setup != nil {
		setup(name, n)
	}
	return joined(t, n, e, ev)
}
