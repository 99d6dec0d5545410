package cluster_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentloop/agentloop/cluster"
	"github.com/agentloop/agentloop/engine"
)

// counter counts the numbered messages it gets, checking that they arrive
// in order, and keeps its count across a handoff (SaveState/LoadState).
type counter struct {
	n    uint64
	errs chan<- error
}

func (c *counter) Receive(ctx *engine.Context, m engine.Message) {
	if m.IsRequest() {
		_ = ctx.Reply(strconv.AppendUint(nil, c.n, 10))
		return
	}
	i, _ := strconv.ParseUint(string(m.Payload), 10, 64)
	if i != c.n+1 {
		select {
		case c.errs <- fmt.Errorf("%s: message %d after %d", ctx.ID(), i, c.n):
		default:
		}
	}
	c.n = i
}

func (c *counter) SaveState() ([]byte, uint32, error) {
	return binary.BigEndian.AppendUint64(nil, c.n), 1, nil
}

func (c *counter) LoadState(b []byte, _ uint32) error {
	if len(b) != 8 {
		return errors.New("bad counter state")
	}
	c.n = binary.BigEndian.Uint64(b)
	return nil
}

// eventually waits, checking cond between waits, until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(wait)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestGracefulLeaveHandsOffState: a node leaves while its engine is still
// busy; the sends to its agents made meanwhile are held by their new
// owners until the handoff, and the agents arrive with their state: no
// message is lost or reordered, and every send is confirmed.
func TestGracefulLeaveHandsOffState(t *testing.T) { gracefulLeave(t, natsServer(t), nil) }

// TestJetStreamGracefulLeaveHandsOffState: with Config.JetStream, what
// was routed to the leaver through the stream reaches its agents before
// their snapshot: nothing is lost across the leave either.
func TestJetStreamGracefulLeaveHandsOffState(t *testing.T) {
	gracefulLeave(t, jetStreamServer(t), func(_ string, c *cluster.Config) { c.JetStream = true })
}

