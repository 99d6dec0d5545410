package peers

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/agentloop/agentloop/engine"
)

// W1: in-system send. Actor A, on a trigger from the benchmark, sends a
// burst of 1024 messages to actor B; B signals when the burst is in. For
// agentloop both agents are on one loop.

const w1Burst = 1024

var w1 = workload{
	name:    "W1",
	testN:   4 * w1Burst,
	metrics: []string{"msgs/s", "ns/msg"},
	impls: []impl{
		{"impl=agentloop", w1Agentloop},
		{"impl=channels", w1Channels},
		{"impl=ants", w1Ants},
		{"impl=protoactor", w1Protoactor},
	},
}

func BenchmarkW1(b *testing.B) { w1.bench(b) }

func w1Bursts(n int) int { return (n + w1Burst - 1) / w1Burst }

type w1Sender struct{ to *engine.Ref }

func (s *w1Sender) Receive(c *engine.Context, _ engine.Message) {
	for i := 0; i < w1Burst; i++ {
		_ = c.Send(*s.to, payload)
	}
}

// w1Counter counts a burst and signals its end; total is read only after
// a signal.
type w1Counter struct {
	n, total int
	done     chan struct{}
}

func (w *w1Counter) count() {
	w.total++
	if w.n++; w.n == w1Burst {
		w.n = 0
		w.done <- struct{}{}
	}
}

func (w *w1Counter) Receive(*engine.Context, engine.Message) { w.count() }

func w1Agentloop(r *runner) {
	e := r.newEngine()
	recv := &w1Counter{done: make(chan struct{}, 1)}
	var to engine.Ref
	r.must(e.Register("recv", func() engine.Agent { return recv }))
	r.must(e.Register("send", func() engine.Agent { return &w1Sender{to: &to} }))
	r.must(e.Start())
	var err error
	to, err = e.Spawn(engine.AgentID{Type: "recv", Key: "b"}, engine.OnLoop(0))
	r.must(err)
	from, err := e.Spawn(engine.AgentID{Type: "send", Key: "a"}, engine.OnLoop(0))
	r.must(err)
	bursts := w1Bursts(r.n)
	r.start()
	for i := 0; i < bursts; i++ {
		r.must(from.Send(nil))
		r.wait(recv.done)
	}
	r.stop()
	r.expect("delivered", recv.total, bursts*w1Burst)
	r.rate(bursts * w1Burst)
}

func w1Channels(r *runner) {
	recv := &w1Counter{done: make(chan struct{}, 1)}
	b := spawnChanActor(w1Burst, func([]byte) { recv.count() })
	r.tb.Cleanup(b.stop)
	a := spawnChanActor(1, func(struct{}) {
		for i := 0; i < w1Burst; i++ {
			b.mailbox <- payload
		}
	})
	r.tb.Cleanup(a.stop) // before b.stop: cleanups run last-in first-out
	bursts := w1Bursts(r.n)
	r.start()
	for i := 0; i < bursts; i++ {
		a.mailbox <- struct{}{}
		r.wait(recv.done)
	}
	r.stop()
	r.expect("delivered", recv.total, bursts*w1Burst)
	r.rate(bursts * w1Burst)
}

func w1Ants(r *runner) {
	pool := r.newPool()
	recv := &w1Counter{done: make(chan struct{}, 1)}
	b := newAntsActor(pool, w1Burst, func([]byte) { recv.count() })
	a := newAntsActor(pool, 1, func(struct{}) {
		for i := 0; i < w1Burst; i++ {
			_ = b.send(payload)
		}
	})
	bursts := w1Bursts(r.n)
	r.start()
	for i := 0; i < bursts; i++ {
		r.must(a.send(struct{}{}))
		r.wait(recv.done)
	}
	r.stop()
	r.expect("delivered", recv.total, bursts*w1Burst)
	r.rate(bursts * w1Burst)
}

// trigger is the message that starts a round in the protoactor actors.
type trigger struct{}

func w1Protoactor(r *runner) {
	sys := r.newSystem()
	recv := &w1Counter{done: make(chan struct{}, 1)}
	b := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().([]byte); ok {
			recv.count()
		}
	}))
	a := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(trigger); ok {
			for i := 0; i < w1Burst; i++ {
				c.Send(b, boxed)
			}
		}
	}))
	r.stopActors(sys, a, b)
	bursts := w1Bursts(r.n)
	r.start()
	for i := 0; i < bursts; i++ {
		sys.Root.Send(a, trigger{})
		r.wait(recv.done)
	}
	r.stop()
	r.expect("delivered", recv.total, bursts*w1Burst)
	r.rate(bursts * w1Burst)
}
