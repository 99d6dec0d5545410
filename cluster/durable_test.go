package cluster_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentloop/agentloop/cluster"
	"github.com/agentloop/agentloop/engine"
)

// jetStreamServer starts an embedded server with JetStream, its files
// under a test directory.
func jetStreamServer(t testing.TB) string {
	t.Helper()
	return startServer(t, &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
}

// streamMsgs returns how many messages the stream holds.
func streamMsgs(t *testing.T, url, stream string) uint64 {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestJetStreamSendsWaitForTheirOwnersRestart: with Config.JetStream, the
// sends to a crashed node's agents are accepted (SendID returns nil once
// the stream has them), are not re-homed while it is down, and reach their
// agents once it is back under its name: each exactly once, in order per
// sender; every sender's sends end confirmed.
func TestJetStreamSendsWaitForTheirOwnersRestart(t *testing.T) {
	url := jetStreamServer(t)
	got := make(chan delivery, 4096)
	reg := func(name string, e *engine.Engine) {
		register(t, e, "box", func(c *engine.Context, m engine.Message) {
			got <- delivery{name, c.ID().Key, string(m.Payload)}
		})
	}
	durable := func(_ string, c *cluster.Config) { c.JetStream = true }
	ms := startNodesWith(t, url, three, reg, durable, nil)
	members := ms[0].node.Members()
	keys := []string{keyOn(members, "box", "n2")}
	for i := 0; len(keys) < 2; i++ { // a second agent on n2
		k := "b" + strconv.Itoa(i)
		if cluster.OwnerOf(members, engine.AgentID{Type: "box", Key: k}) == "n2" {
			keys = append(keys, k)
		}
	}
	senders := []*member{ms[0], ms[2]}
	next := map[string]int{} // sender/key -> next number
	base := 0                // the number of the next send of each sender to each key
	send := func(count int) int {
		t.Helper()
		sent := 0
		defer func() { base += count }()
		for i := base; i < base+count; i++ {
			for si, s := range senders {
				for _, k := range keys {
					p := "s" + strconv.Itoa(si) + ":" + strconv.Itoa(i)
					if err := s.e.SendID(engine.AgentID{Type: "box", Key: k}, []byte(p)); err != nil {
						t.Fatalf("SendID: %v", err)
					}
					sent++
				}
			}
		}
		return sent
	}
	check := func(d delivery) {
		t.Helper()
		if d.node != "n2" {
			t.Fatalf("%s delivered on %s, want n2", d.id, d.node)
		}
		from, seq, _ := strings.Cut(d.payload, ":")
		i, _ := strconv.Atoi(seq)
		if k := from + "/" + d.id; i != next[k] {
			t.Fatalf("%s: got %d, want %d: out of order or twice", k, i, next[k])
		}
		next[from+"/"+d.id]++
	}

	// Before the crash: delivered and confirmed as without the option.
	n := send(10)
	for range n {
		check(recv(t, got, "deliveries before the crash"))
	}
	for _, s := range senders {
		eventually(t, "confirmations", func() bool { st := s.node.Stats(); return st.InFlight == 0 && st.Confirmed == st.Sent })
	}

	// n2 crashes; its agents' sends are queued in the stream.
	ms[1].node.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := ms[1].e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	queued := send(20) // before n2 is declared lost
	waitMembers(t, ms[0], 2)
	waitMembers(t, ms[2], 2)
	queued += send(180) // after
	for _, s := range senders {
		for _, k := range keys {
			if o := s.node.Owner(engine.AgentID{Type: "box", Key: k}); o != "n2" {
				t.Fatalf("%s: %s re-homed to %s while n2 is down", s.node.Name(), k, o)
			}
		}
		if st := s.node.Stats(); st.Lost != 0 || st.InFlight != uint64(queued/len(senders)) {
			t.Fatalf("%s while n2 is down: %+v, want %d in flight and none lost", s.node.Name(), st, queued/len(senders))
		}
	}
	if m := streamMsgs(t, url, "AGENTLOOP_SENDS"); m != uint64(queued) {
		t.Fatalf("stream holds %d messages, want %d", m, queued)
	}
	select {
	case d := <-got:
		t.Fatalf("delivered while its owner is down: %+v", d)
	default:
	}
	if _, err := ms[0].e.RequestID(ctx, engine.AgentID{Type: "box", Key: keys[0]}, nil); !errors.Is(err, cluster.ErrOwnerLost) {
		t.Fatalf("request to an agent of a node that is down: %v, want ErrOwnerLost", err)
	}

	// n2 comes back under its name: every accepted send reaches its agent.
	restarted := restartNode(t, url, "n2", reg, durable)
	for range queued {
		check(recv(t, got, "deliveries after the restart"))
	}
	waitMembers(t, restarted, 3)
	for _, s := range senders {
		eventually(t, "confirmations after the restart", func() bool {
			st := s.node.Stats()
			return st.InFlight == 0 && st.Confirmed == st.Sent && st.Lost == 0
		})
	}
	eventually(t, "an empty stream", func() bool { return streamMsgs(t, url, "AGENTLOOP_SENDS") == 0 })
	if err := restarted.e.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		t.Fatalf("delivered twice: %+v", d)
	default:
	}
	for k, c := range next {
		if c != 210 {
			t.Fatalf("%s: %d delivered, want 210", k, c)
		}
	}
}

// restartNode starts a node called name again, without waiting for its
// view (the others' heartbeats may come before or after its first
// deliveries).
func restartNode(t *testing.T, url, name string, reg func(string, *engine.Engine), conf func(string, *cluster.Config)) *member {
	t.Helper()
	return startNode(t, url, name, reg, conf, nil)
}

// gatedCounter is a counter whose first message waits for gate.
type gatedCounter struct {
	counter
	once         *sync.Once
	gate, inGate chan struct{}
}

func (g *gatedCounter) Receive(c *engine.Context, m engine.Message) {
	g.once.Do(func() { close(g.inGate); <-g.gate })
	g.counter.Receive(c, m)
}

// TestJetStreamLeaveTakesTheStreamBeforeItsSnapshot: a leaving node takes
// what its subject of the stream still holds into its agents before it
// snapshots them, so that the new owner restores them with every send.
func TestJetStreamLeaveTakesTheStreamBeforeItsSnapshot(t *testing.T) {
	url := jetStreamServer(t)
	errs := make(chan error, 16)
	gate, inGate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var closeGate sync.Once
	open := func() { closeGate.Do(func() { close(gate) }) }
	ms := startNodesWith(t, url, three[:2], func(name string, e *engine.Engine) {
		if err := e.Register("ctr", func() engine.Agent {
			return &gatedCounter{counter: counter{errs: errs}, once: &once, gate: gate, inGate: inGate}
		}, engine.Mailbox(2, engine.Block)); err != nil {
			t.Fatal(err)
		}
	}, func(_ string, c *cluster.Config) { c.JetStream, c.BlockFor = true, wait }, nil)
	t.Cleanup(open)
	id := engine.AgentID{Type: "ctr", Key: keyOn(three[:2], "ctr", "n2")}
	const sends = 20
	for i := 1; i <= sends; i++ {
		if err := ms[0].e.SendID(id, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	// n2's agent holds 1, its mailbox 2 and 3, its consumer waits with 4
	// for room: the rest is in the stream.
	recv(t, inGate, "the gated counter")
	left := make(chan error, 1)
	go func() { left <- ms[1].node.Leave() }()
	waitMembers(t, ms[0], 1)
	open()
	if err := recv(t, left, "the leave"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	rep, err := ms[0].e.RequestID(ctx, id, nil)
	if err != nil || string(rep) != strconv.Itoa(sends) {
		t.Fatalf("%s counted %q (%v) on the new owner, want %d", id, rep, err, sends)
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if st := ms[0].node.Stats(); st.Confirmed != sends || st.Lost+st.Nacked+st.Dropped+st.InFlight != 0 {
		t.Fatalf("n1's sends: %+v, want every one confirmed", st)
	}
}

func TestJetStreamBadStreamNameIsInvalidConfig(t *testing.T) {
	for _, s := range []string{"a.b", "a b", "a*", "a>"} {
		_, err := cluster.New(cluster.Config{Name: "n1", JetStream: true, Stream: s})
		if !errors.Is(err, cluster.ErrInvalidConfig) || !strings.Contains(err.Error(), strconv.Quote(s)) {
			t.Errorf("stream %q: %v, want ErrInvalidConfig naming it", s, err)
		}
	}
	if _, err := cluster.New(cluster.Config{Name: "n1", JetStream: true, Prefix: "my.app"}); err != nil {
		t.Errorf("a dotted prefix: %v, want its default stream name valid", err)
	}
}
