package peers

import (
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/agentloop/agentloop/engine"
)

// W9: spawn/terminate churn. One cycle spawns an actor under a name, sends
// it one message, and the actor handles it and terminates itself. Cycles
// run in windows of 256; after each window the benchmark waits until all
// of its actors have terminated, so finished actors can be recycled and
// memory stays bounded. The two window's worth of names are used in turn.
//
//   - agentloop: Context.Terminate from the handler; OnTerminate marks the
//     end. impl=agentloop registers the type with engine.Pooled(), as
//     the W9 target of bench/README.md does, and its agents implement Reset;
//     impl=agentloop-unpooled registers it without Pooled.
//   - channels: a goroutine that handles one message and returns; there is
//     no name registry, so nothing to register or remove.
//   - ants: an ants actor with a mailbox of 1 that handles one message;
//     it holds nothing that needs releasing, so terminating it is dropping
//     it.
//   - protoactor: Root.SpawnNamed, Context.Stop(Self()) from the handler,
//     and Stopped marks the end.

const w9Window = 256

var w9 = workload{
	name:    "W9",
	testN:   3 * w9Window,
	metrics: []string{"ns/cycle"},
	impls: []impl{
		{"impl=agentloop", func(r *runner) { w9Agentloop(r, true) }},
		{"impl=agentloop-unpooled", func(r *runner) { w9Agentloop(r, false) }},
		{"impl=channels", w9Channels},
		{"impl=ants", w9Ants},
		{"impl=protoactor", w9Protoactor},
	},
}

func BenchmarkW9(b *testing.B) { w9.bench(b) }

// w9Churn counts handled messages and, on done, terminated actors.
type w9Churn struct {
	handled atomic.Int64
	done    sync.WaitGroup
}

// w9Run runs n cycles through cycle, which gets the name to use, in
// windows, and checks that every actor handled its message.
func w9Run(r *runner, c *w9Churn, cycle func(key string)) {
	var keys [2][w9Window]string
	for s := range keys {
		for i := range keys[s] {
			keys[s][i] = "c" + strconv.Itoa(s) + "-" + strconv.Itoa(i)
		}
	}
	r.start()
	for i := 0; i < r.n; {
		w := min(w9Window, r.n-i)
		c.done.Add(w)
		set := &keys[(i/w9Window)&1]
		for j := 0; j < w; j++ {
			cycle(set[j])
		}
		r.waitGroup(&c.done)
		i += w
	}
	r.stop()
	r.expect("messages handled", int(c.handled.Load()), r.n)
	r.per(r.n, "ns/cycle")
}

type w9Agent struct{ c *w9Churn }

func (a *w9Agent) Receive(c *engine.Context, _ engine.Message) {
	a.c.handled.Add(1)
	c.Terminate()
}

func (a *w9Agent) OnTerminate(*engine.Context) { a.c.done.Done() }

// Reset lets a pooled type reuse the agent value itself (without it the
// engine asks the factory for a new one): the agent keeps nothing from
// one incarnation to the next.
func (a *w9Agent) Reset() {}

func w9Agentloop(r *runner, pooled bool) {
	e := r.newEngine()
	c := &w9Churn{}
	var opts []engine.RegisterOption
	if pooled {
		opts = append(opts, engine.Pooled())
	}
	r.must(e.Register("churn", func() engine.Agent { return &w9Agent{c} }, opts...))
	r.must(e.Start())
	w9Run(r, c, func(key string) {
		for {
			ref, err := e.Spawn(engine.AgentID{Type: "churn", Key: key})
			if errors.Is(err, engine.ErrAgentExists) {
				// The name's previous actor, two windows back, has run
				// OnTerminate but not yet left the registry.
				runtime.Gosched()
				continue
			}
			if err != nil {
				panic(err)
			}
			if err := ref.Send(payload); err != nil {
				panic(err)
			}
			return
		}
	})
}

func w9Channels(r *runner) {
	c := &w9Churn{}
	w9Run(r, c, func(string) {
		ch := make(chan []byte, 1)
		go func() {
			<-ch
			c.handled.Add(1)
			c.done.Done()
		}()
		ch <- payload
	})
}

func w9Ants(r *runner) {
	pool := r.newPool()
	c := &w9Churn{}
	receive := func([]byte) {
		c.handled.Add(1)
		c.done.Done()
	}
	w9Run(r, c, func(string) {
		if err := newAntsActor(pool, 1, receive).send(payload); err != nil {
			panic(err)
		}
	})
}

func w9Protoactor(r *runner) {
	sys := r.newSystem()
	c := &w9Churn{}
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case []byte:
			c.handled.Add(1)
			ctx.Stop(ctx.Self())
		case *actor.Stopped:
			c.done.Done()
		}
	})
	w9Run(r, c, func(key string) {
		for {
			pid, err := sys.Root.SpawnNamed(props, key)
			if errors.Is(err, actor.ErrNameExists) {
				runtime.Gosched()
				continue
			}
			if err != nil {
				panic(err)
			}
			sys.Root.Send(pid, boxed)
			return
		}
	})
}