func gracefulLeave(t *testing.T, url string, conf func(string, *cluster.Config)) {
	errs := make(chan error, 16)
	gate, inGate := make(chan struct{}), make(chan struct{})
	ms := startNodesWith(t, url, three, func(name string, e *engine.Engine) {
		if err := e.Register("ctr", func() engine.Agent { return &counter{errs: errs} }); err != nil {
			t.Fatal(err)
		}
		register(t, e, "gate", func(c *engine.Context, m engine.Message) {
			close(inGate)
			<-gate // holds the leaver's engine busy: no handoff yet
		})
	}, conf, nil)
	const keys, per = 60, 30
	id := func(k int) engine.AgentID { return engine.AgentID{Type: "ctr", Key: "c" + strconv.Itoa(k)} }
	onN3 := 0
	for k := range keys {
		if cluster.OwnerOf(three, id(k)) == "n3" {
			onN3++
		}
	}
	if onN3 == 0 || onN3 == keys {
		t.Fatalf("%d of %d keys on n3: pick other keys", onN3, keys)
	}
	send := func(from, to int) {
		for i := from; i <= to; i++ {
			for k := range keys {
				if err := ms[0].e.SendID(id(k), []byte(strconv.Itoa(i))); err != nil {
					t.Fatalf("SendID: %v", err)
				}
			}
		}
	}
	send(1, per/2)
	if err := ms[0].e.SendID(engine.AgentID{Type: "gate", Key: keyOn(three, "gate", "n3")}, nil); err != nil {
		t.Fatal(err)
	}
	recv(t, inGate, "the gate on n3")
	left := make(chan error, 1)
	go func() { left <- ms[2].node.Leave() }()
	waitMembers(t, ms[0], 2)
	waitMembers(t, ms[1], 2)
	send(per/2+1, per) // to the new owners, before the handoff
	close(gate)
	if err := recv(t, left, "the leave"); err != nil {
		t.Fatal(err)
	}
	if conf != nil {
		// Through the stream, sends can be overtaken by a request, which
		// does not go through it: wait until the owners took them all.
		eventually(t, "n1's sends confirmed", func() bool { return ms[0].node.Stats().InFlight == 0 })
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for k := range keys {
		rep, err := ms[0].e.RequestID(ctx, id(k), nil)
		if err != nil || string(rep) != strconv.Itoa(per) {
			t.Fatalf("%s counted %q (%v), want %d: messages lost across the leave", id(k), rep, err, per)
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if got := ms[2].node.Stats().HandedOff; got != uint64(onN3) {
		t.Errorf("n3 handed off %d agents, want %d", got, onN3)
	}
	if got := ms[0].node.Stats().HandoffRestored + ms[1].node.Stats().HandoffRestored; got != uint64(onN3) {
		t.Errorf("n1 and n2 restored %d agents, want %d", got, onN3)
	}
	eventually(t, "n1's sends confirmed", func() bool { return ms[0].node.Stats().InFlight == 0 })
	if st := ms[0].node.Stats(); st.Confirmed != st.Sent || st.Lost+st.Nacked+st.Dropped != 0 {
		t.Fatalf("n1's sends: %+v, want every one confirmed", st)
	}
}

// TestCrashAccountsForEverySend: two nodes send while the third crashes;
// every accepted send is either delivered or reported as a dead letter,
// exactly once, and the counters add up cluster-wide.
func TestCrashAccountsForEverySend(t *testing.T) {
	url := natsServer(t)
	var mu sync.Mutex
	handled := map[string]map[string]int{} // node -> payload -> times
	dead := map[string]error{}
	var dupDead atomic.Int32
	ms := startNodesWith(t, url, three, func(name string, e *engine.Engine) {
		handled[name] = map[string]int{}
		register(t, e, "sink", func(c *engine.Context, m engine.Message) {
			mu.Lock()
			handled[name][string(m.Payload)]++
			mu.Unlock()
		})
	}, nil, func(name string, n *cluster.Node) {
		n.OnDeadLetter(func(d cluster.DeadLetter) {
			mu.Lock()
			defer mu.Unlock()
			if _, dup := dead[string(d.Payload)]; dup {
				dupDead.Add(1)
			}
			dead[string(d.Payload)] = d.Reason
		})
	})
	const keys = 50
	crashed := make(chan struct{})
	var half sync.WaitGroup
	half.Add(2)
	accepted := make([][]string, 2)
	var wg sync.WaitGroup
	for s := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := ms[s]
			i := 0
			sendOne := func() {
				p := m.node.Name() + ":" + strconv.Itoa(i)
				if err := m.e.SendID(engine.AgentID{Type: "sink", Key: "s" + strconv.Itoa(i%keys)}, []byte(p)); err == nil {
					accepted[s] = append(accepted[s], p)
				}
				i++
			}
			for range 500 {
				sendOne()
			}
			half.Done()
			<-crashed
			for len(m.node.Members()) == 3 { // until this node sees the loss
				sendOne()
			}
			for range 500 {
				sendOne()
			}
		}()
	}
	half.Wait()
	ms[2].node.Close() // a crash: no leave
	close(crashed)
	wg.Wait()
	for _, m := range ms[:2] {
		eventually(t, m.node.Name()+"'s sends settled", func() bool { return m.node.Stats().InFlight == 0 })
	}
	if err := ms[0].e.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ms[1].e.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var sum cluster.Stats
	for _, m := range ms[:2] {
		st := m.node.Stats()
		if st.Sent != st.Confirmed+st.Nacked+st.Lost+st.Dropped {
			t.Fatalf("%s: %+v does not add up", m.node.Name(), st)
		}
		sum.Sent += st.Sent
		sum.Confirmed += st.Confirmed
		sum.Lost += st.Lost
		sum.Nacked += st.Nacked + st.Dropped
	}
	total, local := 0, 0
	for s, ps := range accepted {
		total += len(ps)
		for _, p := range ps {
			h := handled["n1"][p] + handled["n2"][p] + handled["n3"][p]
			_, isDead := dead[p]
			onSurvivor := handled["n1"][p] + handled["n2"][p]
			switch {
			case h > 1:
				t.Fatalf("%s delivered %d times", p, h)
			case isDead && onSurvivor > 0:
				t.Fatalf("%s both delivered on a survivor and dead-lettered", p)
			case h == 0 && !isDead:
				t.Fatalf("%s accepted, then neither delivered nor dead-lettered", p)
			}
			if handled[ms[s].node.Name()][p] == 1 {
				local++
			}
		}
	}
	if dupDead.Load() != 0 {
		t.Fatalf("%d sends dead-lettered twice", dupDead.Load())
	}
	for p, err := range dead {
		if !errors.Is(err, cluster.ErrOwnerLost) {
			t.Fatalf("dead letter %s: %v, want ErrOwnerLost", p, err)
		}
	}
	t.Logf("accepted %d: %d delivered on the sending node, %d confirmed by another, %d dead-lettered (lost with n3)", total, local, sum.Confirmed, len(dead))
	if uint64(len(dead)) != sum.Lost || sum.Nacked != 0 {
		t.Fatalf("%d dead letters, counters say %d lost and %d refused", len(dead), sum.Lost, sum.Nacked)
	}
	if uint64(total) != uint64(local)+sum.Confirmed+sum.Lost {
		t.Fatalf("accepted %d != %d local + %d confirmed + %d lost", total, local, sum.Confirmed, sum.Lost)
	}
	if sum.Lost == 0 {
		t.Fatal("nothing was in flight to n3 when it crashed: the test did not test")
	}
}

// TestLeaveFailsRequestsWaitingOnTheLeaver: a request the leaver holds
// unanswered fails on the requester's node with ErrOwnerLost when that
// node hears of the leave.
func TestLeaveFailsRequestsWaitingOnTheLeaver(t *testing.T) {
	url := natsServer(t)
	holding := make(chan engine.ReplyHandle, 1)
	ms := startNodes(t, url, three, func(name string, e *engine.Engine) {
		register(t, e, "slowpoke", func(c *engine.Context, m engine.Message) {
			h, err := c.ReplyLater()
			if err != nil {
				t.Error(err)
				return
			}
			holding <- h // never answered before the leave
		})
	})
	errc := make(chan error, 1)
	go func() {
		_, err := ms[0].e.RequestID(context.Background(), engine.AgentID{Type: "slowpoke", Key: keyOn(three, "slowpoke", "n3")}, nil)
		errc <- err
	}()
	recv(t, holding, "the request on n3")
	if err := ms[2].node.Leave(); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, errc, "the request's outcome"); !errors.Is(err, cluster.ErrOwnerLost) {
		t.Fatalf("request held by the leaver: %v, want ErrOwnerLost", err)
	}
}

