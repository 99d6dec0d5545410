package cluster_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/agentloop/agentloop/cluster"
	"github.com/agentloop/agentloop/engine"
)

// TestSendToALostIncarnationIsNotDeliveredByItsSuccessor: n2 crashes with
// a send from n1 on its way; n1 declares n2 lost and reports the send lost
// (a dead letter); n2 restarts under its name and the frame, addressed to
// the crashed incarnation, reaches the new one (NATS gave it late: the
// test replays it on n2's subject). The new incarnation must not deliver
// it: the send is counted once, lost, and never delivered as well.
func TestSendToALostIncarnationIsNotDeliveredByItsSuccessor(t *testing.T) {
	lateSendToEarlierIncarnation(t, true)
}

// TestSendToARestartedNodeIsSettledOnce: as above, but n1 hears of n2's
// new incarnation before it declares the crashed one lost, so the send is
// still in flight when the frame reaches the new incarnation: it is
// settled once, as lost, by whichever of the new incarnation's answers
// comes first (its nack of the frame, or its first acknowledgement, which
// says it never saw the send), and not delivered.
func TestSendToARestartedNodeIsSettledOnce(t *testing.T) {
	lateSendToEarlierIncarnation(t, false)
}

func lateSendToEarlierIncarnation(t *testing.T, declaredLost bool) {
	url := natsServer(t)
	raw, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	onN2 := make(chan *nats.Msg, 1024) // every frame sent on n2's subject
	sub, err := raw.ChanSubscribe("agentloop.node.n2", onN2)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}

	handled := map[string]chan string{"n1": make(chan string, 16), "n2": make(chan string, 16)} // the payloads each node's sinks handle
	reg := func(name string, e *engine.Engine) {
		register(t, e, "sink", func(c *engine.Context, m engine.Message) { handled[name] <- string(m.Payload) })
	}
	// No member is declared lost by the clock: the test declares it.
	conf := func(name string, c *cluster.Config) { c.LostAfter = 3 * wait }
	var mu sync.Mutex
	var dead []cluster.DeadLetter
	ms := startNodesWith(t, url, []string{"n1", "n2"}, reg, conf, func(name string, n *cluster.Node) {
		n.OnDeadLetter(func(d cluster.DeadLetter) {
			mu.Lock()
			dead = append(dead, d)
			mu.Unlock()
		})
	})
	n1 := ms[0]
	id := engine.AgentID{Type: "sink", Key: keyOn([]string{"n1", "n2"}, "sink", "n2")}

	ms[1].node.Close() // a crash: no leave
	if err := n1.e.SendID(id, []byte("to-the-crashed")); err != nil {
		t.Fatal(err)
	}
	if st := n1.node.Stats(); st.Sent != 1 {
		t.Fatalf("the send did not go to n2: %+v", st)
	}
	var frame []byte
	for frame == nil {
		m := recv(t, onN2, "n1's send on n2's subject")
		if f, err := cluster.DecodeFrame(m.Data); err == nil && f.Kind == cluster.KindSend && f.To.Type == "sink" {
			frame = m.Data
		}
	}

	if declaredLost {
		cluster.DeclareLost(n1.node, "n2")
		mu.Lock()
		if len(dead) != 1 || !errors.Is(dead[0].Reason, cluster.ErrOwnerLost) {
			t.Fatalf("dead letters after n2's loss: %+v, want the send, lost", dead)
		}
		mu.Unlock()
	}
	for len(n1.events) > 0 {
		<-n1.events
	}
	n2 := restartNode(t, url, "n2", reg, conf)
	for {
		ev := recv(t, n1.events, "n1 hearing of n2's new incarnation")
		if ev.Kind == cluster.MemberJoined && ev.Node == "n2" {
			break
		}
	}
	waitMembers(t, n2, 2)

	// The late frame, then a marker from the same connection: the new
	// incarnation handles them in that order, so once the marker reaches
	// the agent the late frame has been delivered or refused.
	marker := cluster.Frame{Kind: cluster.KindSend, Seq: 1, Inc: 7, Node: "tester", To: cluster.ID{Type: id.Type, Key: id.Key}, Payload: []byte("marker")}
	mb, err := cluster.AppendFrame(nil, &marker)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{frame, mb} {
		if err := raw.Publish("agentloop.node.n2", b); err != nil {
			t.Fatal(err)
		}
	}
	if p := recv(t, handled["n2"], "the marker"); p != "marker" {
		t.Fatalf("n2's new incarnation delivered %q, a send n1 addressed to the crashed one", p)
	}
	eventually(t, "n1's send settled", func() bool { return n1.node.Stats().InFlight == 0 })

	// What n2 answered n1 about the late frame is on n2's connection before
	// a send n2 makes now: once n1's agent has that send, n1 has handled
	// the answer.
	back := engine.AgentID{Type: "sink", Key: keyOn([]string{"n1", "n2"}, "sink", "n1")}
	if err := n2.e.SendID(back, []byte("back")); err != nil {
		t.Fatal(err)
	}
	if p := recv(t, handled["n1"], "n2's send to n1"); p != "back" {
		t.Fatalf("n1 handled %q, want n2's send", p)
	}
	eventually(t, "the marker counted delivered", func() bool { return n2.node.Stats().RemoteDelivered >= 1 })

	// n1's accounting: the one send is lost, once.
	st := n1.node.Stats()
	mu.Lock()
	defer mu.Unlock()
	if st.Sent != 1 || st.Lost != 1 || st.Confirmed+st.Nacked+st.Dropped != 0 || len(dead) != 1 || !errors.Is(dead[0].Reason, cluster.ErrOwnerLost) {
		t.Fatalf("n1: %+v, dead letters %+v; want 1 sent, lost, 1 dead letter (ErrOwnerLost)", st, dead)
	}
	if s := n2.node.Stats(); s.RemoteDelivered != 1 {
		t.Fatalf("n2: %d sends delivered, want only the marker", s.RemoteDelivered)
	}
}

