package peers

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/agentloop/agentloop/engine"
)

// W2: external send. The benchmark goroutine, outside any actor system,
// sends n messages to one actor, which counts them.

var w2 = workload{
	name:    "W2",
	testN:   5000,
	metrics: []string{"msgs/s", "ns/msg"},
	impls: []impl{
		{"impl=agentloop", w2Agentloop},
		{"impl=channels", w2Channels},
		{"impl=ants", w2Ants},
		{"impl=protoactor", w2Protoactor},
	},
}

func BenchmarkW2(b *testing.B) { w2.bench(b) }

// mailboxSize is the bound of the channel and ants mailboxes in the
// throughput workloads; agentloop's sinks use a larger Block mailbox, as
// in the library's own W2 and W3, and protoactor's mailbox is unbounded.
const mailboxSize = 1024

// sink counts messages and closes done when the count reaches target.
// count is read only after done is closed.
type sink struct {
	count, target int
	done          chan struct{}
}

func newSink(target int) *sink { return &sink{target: target, done: make(chan struct{})} }

func (s *sink) add() {
	if s.count++; s.count == s.target {
		close(s.done)
	}
}

func (s *sink) Receive(*engine.Context, engine.Message) { s.add() }

// agentloopSink spawns a sink agent with a Block mailbox.
func agentloopSink(r *runner, s *sink) engine.Ref {
	e := r.newEngine()
	r.must(e.Register("sink", func() engine.Agent { return s }, engine.Mailbox(1<<16, engine.Block)))
	r.must(e.Start())
	ref, err := e.Spawn(engine.AgentID{Type: "sink", Key: "1"})
	r.must(err)
	return ref
}

func w2Agentloop(r *runner) {
	s := newSink(r.n)
	ref := agentloopSink(r, s)
	r.start()
	for i := 0; i < r.n; i++ {
		if err := ref.Send(payload); err != nil {
			r.tb.Fatal(err)
		}
	}
	r.wait(s.done)
	r.stop()
	r.expect("delivered", s.count, r.n)
	r.rate(r.n)
}

func w2Channels(r *runner) {
	s := newSink(r.n)
	a := spawnChanActor(mailboxSize, func([]byte) { s.add() })
	r.tb.Cleanup(a.stop)
	r.start()
	for i := 0; i < r.n; i++ {
		a.mailbox <- payload
	}
	r.wait(s.done)
	r.stop()
	r.expect("delivered", s.count, r.n)
	r.rate(r.n)
}

func w2Ants(r *runner) {
	s := newSink(r.n)
	a := newAntsActor(r.newPool(), mailboxSize, func([]byte) { s.add() })
	r.start()
	for i := 0; i < r.n; i++ {
		if err := a.send(payload); err != nil {
			r.tb.Fatal(err)
		}
	}
	r.wait(s.done)
	r.stop()
	r.expect("delivered", s.count, r.n)
	r.rate(r.n)
}

// protoactorSink spawns an actor that adds every payload to s.
func protoactorSink(r *runner, s *sink) (*actor.ActorSystem, *actor.PID) {
	sys := r.newSystem()
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().([]byte); ok {
			s.add()
		}
	}))
	r.stopActors(sys, pid)
	return sys, pid
}

func w2Protoactor(r *runner) {
	s := newSink(r.n)
	sys, pid := protoactorSink(r, s)
	r.start()
	for i := 0; i < r.n; i++ {
		sys.Root.Send(pid, boxed)
	}
	r.wait(s.done)
	r.stop()
	r.expect("delivered", s.count, r.n)
	r.rate(r.n)
}