// TestHandoffNeverArrivingReleasesHeldSends: a leaver that dies before
// its handoff (here a fake member that announces itself and leaves) does
// not hold its former agents' sends for ever: after 2 × Drain the new
// owner starts them without state and delivers what it held.
func TestHandoffNeverArrivingReleasesHeldSends(t *testing.T) {
	url := natsServer(t)
	got := make(chan string, 4)
	ms := startNodesWith(t, url, three[:1], func(name string, e *engine.Engine) {
		register(t, e, "dev", func(c *engine.Context, m engine.Message) { got <- string(m.Payload) })
	}, func(_ string, c *cluster.Config) { c.Drain = 20 * time.Millisecond }, nil)
	pub := fakeNode(t, url, "n3", 7)
	pub("agentloop.hb", cluster.Frame{Kind: cluster.KindHeartbeat, Payload: make([]byte, 32)})
	waitMembers(t, ms[0], 2)
	id := engine.AgentID{Type: "dev", Key: keyOn([]string{"n1", "n3"}, "dev", "n3")}
	pub("agentloop.node.n1", cluster.Frame{Kind: cluster.KindLeave})
	waitMembers(t, ms[0], 1)
	if err := ms[0].e.SendID(id, []byte("held")); err != nil { // held for the handoff
		t.Fatal(err)
	}
	if p := recv(t, got, "the held send, released"); p != "held" {
		t.Fatalf("delivered %q", p)
	}
	if st := ms[0].node.Stats(); st.HandoffRestored != 0 {
		t.Fatalf("restored %d agents from a handoff that never came", st.HandoffRestored)
	}
}

// TestBusyMemberSeesALeaveNotALoss: a member whose node subject is busy
// when a node leaves (here its OnEvent still handles an earlier leave)
// handles the leave frame late, after LostAfter; it still sees the node
// leave (MemberLeft), never lost, and so fails none of the sends it
// routed to the leaver.
func TestBusyMemberSeesALeaveNotALoss(t *testing.T) {
	url := natsServer(t)
	busy, inBusy := make(chan struct{}), make(chan struct{})
	var busyOnce sync.Once
	n1events := make(chan cluster.Event, 64)
	beats := make(chan time.Time, 1)
	conf := func(name string, c *cluster.Config) {
		if name != "n1" {
			return
		}
		ev := c.OnEvent
		c.OnEvent = func(e cluster.Event) {
			ev(e)
			n1events <- e
			if e.Kind == cluster.MemberLeft && e.Node == "n9" {
				busyOnce.Do(func() { close(inBusy); <-busy }) // n1's node subject waits
			}
		}
		c.Figures = func() cluster.Figures { // on n1's heartbeat goroutine, before its expiry check
			select {
			case beats <- time.Now():
			default:
			}
			return cluster.Figures{}
		}
	}
	var opened sync.Once
	open := func() { opened.Do(func() { close(busy) }) }
	t.Cleanup(open)
	ms := startNodesWith(t, url, three[:2], func(string, *engine.Engine) {}, conf, nil)

	// A fake member n9 joins and leaves n1 only: n1's OnEvent for it holds
	// n1's node subject.
	pub := fakeNode(t, url, "n9", 9)
	pub("agentloop.hb", cluster.Frame{Kind: cluster.KindHeartbeat, Payload: make([]byte, 32)})
	waitMembers(t, ms[0], 3)
	pub("agentloop.node.n1", cluster.Frame{Kind: cluster.KindLeave})
	recv(t, inBusy, "n1 busy with n9's leave")
	for { // n2 loses n9, which heartbeats no more
		if e := recv(t, ms[1].events, "n2 losing n9"); e.Kind == cluster.MemberLost && e.Node == "n9" {
			break
		}
	}
	for len(n1events) > 0 { // n1's events so far: n2 and n9 joining, n9 leaving
		<-n1events
	}

	started := time.Now()
	left := make(chan error, 1)
	go func() { left <- ms[1].node.Leave() }()
	// Until n1's heartbeat loop has checked for lost members twice after
	// n2 would have been lost, had it gone silent at its leave.
	for n := 0; n < 2; {
		if at := recv(t, beats, "n1's heartbeat"); at.Sub(started) > 2*lostAfter {
			n++
		}
	}
	open()
	if err := recv(t, left, "the leave"); err != nil {
		t.Fatal(err)
	}
	pub("agentloop.node.n1", cluster.Frame{Kind: cluster.KindHandoff, Seq: 1, Code: 1}) // n9's, empty
	for {
		e := recv(t, n1events, "n1's event for n2")
		if e.Node != "n2" {
			continue
		}
		if e.Kind != cluster.MemberLeft {
			t.Fatalf("n1 saw n2 %s, want left", e.Kind)
		}
		break
	}
}