// TestFramesToAnotherIncarnationAreRefused: a nack or a reply addressed to
// another incarnation of a node is dropped there (the right one after it
// is taken), and a request addressed to another incarnation is answered
// with ErrOwnerLost instead of reaching its agent.
func TestFramesToAnotherIncarnationAreRefused(t *testing.T) {
	url := natsServer(t)
	raw, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	hb := make(chan *nats.Msg, 1024)
	onN2 := make(chan *nats.Msg, 1024)
	for subj, ch := range map[string]chan *nats.Msg{"agentloop.hb": hb, "agentloop.node.n2": onN2} {
		if _, err := raw.ChanSubscribe(subj, ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	conf := func(name string, c *cluster.Config) { c.LostAfter = 3 * wait }
	dead := make(chan cluster.DeadLetter, 4)
	ms := startNodesWith(t, url, []string{"n1", "n2"}, func(name string, e *engine.Engine) {
		register(t, e, "echo", func(c *engine.Context, m engine.Message) { _ = c.Reply(m.Payload) })
	}, conf, func(name string, n *cluster.Node) {
		n.OnDeadLetter(func(d cluster.DeadLetter) { dead <- d })
	})
	n1 := ms[0]
	var inc uint32 // n1's
	for inc == 0 {
		if f, err := cluster.DecodeFrame(recv(t, hb, "n1's heartbeat").Data); err == nil && f.Node == "n1" {
			inc = f.Inc
		}
	}
	other := inc + 1
	if other == 0 {
		other = 1
	}
	ms[1].node.Close() // n2 answers nothing from now on: the test does

	onTwo := engine.AgentID{Type: "echo", Key: keyOn([]string{"n1", "n2"}, "echo", "n2")}
	if err := n1.e.SendID(onTwo, []byte("s")); err != nil {
		t.Fatal(err)
	}
	replied := make(chan string, 1)
	go func() {
		rep, err := n1.e.RequestID(context.Background(), onTwo, []byte("q"))
		replied <- fmt.Sprintf("%s %v", rep, err)
	}()
	var send, req *cluster.Frame
	for send == nil || req == nil {
		f, err := cluster.DecodeFrame(recv(t, onN2, "n1's frames to n2").Data)
		switch {
		case err != nil:
		case f.Kind == cluster.KindSend && f.To.Type == "echo":
			send = &f
		case f.Kind == cluster.KindRequest:
			req = &f
		}
	}
	pub := func(subj string, f cluster.Frame) {
		t.Helper()
		f.Node, f.Inc = "n2", send.ToInc
		b, err := cluster.AppendFrame(nil, &f)
		if err == nil {
			err = raw.Publish(subj, b)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	nack := func(text string) []byte {
		return append(binary.BigEndian.AppendUint64(nil, send.Seq), text...)
	}
	const ownerLost = 10 // ErrOwnerLost's code
	pub("agentloop.node.n1", cluster.Frame{Kind: cluster.KindNack, Code: ownerLost, Seq: send.Seq, ToInc: other, Payload: nack("to another incarnation")})
	pub("agentloop.node.n1", cluster.Frame{Kind: cluster.KindNack, Code: ownerLost, Seq: send.Seq, ToInc: inc, Payload: nack("to this one")})
	pub(req.Reply, cluster.Frame{Kind: cluster.KindReply, Seq: req.Seq, ToInc: other, Payload: []byte("to another incarnation")})
	pub(req.Reply, cluster.Frame{Kind: cluster.KindReply, Seq: req.Seq, ToInc: inc, Payload: []byte("to this one")})
	if d := recv(t, dead, "the nack's dead letter"); d.Reason.Error() != "to this one" || !errors.Is(d.Reason, cluster.ErrOwnerLost) {
		t.Fatalf("dead letter for %v, want the nack to this incarnation's", d.Reason)
	}
	if r := recv(t, replied, "the reply"); r != "to this one <nil>" {
		t.Fatalf("request answered %q, want the reply to this incarnation", r)
	}

	// A request to n1 addressed to another incarnation of n1 is refused;
	// the same to n1's own is answered by the agent.
	inbox := nats.NewInbox()
	answers, err := raw.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	onOne := cluster.ID{Type: "echo", Key: keyOn([]string{"n1", "n2"}, "echo", "n1")}
	for i, to := range []uint32{other, inc} {
		pub("agentloop.node.n1", cluster.Frame{Kind: cluster.KindRequest, Seq: uint64(i + 1), ToInc: to, To: onOne, Reply: inbox, Payload: []byte("ping")})
		m, err := answers.NextMsg(wait)
		if err != nil {
			t.Fatal(err)
		}
		f, err := cluster.DecodeFrame(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind != cluster.KindReply || f.Seq != uint64(i+1) || f.ToInc != send.ToInc {
			t.Fatalf("answer %+v: want a reply to request %d addressed to the requester's incarnation", f, i+1)
		}
		switch {
		case to == other && (f.Code != ownerLost || !strings.Contains(string(f.Payload), "owner node lost")):
			t.Fatalf("request to another incarnation answered %d %q, want ErrOwnerLost", f.Code, f.Payload)
		case to == inc && (f.Code != 0 || string(f.Payload) != "ping"):
			t.Fatalf("request to this incarnation answered %d %q, want the echo", f.Code, f.Payload)
		}
	}
}
