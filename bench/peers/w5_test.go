package peers

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/agentloop/agentloop/engine"
)

// W5: request/response from outside. The benchmark goroutine sends n
// requests, one at a time, to an echo actor and waits for each reply;
// every 8th is timed for the latency percentiles. The channels and ants
// requests carry their own reply channel, as the library's baseline does.

var w5 = workload{
	name:    "W5",
	testN:   500,
	metrics: []string{"ns/rt", "p50-µs", "p99-µs"},
	impls: []impl{
		{"impl=agentloop", w5Agentloop},
		{"impl=channels", w5Channels},
		{"impl=ants", w5Ants},
		{"impl=protoactor", w5Protoactor},
	},
}

func BenchmarkW5(b *testing.B) { w5.bench(b) }

// requestTimeout bounds one request; none comes close.
const requestTimeout = 10 * time.Second

// w5Loop runs n requests through request, which returns the reply, and
// reports the round trip time and its percentiles.
func w5Loop(r *runner, request func() ([]byte, error)) {
	hist := newHistogram()
	replies := 0
	r.start()
	for i := 0; i < r.n; i++ {
		var t0 time.Time
		if i&7 == 0 {
			t0 = time.Now()
		}
		reply, err := request()
		if err != nil {
			r.tb.Fatal(err)
		}
		if len(reply) == len(payload) {
			replies++
		}
		if i&7 == 0 {
			_ = hist.RecordValue(int64(time.Since(t0)))
		}
	}
	r.stop()
	r.expect("replies", replies, r.n)
	r.per(r.n, "ns/rt")
	r.latency(hist)
}

type echo struct{}

func (echo) Receive(c *engine.Context, m engine.Message) { _ = c.Reply(m.Payload) }

func w5Agentloop(r *runner) {
	e := r.newEngine()
	r.must(e.Register("echo", func() engine.Agent { return echo{} }))
	r.must(e.Start())
	id := engine.AgentID{Type: "echo", Key: "1"}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	_, err := e.RequestID(ctx, id, payload) // spawns the echo agent
	r.must(err)
	w5Loop(r, func() ([]byte, error) { return e.RequestID(ctx, id, payload) })
}

type w5Request struct {
	p     []byte
	reply chan []byte
}

func w5Channels(r *runner) {
	a := spawnChanActor(0, func(q w5Request) { q.reply <- q.p })
	r.tb.Cleanup(a.stop)
	w5Loop(r, func() ([]byte, error) {
		q := w5Request{p: payload, reply: make(chan []byte, 1)}
		a.mailbox <- q
		return <-q.reply, nil
	})
}

func w5Ants(r *runner) {
	a := newAntsActor(r.newPool(), 1, func(q w5Request) { q.reply <- q.p })
	w5Loop(r, func() ([]byte, error) {
		q := w5Request{p: payload, reply: make(chan []byte, 1)}
		if err := a.send(q); err != nil {
			return nil, err
		}
		return <-q.reply, nil
	})
}

func w5Protoactor(r *runner) {
	sys := r.newSystem()
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().([]byte); ok {
			c.Respond(m)
		}
	}))
	r.stopActors(sys, pid)
	w5Loop(r, func() ([]byte, error) {
		res, err := sys.Root.RequestFuture(pid, boxed, requestTimeout).Result()
		reply, _ := res.([]byte)
		return reply, err
	})
}
