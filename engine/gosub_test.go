package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/messaging"
	"github.com/agentloop/agentloop/pool"
)

// Tests of the engine's bus for Go subscribers (Engine.Bus), through the
// public API only. Every wait is on a channel, bounded by gosubTimeout,
// which only turns a hang into a failure.

const gosubTimeout = 10 * time.Second

// gosubOwner owns Go subscriptions. It holds a pointer and more than 16
// bytes, so the tiny allocator never batches it with a live object.
type gosubOwner struct {
	name string
	_    [4]int64
}

// gosubAgent is an agent made of a function.
type gosubAgent func(c *engine.Context, m engine.Message)

func (f gosubAgent) Receive(c *engine.Context, m engine.Message) { f(c, m) }

// gosubNew returns an engine that is stopped when the test ends.
func gosubNew(t *testing.T) *engine.Engine {
	t.Helper()
	e, err := engine.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gosubStop(t, e) })
	return e
}

func gosubStop(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gosubTimeout)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func gosubMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func gosubWait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(gosubTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// gosubCollect runs the collector until cond holds, or fails after a
// deadline, as messaging's weak-subscriber tests do.
func gosubCollect(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(gosubTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.GC()
		runtime.Gosched() // let the cleanup goroutines run
	}
}

// A Go subscriber hears Engine.Publish, Context.Publish and PublishBuffer
// on the topics its pattern matches, and only those; it is called before
// the Publish returns, with the publisher's payload itself.
func TestGoSubscriberHearsPublish(t *testing.T) {
	e := gosubNew(t)

	// relay publishes from its loop when told to, and reports how many
	// calls the Go handler had received by the time Context.Publish
	// returned.
	var calls atomic.Int64
	relayed := make(chan int64, 1)
	gosubMust(t, e.Register("relay", func() engine.Agent {
		return gosubAgent(func(c *engine.Context, _ engine.Message) {
			before := calls.Load()
			if err := c.Publish("sensor.loop.temp", []byte("from-loop")); err != nil {
				t.Errorf("Context.Publish: %v", err)
			}
			relayed <- calls.Load() - before
		})
	}))
	agentGot := make(chan string, 8)
	gosubMust(t, e.Register("sink", func() engine.Agent {
		return gosubAgent(func(_ *engine.Context, m engine.Message) { agentGot <- m.Topic })
	}))
	relay := engine.AgentID{Type: "relay", Key: "r"}
	sink := engine.AgentID{Type: "sink", Key: "s"}
	for _, id := range []engine.AgentID{relay, sink} {
		_, err := e.Spawn(id)
		gosubMust(t, err)
	}
	gosubMust(t, e.SubscribeAgent("cmd.relay", relay))
	gosubMust(t, e.SubscribeAgent("sensor.*.temp", sink))

	owner := &gosubOwner{name: "dashboard"}
	outside := []byte("outside")
	var (
		mu    sync.Mutex
		heard []string
		same  []bool // the payload was the publisher's slice, not a copy
	)
	fn, err := messaging.SubscribeWeak(e.Bus(), "sensor.*.temp", owner, func(_ *gosubOwner, topic string, p []byte) {
		mu.Lock()
		heard = append(heard, topic+" "+string(p))
		same = append(same, len(p) > 0 && len(outside) > 0 && &p[0] == &outside[0])
		mu.Unlock()
		calls.Add(1)
	})
	gosubMust(t, err)
	ch := make(chan messaging.Delivery, 16)
	_, err = messaging.SubscribeChan(e.Bus(), "sensor.>", owner, ch)
	gosubMust(t, err)
	var stray atomic.Int64
	_, err = messaging.SubscribeWeak(e.Bus(), "alerts.>", owner, func(*gosubOwner, string, []byte) { stray.Add(1) })
	gosubMust(t, err)
	gosubMust(t, e.Start())

	// From outside: heard on the caller's goroutine before Publish returns.
	gosubMust(t, e.Publish("sensor.out.temp", outside))
	if n := calls.Load(); n != 1 {
		t.Fatalf("after Engine.Publish returned the handler had run %d times, want 1", n)
	}
	gosubMust(t, e.Publish("sensor.out.hum", []byte("not *.temp")))
	// From a loop: heard before Context.Publish returns.
	gosubMust(t, e.Publish("cmd.relay", nil))
	if n := gosubWait(t, relayed, "the relay agent"); n != 1 {
		t.Fatalf("after Context.Publish returned the handler had run %d more times, want 1", n)
	}
	// A pooled payload is heard in place too.
	var buffers pool.Buffers
	b := buffers.Get(len("pooled"))
	copy(b.Bytes(), "pooled")
	gosubMust(t, e.PublishBuffer("sensor.buf.temp", b))

	mu.Lock()
	gotHeard, gotSame := slices.Clone(heard), slices.Clone(same)
	mu.Unlock()
	wantHeard := []string{"sensor.out.temp outside", "sensor.loop.temp from-loop", "sensor.buf.temp pooled"}
	if !slices.Equal(gotHeard, wantHeard) {
		t.Errorf("function subscriber heard %q, want %q", gotHeard, wantHeard)
	}
	if len(gotSame) == 0 || !gotSame[0] {
		t.Errorf("Engine.Publish's payload reached the handler copied (%v), want the publisher's slice", gotSame)
	}
	var chanHeard []string
	for len(ch) > 0 {
		d := <-ch
		chanHeard = append(chanHeard, d.Topic+" "+string(d.Payload))
	}
	wantChan := []string{"sensor.out.temp outside", "sensor.out.hum not *.temp", "sensor.loop.temp from-loop", "sensor.buf.temp pooled"}
	if !slices.Equal(chanHeard, wantChan) {
		t.Errorf("channel subscriber heard %q, want %q", chanHeard, wantChan)
	}
	if n := stray.Load(); n != 0 {
		t.Errorf("the alerts.> subscriber heard %d messages, want 0", n)
	}
	// The agents got theirs as before.
	var agentHeard []string
	for range 3 {
		agentHeard = append(agentHeard, gosubWait(t, agentGot, "the sink agent"))
	}
	slices.Sort(agentHeard)
	if want := []string{"sensor.buf.temp", "sensor.loop.temp", "sensor.out.temp"}; !slices.Equal(agentHeard, want) {
		t.Errorf("sink agent got %q, want %q", agentHeard, want)
	}

	// Unsubscribe ends a subscription at once.
	gosubMust(t, fn.Unsubscribe())
	gosubMust(t, e.Publish("sensor.late.temp", outside))
	if n := calls.Load(); n != 3 {
		t.Errorf("handler ran %d times after Unsubscribe, want 3 still", n)
	}
	runtime.KeepAlive(owner)
}

// A Go subscription whose owner is garbage-collected ends by itself: the
// engine's bus does not keep its owner alive.
func TestGoSubscriberOwnerCollected(t *testing.T) {
	e := gosubNew(t)
	gosubMust(t, e.Start())
	var calls atomic.Int64
	ch := make(chan messaging.Delivery, 4)
	gosubSubscribeForgotten(t, e.Bus(), &calls, ch)
	gosubMust(t, e.Publish("gone.x", nil))
	if calls.Load() != 1 || len(ch) != 1 {
		t.Fatalf("before collection: %d calls, %d deliveries; want 1 and 1", calls.Load(), len(ch))
	}
	<-ch
	gosubCollect(t, "the owners' subscriptions to end", func() bool { return e.Bus().Count() == 0 })
	gosubMust(t, e.Publish("gone.x", nil))
	if calls.Load() != 1 || len(ch) != 0 {
		t.Fatalf("after collection: %d calls, %d deliveries; want 1 and 0", calls.Load(), len(ch))
	}
}

// gosubSubscribeForgotten subscribes a function and a channel, each with a
// fresh owner that nothing else references.
//
//go:noinline
func gosubSubscribeForgotten(t *testing.T, b *messaging.Bus, calls *atomic.Int64, ch chan messaging.Delivery) {
	_, err := messaging.SubscribeWeak(b, "gone.*", &gosubOwner{name: "fn"}, func(*gosubOwner, string, []byte) { calls.Add(1) })
	gosubMust(t, err)
	_, err = messaging.SubscribeChan(b, "gone.>", &gosubOwner{name: "chan"}, ch)
	gosubMust(t, err)
}

// Go subscribers leave the engine's accounting alone: the same workload
// gives the same counts and dead letters with and without them, and a
// topic only they hear is, for the engine, a topic nobody hears.
func TestGoSubscriberLeavesAccountingAlone(t *testing.T) {
	const n = 50
	owner := &gosubOwner{name: "observer"}
	var heard atomic.Int64
	subscribe := func(e *engine.Engine) {
		for _, p := range []string{"acct.>", "go.only"} {
			_, err := messaging.SubscribeWeak(e.Bus(), p, owner, func(*gosubOwner, string, []byte) { heard.Add(1) })
			gosubMust(t, err)
		}
	}
	// run publishes n messages to an agent and n to a topic no agent
	// hears, then, on a second engine, n to an agent it has paused and
	// stops at once: those n are dead-lettered.
	run := func(withGo bool) (delivered, dropped engine.Stats) {
		got := make(chan struct{}, n+1)
		id := engine.AgentID{Type: "sink", Key: "s"}
		start := func() *engine.Engine {
			e := gosubNew(t)
			gosubMust(t, e.Register("sink", func() engine.Agent {
				return gosubAgent(func(*engine.Context, engine.Message) { got <- struct{}{} })
			}))
			_, err := e.Spawn(id)
			gosubMust(t, err)
			gosubMust(t, e.SubscribeAgent("acct.*", id))
			if withGo {
				subscribe(e)
			}
			gosubMust(t, e.Start())
			return e
		}

		e := start()
		for i := range n {
			gosubMust(t, e.Publish("acct.x", []byte(fmt.Sprint(i))))
			gosubMust(t, e.Publish("go.only", []byte(fmt.Sprint(i))))
		}
		for range n {
			gosubWait(t, got, "the sink agent")
		}
		gosubStop(t, e)
		delivered = e.Stats()

		e = start()
		gosubMust(t, e.Publish("acct.start", nil))
		gosubWait(t, got, "the sink agent to run") // it is Running now
		gosubMust(t, e.Pause(id))
		for i := range n {
			gosubMust(t, e.Publish("acct.x", []byte(fmt.Sprint(i))))
		}
		ctx, cancel := context.WithTimeout(context.Background(), gosubTimeout)
		defer cancel()
		gosubMust(t, e.Stop(ctx, engine.Immediate()))
		dropped = e.Stats()
		return delivered, dropped
	}
	plainDelivered, plainDropped := run(false)
	goDelivered, goDropped := run(true)

	if got := heard.Load(); got != 3*n+1 {
		t.Errorf("Go subscribers heard %d messages, want %d", got, 3*n+1)
	}
	if plainDelivered.Processed != n || plainDropped.DeadLetters != n {
		t.Fatalf("baseline: %d processed, %d dead letters; want %d and %d", plainDelivered.Processed, plainDropped.DeadLetters, n, n)
	}
	for _, c := range []struct {
		name        string
		plain, with engine.Stats
	}{
		{"started", plainDelivered, goDelivered},
		{"stopped at once", plainDropped, goDropped},
	} {
		if c.with.Counts != c.plain.Counts || c.with.DeadLetters != c.plain.DeadLetters ||
			c.with.Panics != c.plain.Panics || c.with.Agents != c.plain.Agents {
			t.Errorf("%s: with Go subscribers %+v, %d dead letters, %d panics, %d agents; without %+v, %d, %d, %d",
				c.name, c.with.Counts, c.with.DeadLetters, c.with.Panics, c.with.Agents,
				c.plain.Counts, c.plain.DeadLetters, c.plain.Panics, c.plain.Agents)
		}
	}
	runtime.KeepAlive(owner)
}

// A Go subscriber that panics is recovered and counted; the agents and the
// other subscribers still get the message, and Publish reports nothing.
func TestGoSubscriberPanic(t *testing.T) {
	e := gosubNew(t)
	got := make(chan string, 1)
	gosubMust(t, e.Register("sink", func() engine.Agent {
		return gosubAgent(func(_ *engine.Context, m engine.Message) { got <- string(m.Payload) })
	}))
	id := engine.AgentID{Type: "sink", Key: "s"}
	_, err := e.Spawn(id)
	gosubMust(t, err)
	gosubMust(t, e.SubscribeAgent("p.>", id))
	_, err = e.Bus().Subscribe("p.>", func(string, []byte) { panic("dashboard bug") })
	gosubMust(t, err)
	var after atomic.Int64
	_, err = e.Bus().Subscribe("p.>", func(string, []byte) { after.Add(1) })
	gosubMust(t, err)
	gosubMust(t, e.Start())

	gosubMust(t, e.Publish("p.q", []byte("still delivered")))
	if after.Load() != 1 {
		t.Errorf("the subscriber after the panicking one ran %d times, want 1", after.Load())
	}
	if m := gosubWait(t, got, "the sink agent"); m != "still delivered" {
		t.Errorf("sink got %q", m)
	}
	if p := e.Bus().Panics(); p != 1 {
		t.Errorf("Bus().Panics() = %d, want 1", p)
	}
	if p := e.Stats().Panics; p != 1 {
		t.Errorf("Stats().Panics = %d, want 1", p)
	}
}

// Bus returns one bus, however many goroutines ask for it first.
func TestBusIsOne(t *testing.T) {
	e := gosubNew(t)
	const n = 8
	buses := make(chan *messaging.Bus, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			buses <- e.Bus()
		}()
	}
	close(start)
	wg.Wait()
	close(buses)
	first := e.Bus()
	for b := range buses {
		if b != first {
			t.Fatal("Bus returned two different buses")
		}
	}
}
