package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/agentloop/agentloop/lifecycle"
	"github.com/agentloop/agentloop/messaging"
)

// busRecorder keeps every message it receives, safe to read after Stop.
type busRecorder struct {
	mu   sync.Mutex
	msgs map[AgentID][]Message
}

func newBusRecorder() *busRecorder { return &busRecorder{msgs: make(map[AgentID][]Message)} }

func (r *busRecorder) factory() func() Agent {
	return func() Agent { return &busRecAgent{r: r} }
}

func (r *busRecorder) get(id AgentID) []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[id]
}

func (r *busRecorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		n += len(m)
	}
	return n
}

type busRecAgent struct{ r *busRecorder }

func (a *busRecAgent) Receive(c *Context, m Message) {
	a.r.mu.Lock()
	a.r.msgs[c.ID()] = append(a.r.msgs[c.ID()], m)
	a.r.mu.Unlock()
}

func newBusEngine(t *testing.T, opts ...Option) *Engine {
	t.Helper()
	e, err := New(append([]Option{WithLoops(2)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func stopBusEngine(t *testing.T, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPublishToAgentSubscribers(t *testing.T) {
	rec := newBusRecorder()
	e := newBusEngine(t)
	if err := e.Register("sub", rec.factory()); err != nil {
		t.Fatal(err)
	}
	ids := make([]AgentID, 10)
	for i := range ids {
		ids[i] = AgentID{"sub", fmt.Sprint(i)}
		if err := e.SubscribeAgent("alerts.>", ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.SubscribeAgent("alerts.fire", ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	payload := []byte("smoke")
	if err := e.Publish("alerts.fire", payload); err != nil {
		t.Fatal(err)
	}
	if err := e.Publish("alerts", payload); err != nil { // matches nothing
		t.Fatal(err)
	}
	stopBusEngine(t, e)
	for i, id := range ids {
		got := rec.get(id)
		want := 1
		if i == 0 {
			want = 2 // two matching subscriptions
		}
		if len(got) != want {
			t.Fatalf("%s got %d messages, want %d", id, len(got), want)
		}
		for _, m := range got {
			if m.Topic != "alerts.fire" || !m.Sender.IsZero() {
				t.Errorf("%s got topic %q sender %v", id, m.Topic, m.Sender.ID())
			}
			if unsafe.SliceData(m.Payload) != unsafe.SliceData(payload) {
				t.Errorf("%s got a copy of the payload", id)
			}
		}
	}
}

// TestPublishPostsOncePerLoop: a publish costs each loop with subscribers
// one inbox post, however many subscribers it has there. While a handler
// holds each loop nobody pops their inboxes, so LoopStats.Inbox grows by
// exactly the posts the publish made.
func TestPublishPostsOncePerLoop(t *testing.T) {
	rec := newBusRecorder()
	e := newBusEngine(t)
	if err := e.Register("sub", rec.factory()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		id := AgentID{"sub", fmt.Sprint(i)}
		if _, err := e.Spawn(id, OnLoop(i%2)); err != nil {
			t.Fatal(err)
		}
		if err := e.SubscribeAgent("t.*", id); err != nil {
			t.Fatal(err)
		}
	}
	gate, entered := make(chan struct{}), make(chan struct{}, 2)
	var release sync.Once
	defer release.Do(func() { close(gate) })
	if err := e.Register("hold", recvAgent(func(*Context, Message) {
		entered <- struct{}{}
		<-gate
	})); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	// Once idle, the loops have taken what was posted before Start, and
	// every post from here on goes through an inbox.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		r, err := e.Spawn(AgentID{"hold", fmt.Sprint(i)}, OnLoop(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Send(nil); err != nil {
			t.Fatal(err)
		}
		wait(t, entered, fmt.Sprintf("the handler holding loop %d", i))
	}
	before := e.Stats()
	if err := e.Publish("t.x", nil); err != nil {
		t.Fatal(err)
	}
	after := e.Stats()
	for i := range 2 {
		if d := after.Loops[i].Inbox - before.Loops[i].Inbox; d != 1 {
			t.Errorf("loop %d got %d inbox posts for one publish to its 25 subscribers, want 1", i, d)
		}
	}
	release.Do(func() { close(gate) })
	stopBusEngine(t, e)
	if n := rec.total(); n != 50 {
		t.Fatalf("delivered %d, want 50", n)
	}
}

func TestSubscribeTypeSpawnsByKey(t *testing.T) {
	cases := []struct {
		name    string
		pattern string
		opts    []SubscribeOption
		topic   string
		key     string
	}{
		{"star", "telemetry.*.temp", nil, "telemetry.dev-7.temp", "dev-7"},
		{"rest", "devices.>", nil, "devices.dev-7.temp", "dev-7.temp"},
		{"exact", "exact.topic", nil, "exact.topic", "exact.topic"},
		{"token", "telemetry.*.*", []SubscribeOption{KeyToken(2)}, "telemetry.dev-7.hum", "hum"},
		{"func", "x.>", []SubscribeOption{KeyFunc(func(string) (string, bool) { return "fixed", true })}, "x.y", "fixed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := newBusRecorder()
			e := newBusEngine(t)
			if err := e.Register("dev", rec.factory()); err != nil {
				t.Fatal(err)
			}
			if err := e.SubscribeType(c.pattern, "dev", c.opts...); err != nil {
				t.Fatal(err)
			}
			if err := e.Start(); err != nil {
				t.Fatal(err)
			}
			if err := e.Publish(c.topic, []byte("v")); err != nil {
				t.Fatal(err)
			}
			stopBusEngine(t, e)
			got := rec.get(AgentID{"dev", c.key})
			if len(got) != 1 || got[0].Topic != c.topic {
				t.Fatalf("instance %q got %v; all: %d", c.key, got, rec.total())
			}
		})
	}
}

func TestSubscribeTypeServesManyDevices(t *testing.T) {
	rec := newBusRecorder()
	e := newBusEngine(t)
	if err := e.Register("device", rec.factory()); err != nil {
		t.Fatal(err)
	}
	if err := e.SubscribeType("telemetry.*.temp", "device"); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	const devices, rounds = 1000, 3
	for r := 0; r < rounds; r++ {
		for d := 0; d < devices; d++ {
			if err := e.Publish(fmt.Sprintf("telemetry.dev-%d.temp", d), []byte{byte(r)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := e.Stats().Agents; n != devices {
		t.Errorf("agents = %d, want %d", n, devices)
	}
	stopBusEngine(t, e)
	for d := 0; d < devices; d++ {
		got := rec.get(AgentID{"device", fmt.Sprintf("dev-%d", d)})
		if len(got) != rounds {
			t.Fatalf("dev-%d got %d messages, want %d", d, len(got), rounds)
		}
		for r, m := range got {
			if m.Payload[0] != byte(r) {
				t.Fatalf("dev-%d got round %d at position %d", d, m.Payload[0], r)
			}
		}
	}
}

// orderer publishes and sends to its peer alternately; the peer must see
// every message in the order it was sent, whichever path it took.
type orderer struct {
	peer Ref
	n    int
}

func (o *orderer) Receive(c *Context, m Message) {
	for i := 0; i < o.n; i++ {
		p := []byte{byte(i >> 8), byte(i)}
		if i%2 == 0 {
			_ = c.Publish("order.x", p)
		} else {
			_ = c.Send(o.peer, p)
		}
	}
}

func TestContextPublishKeepsOrderWithSends(t *testing.T) {
	for _, sameLoop := range []bool{true, false} {
		t.Run(fmt.Sprintf("sameLoop=%v", sameLoop), func(t *testing.T) {
			rec := newBusRecorder()
			e := newBusEngine(t)
			const n = 2000
			var peer Ref
			if err := e.Register("peer", rec.factory()); err != nil {
				t.Fatal(err)
			}
			if err := e.Register("src", func() Agent { return &orderer{peer: peer, n: n} }); err != nil {
				t.Fatal(err)
			}
			peerLoop := 1
			if sameLoop {
				peerLoop = 0
			}
			var err error
			peerID := AgentID{"peer", "p"}
			if peer, err = e.Spawn(peerID, OnLoop(peerLoop)); err != nil {
				t.Fatal(err)
			}
			if err := e.SubscribeAgent("order.*", peerID); err != nil {
				t.Fatal(err)
			}
			src, err := e.Spawn(AgentID{"src", "s"}, OnLoop(0))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Start(); err != nil {
				t.Fatal(err)
			}
			if err := src.Send(nil); err != nil {
				t.Fatal(err)
			}
			stopBusEngine(t, e)
			got := rec.get(peerID)
			if len(got) != n {
				t.Fatalf("peer got %d, want %d", len(got), n)
			}
			for i, m := range got {
				if v := int(m.Payload[0])<<8 | int(m.Payload[1]); v != i {
					t.Fatalf("message %d is %d", i, v)
				}
				if wantTopic := i%2 == 0; (m.Topic != "") != wantTopic {
					t.Fatalf("message %d topic %q", i, m.Topic)
				}
				if m.Sender.ID() != (AgentID{"src", "s"}) {
					t.Fatalf("message %d sender %v", i, m.Sender.ID())
				}
			}
		})
	}
}

// selfSub subscribes itself in Init.
type selfSub struct{ rec *busRecorder }

func (s *selfSub) Init(c *Context) error { return c.Subscribe("self.>") }
func (s *selfSub) Receive(c *Context, m Message) {
	s.rec.mu.Lock()
	s.rec.msgs[c.ID()] = append(s.rec.msgs[c.ID()], m)
	s.rec.mu.Unlock()
	if string(m.Payload) == "quit" {
		c.Terminate()
	}
}

func TestSubscriptionsEndWithTheAgent(t *testing.T) {
	rec := newBusRecorder()
	e := newBusEngine(t)
	var dead busDeadLetters
	e.Use(&dead)
	if err := e.Register("s", func() Agent { return &selfSub{rec: rec} }); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	id := AgentID{"s", "1"}
	ref, err := e.Spawn(id)
	if err != nil {
		t.Fatal(err)
	}
	// A message through the agent's own inbox after its Init proves the
	// subscription is in place before we publish.
	done := make(chan struct{})
	e.Use(onTransition(func(got AgentID, to string) {
		if got == id && to == "Terminated" {
			close(done)
		}
	}))
	waitState(t, ref, lifecycle.Running)
	if err := e.Publish("self.a", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := e.Publish("self.b", []byte("quit")); err != nil {
		t.Fatal(err)
	}
	wait(t, done, "the agent's termination")
	// White-box on purpose: no API lists the bus's entries, and an entry
	// left behind for a terminated agent shows from outside only as memory
	// that is never freed (the dead letters it would cause are checked
	// below); this is the bus's own bookkeeping, checked on every loop.
	for i := range e.pubsub.perLoop {
		if n := e.pubsub.perLoop[i].Count() + e.pubsub.reserving[i].Count(); n != 0 {
			t.Errorf("loop %d: %d subscriptions left after termination", i, n)
		}
	}
	if err := e.Publish("self.c", []byte("late")); err != nil {
		t.Fatal(err)
	}
	stopBusEngine(t, e)
	if got := rec.get(id); len(got) != 2 {
		t.Fatalf("got %d messages, want 2", len(got))
	}
	if dead.n != 0 {
		t.Errorf("%d dead letters: a publish after termination must not reach the agent", dead.n)
	}
}

type busDeadLetters struct {
	mu sync.Mutex
	n  int
}

func (d *busDeadLetters) OnDeadLetter(DeadLetter) { d.mu.Lock(); d.n++; d.mu.Unlock() }

type onTransition func(id AgentID, to string)

func (f onTransition) OnTransition(id AgentID, _, to lifecycle.State) { f(id, to.String()) }

func TestPubSubBadInput(t *testing.T) {
	e := newBusEngine(t)
	defer stopBusEngine(t, e)
	if err := e.Register("t", newBusRecorder().factory()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want error
		text string
	}{
		{"bad topic", e.Publish("a..b", nil), messaging.ErrInvalidTopic, "a..b"},
		{"wildcard topic", e.Publish("a.*", nil), messaging.ErrInvalidTopic, "a.*"},
		{"bad pattern agent", e.SubscribeAgent("a.>.b", AgentID{"t", "1"}), messaging.ErrInvalidPattern, "a.>.b"},
		{"bad pattern type", e.SubscribeType("a*", "t"), messaging.ErrInvalidPattern, "a*"},
		{"unknown type", e.SubscribeType("a.*", "nope"), ErrUnknownType, "nope"},
		{"unknown agent type", e.SubscribeAgent("a.*", AgentID{"nope", "1"}), ErrUnknownType, "nope"},
		{"bad key option", e.SubscribeType("a.*", "t", KeyToken(-1)), ErrInvalidOption, "-1"},
		{"unsubscribe missing", e.UnsubscribeType("q.*", "t"), messaging.ErrNotFound, "q.*"},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
			continue
		}
		if !hasText(c.err.Error(), c.text) {
			t.Errorf("%s: %q does not name %q", c.name, c.err, c.text)
		}
	}
	if err := e.SubscribeType("dup.*", "t"); err != nil {
		t.Fatal(err)
	}
	if err := e.SubscribeType("dup.*", "t"); !errors.Is(err, ErrDuplicateSubscription) {
		t.Errorf("duplicate type subscription: %v", err)
	}
	if err := e.UnsubscribeType("dup.*", "t"); err != nil {
		t.Errorf("unsubscribe: %v", err)
	}
}

func hasText(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestToken(t *testing.T) {
	cases := []struct {
		topic string
		i     int
		rest  bool
		want  string
		ok    bool
	}{
		{"a.b.c", 0, false, "a", true},
		{"a.b.c", 1, false, "b", true},
		{"a.b.c", 2, false, "c", true},
		{"a.b.c", 3, false, "", false},
		{"a.b.c", 1, true, "b.c", true},
		{"a", 0, true, "a", true},
	}
	for _, c := range cases {
		got, ok := token(c.topic, c.i, c.rest)
		if got != c.want || ok != c.ok {
			t.Errorf("token(%q, %d, %v) = %q, %v; want %q, %v", c.topic, c.i, c.rest, got, ok, c.want, c.ok)
		}
	}
}
