package peers

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/agentloop/agentloop/engine"
)

// W7: timers. An actor, on a trigger, schedules n timers of 10 s that
// would deliver the payload to itself and cancels each at once; the cost
// is per pair. Before that, each implementation delivers one short timer,
// so a broken timer path fails instead of measuring nothing.
//
//   - agentloop: Context.After and Timer.Stop.
//   - channels: time.AfterFunc with a function, made once, that sends to
//     the actor's channel, and Timer.Stop.
//   - protoactor: scheduler.TimerScheduler.SendOnce and its CancelFunc
//     (it wraps time.AfterFunc).
//   - ants has no timers: an actor on an ants pool would use
//     time.AfterFunc, which is the channels row, so W7 has no ants row.
//
// The burst half of W7 (100k timers due together) is in the library's
// suite only.

const (
	w7Delay = 10 * time.Second
	w7Short = time.Millisecond
)

var w7 = workload{
	name:    "W7",
	testN:   1000,
	metrics: []string{"ns/pair"},
	impls: []impl{
		{"impl=agentloop", w7Agentloop},
		{"impl=channels", w7Channels},
		{"impl=protoactor", w7Protoactor},
	},
}

func BenchmarkW7(b *testing.B) { w7.bench(b) }

// w7Result is what the timer actor reports when its round is done: how
// many short timers it received (one was armed) and how many of its
// cancellations stopped a pending timer, or -1 where cancelling does not
// tell.
type w7Result struct{ shots, stopped int }

// Payloads that tell the timer actors what to do.
var (
	w7ArmShort = []byte("arm")
	w7Fired    = []byte("!")
)

// w7Run has the actor arm a short timer through armShort and waits until
// it fired, then times one round of n pairs, started by pairs and reported
// on done.
func w7Run(r *runner, fired <-chan struct{}, armShort, pairs func(), done <-chan w7Result) {
	armShort()
	r.wait(fired)
	r.start()
	pairs()
	var res w7Result
	if r.b != nil {
		res = <-done
	} else {
		select {
		case res = <-done:
		case <-time.After(waitLimit):
			r.tb.Fatal("timed out waiting for the timers")
		}
	}
	r.stop()
	r.expect("short timers delivered", res.shots, 1)
	if res.stopped >= 0 {
		r.expect("timers stopped before firing", res.stopped, r.n)
	}
	r.per(r.n, "ns/pair")
}

type w7Agent struct {
	n     int
	shots int
	fired chan struct{}
	done  chan w7Result
}

func (a *w7Agent) Receive(c *engine.Context, m engine.Message) {
	switch len(m.Payload) {
	case 0:
		stopped := 0
		for i := 0; i < a.n; i++ {
			t, err := c.After(w7Delay, payload)
			if err != nil {
				panic(err)
			}
			if t.Stop() {
				stopped++
			}
		}
		a.done <- w7Result{a.shots, stopped}
	case len(w7ArmShort):
		if _, err := c.After(w7Short, w7Fired); err != nil {
			panic(err)
		}
	case len(w7Fired):
		if a.shots++; a.shots == 1 {
			close(a.fired)
		}
	}
}

func w7Agentloop(r *runner) {
	e := r.newEngine()
	a := &w7Agent{n: r.n, fired: make(chan struct{}), done: make(chan w7Result)}
	r.must(e.Register("timers", func() engine.Agent { return a }))
	r.must(e.Start())
	ref, err := e.Spawn(engine.AgentID{Type: "timers", Key: "1"})
	r.must(err)
	w7Run(r, a.fired,
		func() { r.must(ref.Send(w7ArmShort)) },
		func() { r.must(ref.Send(nil)) },
		a.done)
}

func w7Channels(r *runner) {
	fired := make(chan struct{})
	done := make(chan w7Result)
	var a *chanActor[[]byte]
	shots := 0
	deliver := func() { a.mailbox <- payload }
	a = spawnChanActor(1, func(m []byte) {
		switch len(m) {
		case 0:
			stopped := 0
			for i := 0; i < r.n; i++ {
				if time.AfterFunc(w7Delay, deliver).Stop() {
					stopped++
				}
			}
			done <- w7Result{shots, stopped}
		case len(w7ArmShort):
			time.AfterFunc(w7Short, func() { a.mailbox <- w7Fired })
		case len(w7Fired):
			if shots++; shots == 1 {
				close(fired)
			}
		}
	})
	r.tb.Cleanup(a.stop)
	w7Run(r, fired,
		func() { a.mailbox <- w7ArmShort },
		func() { a.mailbox <- nil },
		done)
}

func w7Protoactor(r *runner) {
	sys := r.newSystem()
	fired := make(chan struct{})
	done := make(chan w7Result)
	shots := 0
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case trigger:
			s := scheduler.NewTimerScheduler(c)
			for i := 0; i < r.n; i++ {
				cancel := s.SendOnce(w7Delay, c.Self(), boxed)
				cancel()
			}
			done <- w7Result{shots, -1} // a CancelFunc does not say whether it stopped anything
		case []byte:
			switch len(m) {
			case len(w7ArmShort):
				scheduler.NewTimerScheduler(c).SendOnce(w7Short, c.Self(), w7Fired)
			case len(w7Fired):
				if shots++; shots == 1 {
					close(fired)
				}
			}
		}
	}))
	r.stopActors(sys, pid)
	w7Run(r, fired,
		func() { sys.Root.Send(pid, w7ArmShort) },
		func() { sys.Root.Send(pid, trigger{}) },
		done)
}
