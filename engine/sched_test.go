package engine_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
	"github.com/agentloop/agentloop/scheduler"
)

// These tests drive the engine's real scheduler end to end on one loop and
// a manual clock. Under WithClock the loop measures handler time on the
// engine clock, so a handler here "burns" by advancing the clock by its
// cost: handler cost is charged in work, not in wall time, and other
// processes preempting the test cannot move the shares. Once started, one
// loop goroutine does all the work, so every run of a test is the same.

// schedEngine returns a one-loop engine on a manual clock, not started,
// stopped at once when the test ends.
func schedEngine(t *testing.T, opts ...engine.Option) (*engine.Engine, *enginetest.Clock) {
	t.Helper()
	clk := enginetest.NewClock(enginetest.Epoch)
	e, err := engine.New(append([]engine.Option{engine.WithLoops(1), engine.WithClock(clk)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx, engine.Immediate())
	})
	return e, clk
}

func schedRegister(t *testing.T, e *engine.Engine, name string, f func() engine.Agent, opts ...engine.RegisterOption) engine.Ref {
	t.Helper()
	if err := e.Register(name, f, opts...); err != nil {
		t.Fatalf("Register(%q): %v", name, err)
	}
	r, err := e.Spawn(engine.AgentID{Type: name, Key: "1"})
	if err != nil {
		t.Fatalf("Spawn(%q): %v", name, err)
	}
	return r
}

// schedRun starts e, waits until it has nothing left to do and stops it,
// so that the loop has published all its counters.
func schedRun(t *testing.T, e *engine.Engine) engine.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := e.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
	if err := e.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	return e.Stats()
}

// Under WithClock the loop charges each handler the engine-clock time that
// passed while it ran: handler time, busy time and the histogram follow
// the clock exactly, whatever the machine does meanwhile.
func TestHandlerTimeFollowsEngineClock(t *testing.T) {
	e, clk := schedEngine(t)
	const n, cost = 100, 3 * time.Millisecond
	r := schedRegister(t, e, "worker", func() engine.Agent {
		return receiveFunc(func(*engine.Context, engine.Message) { clk.Advance(cost) })
	})
	for range n {
		if err := r.Send(nil); err != nil {
			t.Fatal(err)
		}
	}
	st := schedRun(t, e)
	h := st.Types[0].Handler
	if h.Count != n || h.Sum != n*cost {
		t.Errorf("handler time: %d messages, %v in all; want %d, %v", h.Count, h.Sum, n, n*cost)
	}
	if b := h.Buckets[bucketOf(cost)]; b != n {
		t.Errorf("%v messages in the bucket of %v, want all %d (buckets %v)", b, cost, n, h.Buckets)
	}
	if busy := st.Loops[0].Busy; busy != n*cost {
		t.Errorf("loop busy %v, want %v", busy, n*cost)
	}
}

type receiveFunc func(*engine.Context, engine.Message)

func (f receiveFunc) Receive(c *engine.Context, m engine.Message) { f(c, m) }

// bucketOf is the histogram bucket that holds a handler time of d.
func bucketOf(d time.Duration) int {
	for i := range engine.HandlerBuckets {
		if d <= engine.HandlerBucketBound(i) {
			return i
		}
	}
	return engine.HandlerBuckets - 1
}

// seqAgent records, for each message it handles, the loop-wide position at
// which it was handled. All agents of these tests share one loop, so the
// shared counter needs no synchronisation.
type seqAgent struct {
	clk *enginetest.Clock
	seq *int
	pos []int
}

func (s *seqAgent) Receive(_ *engine.Context, _ engine.Message) {
	*s.seq++
	s.pos = append(s.pos, *s.seq)
	s.clk.Advance(time.Microsecond)
}

func mean(xs []int) float64 {
	sum := 0
	for _, x := range xs {
		sum += x
	}
	return float64(sum) / float64(len(xs))
}

