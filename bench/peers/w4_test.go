package peers

import (
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/asynkron/protoactor-go/actor"

	"github.com/agentloop/agentloop/engine"
)

// W4: ping-pong. A pinger and a ponger exchange n round trips; the pinger
// times every 8th for the latency percentiles. agentloop puts them on
// different loops; the channels version is two goroutines and two
// unbuffered channels (the library's baseline); protoactor's ping is a
// Request and its pong a Respond, its way of sending with a sender.

var w4 = workload{
	name:    "W4",
	testN:   1000,
	metrics: []string{"ns/rt", "p50-µs", "p99-µs"},
	impls: []impl{
		{"impl=agentloop", w4Agentloop},
		{"impl=channels", w4Channels},
		{"impl=ants", w4Ants},
		{"impl=protoactor", w4Protoactor},
	},
}

func BenchmarkW4(b *testing.B) { w4.bench(b) }

// pinger counts round trips and samples their latency; ping starts the
// next one, and done is closed after the last. Its fields belong to the
// pinger's actor until done is closed.
type pinger struct {
	left, count int
	t0          time.Time
	hist        *hdrhistogram.Histogram
	done        chan struct{}
}

func newPinger(n int) *pinger {
	return &pinger{left: n, hist: newHistogram(), done: make(chan struct{})}
}

// pong records a round trip and reports whether another should start.
func (p *pinger) pong() bool {
	if p.count&7 == 0 {
		_ = p.hist.RecordValue(int64(time.Since(p.t0)))
	}
	p.count++
	if p.left--; p.left == 0 {
		close(p.done)
		return false
	}
	return true
}

// ping stamps the round trip that is about to start, if it is sampled.
func (p *pinger) ping() {
	if p.count&7 == 0 {
		p.t0 = time.Now()
	}
}

func (r *runner) reportRoundTrips(p *pinger) {
	r.expect("round trips", p.count, r.n)
	r.per(r.n, "ns/rt")
	r.latency(p.hist)
}

type w4Pinger struct {
	*pinger
	peer engine.Ref
}

func (p *w4Pinger) Receive(c *engine.Context, m engine.Message) {
	if !m.Sender.IsZero() && !p.pong() {
		return
	}
	p.ping()
	_ = c.Send(p.peer, payload)
}

type w4Ponger struct{}

func (w4Ponger) Receive(c *engine.Context, m engine.Message) { _ = c.Send(m.Sender, m.Payload) }

func w4Agentloop(r *runner) {
	e := r.newEngine()
	p := &w4Pinger{pinger: newPinger(r.n)}
	r.must(e.Register("pong", func() engine.Agent { return w4Ponger{} }))
	r.must(e.Register("ping", func() engine.Agent { return p }))
	r.must(e.Start())
	var err error
	p.peer, err = e.Spawn(engine.AgentID{Type: "pong", Key: "1"}, engine.OnLoop(1))
	r.must(err)
	ping, err := e.Spawn(engine.AgentID{Type: "ping", Key: "1"}, engine.OnLoop(0))
	r.must(err)
	r.start()
	r.must(ping.Send(nil))
	r.wait(p.done)
	r.stop()
	r.reportRoundTrips(p.pinger)
}

func w4Channels(r *runner) {
	p := newPinger(r.n)
	pong := make(chan []byte)
	ponger := spawnChanActor(0, func(m []byte) { pong <- m })
	r.tb.Cleanup(ponger.stop)
	r.start()
	for {
		p.ping()
		ponger.mailbox <- payload
		<-pong
		if !p.pong() {
			break
		}
	}
	r.stop()
	r.reportRoundTrips(p)
}

func w4Ants(r *runner) {
	pool := r.newPool()
	p := newPinger(r.n)
	var ponger *antsActor[[]byte]
	pingerActor := newAntsActor(pool, 1, func(m []byte) {
		if m != nil && !p.pong() {
			return
		}
		p.ping()
		_ = ponger.send(payload)
	})
	ponger = newAntsActor(pool, 1, func(m []byte) { _ = pingerActor.send(m) })
	r.start()
	r.must(pingerActor.send(nil))
	r.wait(p.done)
	r.stop()
	r.reportRoundTrips(p)
}

func w4Protoactor(r *runner) {
	sys := r.newSystem()
	p := newPinger(r.n)
	ponger := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().([]byte); ok {
			c.Respond(m)
		}
	}))
	pingerPID := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case []byte:
			if !p.pong() {
				return
			}
		case trigger:
		default:
			return
		}
		p.ping()
		c.Request(ponger, boxed)
	}))
	r.stopActors(sys, pingerPID, ponger)
	r.start()
	sys.Root.Send(pingerPID, trigger{})
	r.wait(p.done)
	r.stop()
	r.reportRoundTrips(p)
}
