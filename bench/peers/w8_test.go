package peers

import (
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/agentloop/agentloop/engine"
)

// W8: spawn n idle actors, each under its own name, and report the time
// per spawn and the memory each idle actor keeps (live heap plus goroutine
// stacks, after a collection). The timed part ends when every actor is
// ready: for agentloop when a probe on each loop answers (every spawn
// before it has been initialised), for protoactor when every actor has
// handled Started; a channels actor's goroutine and an ants actor's
// mailbox exist once the call returns. Afterwards every actor gets one
// message and must handle it.
//
//   - channels: a goroutine and a channel of capacity 1 per actor (the
//     library's baseline); ants: a mailbox of capacity 1 per actor.
//   - protoactor: Root.SpawnNamed with default props.

var w8 = workload{
	name:    "W8",
	testN:   500,
	metrics: []string{"ns/spawn", "bytes/agent"},
	impls: []impl{
		{"impl=agentloop", w8Agentloop},
		{"impl=channels", w8Channels},
		{"impl=ants", w8Ants},
		{"impl=protoactor", w8Protoactor},
	},
}

func BenchmarkW8(b *testing.B) { w8.bench(b) }

func w8Keys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "dev-" + strconv.Itoa(i)
	}
	return keys
}

// w8Report reports the spawn time and memory per actor from the memory in
// use before the spawns, then sends one message to each actor through
// send and waits until got says every one was handled.
func w8Report(r *runner, before int64, got *w8Count, send func(i int)) {
	after := memInUse()
	r.per(r.n, "ns/spawn")
	r.metric(float64(after-before)/float64(r.n), "bytes/agent")
	got.wg.Add(r.n)
	for i := 0; i < r.n; i++ {
		send(i)
	}
	r.waitGroup(&got.wg)
	r.expect("messages handled", int(got.n.Load()), r.n)
}

// w8Count counts the messages the actors handled.
type w8Count struct {
	n  atomic.Int64
	wg sync.WaitGroup
}

func (c *w8Count) add() {
	c.n.Add(1)
	c.wg.Done()
}

type w8Idle struct{ got *w8Count }

func (a w8Idle) Receive(*engine.Context, engine.Message) { a.got.add() }

type w8Probe struct{ done chan struct{} }

func (p w8Probe) Receive(*engine.Context, engine.Message) { p.done <- struct{}{} }

func w8Agentloop(r *runner) {
	e := r.newEngine()
	var got w8Count
	done := make(chan struct{}, e.Loops())
	r.must(e.Register("idle", func() engine.Agent { return w8Idle{&got} }))
	r.must(e.Register("probe", func() engine.Agent { return w8Probe{done} }))
	r.must(e.Start())
	keys := w8Keys(r.n)
	refs := make([]engine.Ref, r.n)
	before := memInUse()
	r.start()
	for i := range refs {
		ref, err := e.Spawn(engine.AgentID{Type: "idle", Key: keys[i]})
		if err != nil {
			r.tb.Fatal(err)
		}
		refs[i] = ref
	}
	for l := 0; l < e.Loops(); l++ {
		ref, err := e.Spawn(engine.AgentID{Type: "probe", Key: strconv.Itoa(l)}, engine.OnLoop(l))
		r.must(err)
		r.must(ref.Send(nil))
	}
	for l := 0; l < e.Loops(); l++ {
		r.wait(done)
	}
	r.stop()
	w8Report(r, before, &got, func(i int) { r.must(refs[i].Send(payload)) })
	runtime.KeepAlive(keys)
}

func w8Channels(r *runner) {
	var (
		got    w8Count
		exited sync.WaitGroup
	)
	chans := make([]chan []byte, r.n)
	r.tb.Cleanup(func() {
		for _, ch := range chans {
			if ch != nil {
				close(ch)
			}
		}
		exited.Wait()
	})
	before := memInUse()
	r.start()
	for i := range chans {
		ch := make(chan []byte, 1)
		chans[i] = ch
		exited.Add(1)
		go func() {
			defer exited.Done()
			for range ch {
				got.add()
			}
		}()
	}
	r.stop()
	w8Report(r, before, &got, func(i int) { chans[i] <- payload })
}

func w8Ants(r *runner) {
	pool := r.newPool()
	var got w8Count
	receive := func([]byte) { got.add() }
	actors := make([]*antsActor[[]byte], r.n)
	before := memInUse()
	r.start()
	for i := range actors {
		actors[i] = newAntsActor(pool, 1, receive)
	}
	r.stop()
	w8Report(r, before, &got, func(i int) { r.must(actors[i].send(payload)) })
}

func w8Protoactor(r *runner) {
	sys := r.newSystem()
	var (
		got     w8Count
		started sync.WaitGroup
	)
	props := actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			started.Done()
		case []byte:
			got.add()
		}
	})
	keys := w8Keys(r.n)
	pids := make([]*actor.PID, r.n)
	before := memInUse()
	r.start()
	started.Add(r.n)
	for i := range pids {
		pid, err := sys.Root.SpawnNamed(props, keys[i])
		if err != nil {
			r.tb.Fatal(err)
		}
		pids[i] = pid
	}
	r.waitGroup(&started)
	r.stop()
	r.stopActors(sys, pids...)
	w8Report(r, before, &got, func(i int) { sys.Root.Send(pids[i], boxed) })
	runtime.KeepAlive(keys)
}