// Under overload (every mailbox full before the loop starts), a
// priority-100 agent's messages are handled earlier than a priority-10
// agent's.
func TestSchedulerPriorityUnderOverload(t *testing.T) {
	e, clk := schedEngine(t)
	const perAgent, fillers = 1000, 6
	seq := 0
	agents := map[string]*seqAgent{}
	reg := func(name string, prio int) engine.Ref {
		return schedRegister(t, e, name, func() engine.Agent {
			a := &seqAgent{clk: clk, seq: &seq}
			agents[name] = a
			return a
		}, engine.Priority(prio))
	}
	refs := []engine.Ref{reg("hi", 100), reg("lo", 10)}
	for i := range fillers {
		refs = append(refs, reg("mid"+string(rune('a'+i)), 50))
	}
	for range perAgent {
		for _, r := range refs {
			if err := r.Send(nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	schedRun(t, e)
	hi, lo := agents["hi"], agents["lo"]
	if len(hi.pos) != perAgent || len(lo.pos) != perAgent {
		t.Fatalf("handled hi %d, lo %d; want %d each", len(hi.pos), len(lo.pos), perAgent)
	}
	mh, ml := mean(hi.pos), mean(lo.pos)
	t.Logf("mean handling position: priority 100 %.0f, priority 10 %.0f (of %d)", mh, ml, seq)
	if !(mh < ml) {
		t.Fatalf("priority 100 waited longer (mean position %.0f) than priority 10 (%.0f)", mh, ml)
	}
	if last, med := hi.pos[perAgent-1], lo.pos[perAgent/2]; last > med {
		t.Errorf("priority 100 finished at %d, after priority 10 was half done (%d)", last, med)
	}
}

// selfDriven keeps itself runnable: each message it handles sends the next
// one to itself, until the shared budget is spent. Each run costs what
// cost returns, burnt on the engine clock.
type selfDriven struct {
	clk   *enginetest.Clock
	cost  func() time.Duration
	total *int
	limit int
	runs  int
	err   error   // the first failed send to itself
	trace *[]byte // which agent ran, in order
	tag   byte
}

func (s *selfDriven) Receive(c *engine.Context, _ engine.Message) {
	s.runs++
	*s.trace = append(*s.trace, s.tag)
	s.clk.Advance(s.cost())
	if *s.total++; *s.total < s.limit {
		if err := c.Send(c.Self(), nil); err != nil && s.err == nil {
			s.err = err
		}
	}
}

func fixed(d time.Duration) func() time.Duration { return func() time.Duration { return d } }

// runSelfDriven runs one selfDriven agent per entry of costs, named by it,
// with a quantum of one message, until limit messages have been handled
// in all. It returns the agents by name and the order in which they ran.
func runSelfDriven(t *testing.T, limit int, costs map[string]func() time.Duration, opts ...engine.Option) (map[string]*selfDriven, []byte, engine.Stats) {
	t.Helper()
	e, clk := schedEngine(t, append([]engine.Option{engine.WithQuantum(1)}, opts...)...)
	total := 0
	var trace []byte
	got := map[string]*selfDriven{}
	var refs []engine.Ref
	for _, name := range []string{"a", "b", "hog", "light"} {
		cost, ok := costs[name]
		if !ok {
			continue
		}
		refs = append(refs, schedRegister(t, e, name, func() engine.Agent {
			s := &selfDriven{clk: clk, cost: cost, total: &total, limit: limit, trace: &trace, tag: name[0]}
			got[name] = s
			return s
		}))
	}
	if len(refs) != len(costs) {
		t.Fatalf("costs for unknown agents: %v", costs)
	}
	for _, r := range refs {
		if err := r.Send(nil); err != nil {
			t.Fatal(err)
		}
	}
	st := schedRun(t, e)
	for name, s := range got {
		if s.err != nil {
			t.Fatalf("%s: send to itself: %v", name, s.err)
		}
	}
	// The agent that spends the budget sends no more; each other one
	// still has its last message queued.
	if want := limit + len(refs) - 1; len(trace) != want {
		t.Fatalf("%d runs in all, want %d", len(trace), want)
	}
	return got, trace, st
}

// noisy returns the costs of a handler that usually takes 100–300 µs and,
// one run in fifty, ten times as long (as if preempted): the kind of noise
// that measured handler time has. The costs come from a fixed seed.
func noisy(seed uint64) func() time.Duration {
	r := rand.New(rand.NewPCG(seed, 0))
	return func() time.Duration {
		d := 100*time.Microsecond + time.Duration(r.Int64N(int64(200*time.Microsecond)+1))
		if r.IntN(50) == 0 {
			d *= 10
		}
		return d
	}
}

// Two agents of equal priority and equal mean cost get shares of the loop
// within 10% of each other, and since the noise in their costs must not
// split them into different weights, they are served round robin: neither
// ever runs twice in a row. (Without the quantised shares the noise would
// hand one of them whole epochs alone, with equal totals in the end.)
func TestSchedulerEqualShares(t *testing.T) {
	got, trace, _ := runSelfDriven(t, 20000, map[string]func() time.Duration{"a": noisy(1), "b": noisy(2)})
	a, b := got["a"].runs, got["b"].runs
	t.Logf("runs: a %d, b %d", a, b)
	if d := float64(a-b) / float64(max(a, b)); d > 0.1 || d < -0.1 {
		t.Fatalf("shares differ by %.1f%%: a %d, b %d", 100*d, a, b)
	}
	for i := 1; i < len(trace); i++ {
		if trace[i] == trace[i-1] {
			j := i
			for j < len(trace) && trace[j] == trace[i] {
				j++
			}
			t.Fatalf("not round robin: %c ran %d times in a row from run %d", trace[i], j-i+1, i-1)
		}
	}
}

// An agent that burns the loop cannot starve a light agent of the same
// priority: its CPU headroom sinks, so the light one is served first, and
// aging still serves the hog within the starvation bound.
func TestSchedulerHogDoesNotStarveLight(t *testing.T) {
	const limit = 6000
	got, trace, st := runSelfDriven(t, limit, map[string]func() time.Duration{
		"hog":   fixed(2 * time.Millisecond),
		"light": fixed(time.Microsecond),
	})
	hog, light := got["hog"].runs, got["light"].runs
	t.Logf("runs: hog %d, light %d; longest wait %d picks", hog, light, st.Loops[0].Scheduler.LongestWait)
	if light < hog {
		t.Fatalf("light agent ran %d times, hog %d: the hog took the loop", light, hog)
	}
	// The first epoch has no measurements: the two alternate, and the
	// hog, queued when it closes, keeps its place once more. From then on
	// the hog runs only when aging serves it, so between two of its runs
	// the light agent runs at least MaxWait times, and no more than the
	// starvation bound allows. (The last run of the trace is the hog's
	// message left when the light agent spent the budget.)
	cfg := scheduler.DefaultConfig()
	last, aged := -1, 0
	for i := cfg.EpochPicks; i < limit; i++ {
		if trace[i] != 'h' {
			continue
		}
		switch gap := i - last - 1; {
		case last < 0 && i > cfg.EpochPicks+1:
			t.Errorf("the hog's first run after the first epoch is run %d, want its place in the queue (%d or %d)",
				i, cfg.EpochPicks, cfg.EpochPicks+1)
		case last >= 0 && (gap < cfg.MaxWait || gap > cfg.WaitBound(1)):
			t.Errorf("hog run %d follows %d light runs in a row, want %d..%d", i, gap, cfg.MaxWait, cfg.WaitBound(1))
		case last >= 0:
			aged++
		}
		last = i
	}
	if gap := limit - 1 - last; gap > cfg.WaitBound(1) {
		t.Errorf("the hog waited the last %d runs, over the bound %d", gap, cfg.WaitBound(1))
	}
	if aged == 0 {
		t.Errorf("aging never served the hog")
	}
	t.Logf("the hog was served by aging %d times", aged)
}

// The starvation bound: a priority-0 agent among always-runnable
// priority-100 agents is served within MaxWait + 2k picks, k the agents
// queued ahead of it.
func TestSchedulerStarvationBound(t *testing.T) {
	cfg := scheduler.DefaultConfig()
	cfg.MaxWait = 16
	e, clk := schedEngine(t, engine.WithQuantum(1), engine.WithScheduler(cfg))
	const hogs = 8
	total := 0
	var trace []byte
	for i := range hogs {
		name := "hog" + string(rune('a'+i))
		r := schedRegister(t, e, name, func() engine.Agent {
			return &selfDriven{clk: clk, cost: fixed(time.Microsecond), total: &total, limit: 1 << 30, trace: &trace, tag: 'h'}
		}, engine.Priority(100))
		if err := r.Send(nil); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan int, 1)
	low := schedRegister(t, e, "low", func() engine.Agent { return &lowAgent{trace: &trace, done: done} }, engine.Priority(0))
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	const rounds = 50
	for range rounds {
		// The loop is serving the hogs; queue one message.
		if err := low.Send(nil); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("timed out waiting for the priority-0 agent")
		}
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.Stop(stopCtx, engine.Immediate())
	st := e.Stats()
	longest := st.Loops[0].Scheduler.LongestWait
	bound := uint64(cfg.WaitBound(hogs))
	t.Logf("longest wait %d picks, bound %d (MaxWait %d, %d hogs); aged picks %d of %d",
		longest, bound, cfg.MaxWait, hogs, st.Loops[0].Scheduler.AgedPicks, st.Loops[0].Scheduler.Picks)
	if longest > bound {
		t.Fatalf("an agent waited %d picks, over the bound %d", longest, bound)
	}
	if st.Loops[0].Scheduler.AgedPicks == 0 {
		t.Fatalf("no aged pick: the priority-0 agent was never behind the hogs")
	}
}

type lowAgent struct {
	trace *[]byte
	done  chan int
}

func (l *lowAgent) Receive(_ *engine.Context, _ engine.Message) {
	*l.trace = append(*l.trace, 'l')
	l.done <- len(*l.trace)
}
