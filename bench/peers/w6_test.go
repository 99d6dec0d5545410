package peers

import (
	"strconv"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/agentloop/agentloop/engine"
)

// W6: publish to 100 subscribers. A publisher actor, on a trigger,
// publishes a batch of 64 messages on one topic; each of 100 subscriber
// actors receives every message and signals when it has the batch.
//
//   - agentloop: Context.Publish on an exact topic, the publisher and its
//     subscribers on one loop (the in-loop delivery that W6's target in
//     bench/README.md is about).
//   - channels: the topic is a slice of the subscribers' channels.
//   - ants: the topic is a slice of the subscribers' mailboxes; ants has no
//     bus of its own.
//   - protoactor: the actor system's EventStream, with one subscription
//     per subscriber actor that forwards the event to it with Root.Send,
//     the way protoactor routes stream events into actors.

const (
	w6Subs  = 100
	w6Batch = 64
	w6Topic = "sensor.room1.temp"
)

var w6 = workload{
	name:    "W6",
	testN:   2 * w6Batch,
	metrics: []string{"ns/publish", "ns/delivery"},
	impls: []impl{
		{"impl=agentloop", w6Agentloop},
		{"impl=channels", w6Channels},
		{"impl=ants", w6Ants},
		{"impl=protoactor", w6Protoactor},
	},
}

func BenchmarkW6(b *testing.B) { w6.bench(b) }

// w6Counters counts what every subscriber received and marks a subscriber
// done on wg at the end of each batch. Subscriber i owns got[i] until wg's
// wait returns; each count has a cache line of its own, so that
// subscribers running on different cores do not slow each other down.
type w6Counters struct {
	got []w6Count
	wg  sync.WaitGroup
}

type w6Count struct {
	n int
	_ [56]byte
}

func (c *w6Counters) receive(i int) {
	if c.got[i].n++; c.got[i].n%w6Batch == 0 {
		c.wg.Done()
	}
}

// w6Run runs one batch to warm up, then ceil(n/64) batches, each started
// by trigger, and reports the time per publish and per delivery.
func w6Run(r *runner, c *w6Counters, trigger func() error) {
	round := func() {
		c.wg.Add(w6Subs)
		r.must(trigger())
		r.waitGroup(&c.wg)
	}
	round()
	rounds := (r.n + w6Batch - 1) / w6Batch
	r.start()
	for i := 0; i < rounds; i++ {
		round()
	}
	r.stop()
	total := 0
	for _, g := range c.got {
		total += g.n
	}
	pubs := rounds * w6Batch
	r.expect("deliveries", total, (pubs+w6Batch)*w6Subs)
	r.per(pubs, "ns/publish")
	r.per(pubs*w6Subs, "ns/delivery")
}

func newW6Counters() *w6Counters { return &w6Counters{got: make([]w6Count, w6Subs)} }

type w6Publisher struct{}

func (w6Publisher) Receive(c *engine.Context, _ engine.Message) {
	for i := 0; i < w6Batch; i++ {
		_ = c.Publish(w6Topic, payload)
	}
}

type w6Sub struct {
	c *w6Counters
	i int
}

func (s w6Sub) Receive(*engine.Context, engine.Message) { s.c.receive(s.i) }

func w6Agentloop(r *runner) {
	c := newW6Counters()
	e := r.newEngine()
	next := 0 // Spawn calls the factory before it returns
	r.must(e.Register("sub", func() engine.Agent {
		s := w6Sub{c: c, i: next}
		next++
		return s
	}))
	r.must(e.Register("pub", func() engine.Agent { return w6Publisher{} }))
	r.must(e.Start())
	for i := 0; i < w6Subs; i++ {
		id := engine.AgentID{Type: "sub", Key: strconv.Itoa(i)}
		_, err := e.Spawn(id, engine.OnLoop(0))
		r.must(err)
		r.must(e.SubscribeAgent(w6Topic, id))
	}
	pub, err := e.Spawn(engine.AgentID{Type: "pub", Key: "p"}, engine.OnLoop(0))
	r.must(err)
	w6Run(r, c, func() error { return pub.Send(nil) })
}

func w6Channels(r *runner) {
	c := newW6Counters()
	topic := make([]chan []byte, w6Subs)
	for i := range topic {
		s := spawnChanActor(w6Batch, func([]byte) { c.receive(i) })
		r.tb.Cleanup(s.stop)
		topic[i] = s.mailbox
	}
	pub := spawnChanActor(1, func(struct{}) {
		for j := 0; j < w6Batch; j++ {
			for _, ch := range topic {
				ch <- payload
			}
		}
	})
	r.tb.Cleanup(pub.stop)
	w6Run(r, c, func() error {
		pub.mailbox <- struct{}{}
		return nil
	})
}

func w6Ants(r *runner) {
	pool := r.newPool()
	c := newW6Counters()
	topic := make([]*antsActor[[]byte], w6Subs)
	for i := range topic {
		topic[i] = newAntsActor(pool, w6Batch, func([]byte) { c.receive(i) })
	}
	pub := newAntsActor(pool, 1, func(struct{}) {
		for j := 0; j < w6Batch; j++ {
			for _, s := range topic {
				_ = s.send(payload)
			}
		}
	})
	w6Run(r, c, func() error { return pub.send(struct{}{}) })
}

func w6Protoactor(r *runner) {
	sys := r.newSystem()
	c := newW6Counters()
	pids := make([]*actor.PID, 0, w6Subs+1)
	for i := 0; i < w6Subs; i++ {
		pid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().([]byte); ok {
				c.receive(i)
			}
		}))
		pids = append(pids, pid)
		sub := sys.EventStream.Subscribe(func(evt any) {
			if _, ok := evt.([]byte); ok {
				sys.Root.Send(pid, evt)
			}
		})
		r.tb.Cleanup(func() { sys.EventStream.Unsubscribe(sub) })
	}
	pub := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(trigger); ok {
			for j := 0; j < w6Batch; j++ {
				ctx.ActorSystem().EventStream.Publish(boxed)
			}
		}
	}))
	r.stopActors(sys, append(pids, pub)...)
	w6Run(r, c, func() error {
		sys.Root.Send(pub, trigger{})
		return nil
	})
}