// TestRejoinBeforeTheHandoffWaitsForIt: a node back under a leaver's name
// before the leaver's handoff reached a member is taken in by that member
// only after the handoff: the sends it made meanwhile to the leaver's
// agents are held and delivered, not routed to the newcomer and then
// reported lost when the leaver's handoff settles what was sent to that
// name.
func TestRejoinBeforeTheHandoffWaitsForIt(t *testing.T) {
	url := natsServer(t)
	got := make(chan string, 4)
	dead := make(chan cluster.DeadLetter, 4)
	ms := startNodesWith(t, url, three[:1], func(name string, e *engine.Engine) {
		register(t, e, "dev", func(c *engine.Context, m engine.Message) { got <- string(m.Payload) })
	}, nil, func(_ string, n *cluster.Node) { n.OnDeadLetter(func(d cluster.DeadLetter) { dead <- d }) })
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pub := func(subj, node string, inc uint32, f cluster.Frame) {
		f.Node, f.Inc = node, inc
		b, err := cluster.AppendFrame(nil, &f)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish(subj, b); err != nil {
			t.Fatal(err)
		}
	}
	hb := cluster.Frame{Kind: cluster.KindHeartbeat, Payload: make([]byte, 32)}
	pub("agentloop.hb", "n3", 7, hb)
	waitMembers(t, ms[0], 2)
	pub("agentloop.node.n1", "n3", 7, cluster.Frame{Kind: cluster.KindLeave})
	waitMembers(t, ms[0], 1)
	// n3 again, a new incarnation, then n8, on one connection: once n1 has
	// n8 it has had the new n3's heartbeat too.
	pub("agentloop.hb", "n3", 8, hb)
	pub("agentloop.hb", "n8", 9, hb)
	for {
		if e := recv(t, ms[0].events, "n8 joining n1"); e.Kind == cluster.MemberJoined && e.Node == "n8" {
			break
		}
	}
	id := engine.AgentID{Type: "dev", Key: keyOn([]string{"n1", "n3", "n8"}, "dev", "n3")}
	if err := ms[0].e.SendID(id, []byte("meanwhile")); err != nil {
		t.Fatal(err)
	}
	if st := ms[0].node.Stats(); st.Held != 1 {
		t.Fatalf("n1 holds %d sends for the handoff, want 1", st.Held)
	}
	pub("agentloop.node.n1", "n3", 7, cluster.Frame{Kind: cluster.KindHandoff, Seq: 1, Code: 1}) // the leaver's, empty
	select {
	case p := <-got:
		if p != "meanwhile" {
			t.Fatalf("delivered %q", p)
		}
	case d := <-dead:
		t.Fatalf("the send made before the leaver's handoff was dead-lettered: %v", d.Reason)
	case <-time.After(wait):
		t.Fatal("the send made before the leaver's handoff was not delivered")
	}
	eventually(t, "nothing held", func() bool { return ms[0].node.Stats().Held == 0 })
}

// fakeNode connects to url and returns a function that publishes frames
// as node name, incarnation inc, would: a member made of frames alone.
func fakeNode(t *testing.T, url, name string, inc uint32) func(subj string, f cluster.Frame) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return func(subj string, f cluster.Frame) {
		f.Node, f.Inc = name, inc
		b, err := cluster.AppendFrame(nil, &f)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish(subj, b); err != nil {
			t.Fatal(err)
		}
	}
}
