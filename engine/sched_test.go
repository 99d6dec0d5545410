package engine

import (
	"context"
	"testing"

	"github.com/agentloop/agentloop/scheduler"
)

// seqAgent records, for each message it handles, the loop-wide position at
// which it was handled. All agents of these tests share one loop, so the
// shared counter needs no synchronisation.
type seqAgent struct {
	seq  *int
	pos  []int
	done chan struct{}
	want int
}

func (s *seqAgent) Receive(_ *Context, _ Message) {
	*s.seq++
	s.pos = append(s.pos, *s.seq)
	if len(s.pos) == s.want {
		close(s.done)
	}
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
	e := newEngine(t, WithLoops(1))
	const perAgent, fillers = 1000, 6
	seq := 0
	agents := map[string]*seqAgent{}
	reg := func(name string, prio int) {
		mustRegister(t, e, name, func() Agent {
			a := &seqAgent{seq: &seq, done: make(chan struct{}), want: perAgent}
			agents[name] = a
			return a
		}, WithPriority(prio))
	}
	reg("hi", 100)
	reg("lo", 10)
	reg("mid", 50)
	var refs []Ref
	refs = append(refs, mustSpawn(t, e, AgentID{Type: "hi", Key: "1"}), mustSpawn(t, e, AgentID{Type: "lo", Key: "1"}))
	for i := range fillers {
		refs = append(refs, mustSpawn(t, e, AgentID{Type: "mid", Key: string(rune('a' + i))}))
	}
	for range perAgent {
		for _, r := range refs {
			if err := r.Send(nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
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
// one to itself, until the shared budget is spent. burn makes a hog.
type selfDriven struct {
	total *int
	limit int
	burn  int
	runs  int
	sink  uint64
	trace *[]byte // which agent ran, in order
	tag   byte
}

func (s *selfDriven) Receive(c *Context, _ Message) {
	s.runs++
	*s.trace = append(*s.trace, s.tag)
	for i := 0; i < s.burn; i++ {
		s.sink = s.sink*31 + uint64(i)
	}
	if *s.total++; *s.total < s.limit {
		_ = c.Send(c.Self(), nil)
	}
}

func runSelfDriven(t *testing.T, limit int, burns map[string]int, opts ...Option) (map[string]*selfDriven, []byte, Stats) {
	t.Helper()
	e := newEngine(t, append([]Option{WithLoops(1), WithQuantum(1)}, opts...)...)
	total := 0
	var trace []byte
	got := map[string]*selfDriven{}
	var refs []Ref
	for name, burn := range burns {
		mustRegister(t, e, name, func() Agent {
			s := &selfDriven{total: &total, limit: limit, burn: burn, trace: &trace, tag: name[0]}
			got[name] = s
			return s
		})
		refs = append(refs, mustSpawn(t, e, AgentID{Type: name, Key: "1"}))
	}
	for _, r := range refs {
		if err := r.Send(nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	return got, trace, st
}

// Two agents of equal priority and equal cost get shares of the loop
// within 10% of each other.
func TestSchedulerEqualShares(t *testing.T) {
	got, _, _ := runSelfDriven(t, 20000, map[string]int{"a": 200, "b": 200})
	a, b := got["a"].runs, got["b"].runs
	t.Logf("runs: a %d, b %d", a, b)
	if d := float64(a-b) / float64(max(a, b)); d > 0.1 || d < -0.1 {
		t.Fatalf("shares differ by %.1f%%: a %d, b %d", 100*d, a, b)
	}
}

// An agent that burns the loop cannot starve a light agent of the same
// priority: its CPU headroom sinks, so the light one is served first, and
// aging still serves the hog within the starvation bound.
func TestSchedulerHogDoesNotStarveLight(t *testing.T) {
	got, trace, st := runSelfDriven(t, 6000, map[string]int{"hog": 20000, "light": 10})
	hog, light := got["hog"].runs, got["light"].runs
	t.Logf("runs: hog %d, light %d; longest wait %d picks", hog, light, st.Loops[0].Scheduler.LongestWait)
	if light < hog {
		t.Fatalf("light agent ran %d times, hog %d: the hog took the loop", light, hog)
	}
	// Once the first epochs have measured the hog, the light agent never
	// waits behind more than two hog runs in a row.
	run, worst := 0, 0
	for _, c := range trace[len(trace)/4:] {
		if c == 'h' {
			run++
			worst = max(worst, run)
		} else {
			run = 0
		}
	}
	if worst > 2 {
		t.Errorf("light agent waited behind %d hog runs in a row", worst)
	}
	if hog == 0 {
		t.Errorf("the hog was starved")
	}
}

// The starvation bound: a priority-0 agent among always-runnable
// priority-100 agents is served within MaxWait + 2k picks, k the agents
// queued ahead of it.
func TestSchedulerStarvationBound(t *testing.T) {
	cfg := scheduler.DefaultConfig()
	cfg.MaxWait = 16
	e := newEngine(t, WithLoops(1), WithQuantum(1), WithScheduler(cfg))
	const hogs = 8
	total := 0
	var trace []byte
	for i := range hogs {
		name := "hog" + string(rune('a'+i))
		mustRegister(t, e, name, func() Agent {
			return &selfDriven{total: &total, limit: 1 << 30, trace: &trace, tag: 'h'}
		}, WithPriority(100))
		r := mustSpawn(t, e, AgentID{Type: name, Key: "1"})
		if err := r.Send(nil); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan int, 1)
	mustRegister(t, e, "low", func() Agent { return &lowAgent{trace: &trace, done: done} }, WithPriority(0))
	low := mustSpawn(t, e, AgentID{Type: "low", Key: "1"})
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	const rounds = 50
	for range rounds {
		// Let the loop settle into serving the hogs, then queue one message.
		if err := low.Send(nil); err != nil {
			t.Fatal(err)
		}
		wait(t, done, "the priority-0 agent")
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_ = e.Stop(stopCtx, Immediate())
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

func (l *lowAgent) Receive(_ *Context, _ Message) {
	*l.trace = append(*l.trace, 'l')
	l.done <- len(*l.trace)
}
