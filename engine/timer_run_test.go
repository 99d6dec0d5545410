package engine_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// These tests drive timers far enough ahead to wait on the timing wheel
// (50 ticks or more: 50 ms at the default 1 ms tick), whose buckets move to
// the heap as one sorted run, a few ticks before they are due.

// runArmer arms, on a message "arm", the timers of its plan (delay and
// label) in the plan's order, and logs each tick as "<clock time> <label>".
// "after <delay> <label>" arms one more; "stop <label>" stops that timer
// and logs whether Stop returned true.
type runArmer struct {
	now    func() time.Time
	log    *[]string
	plan   []runTimer
	timers map[string]engine.Timer
}

type runTimer struct {
	d     time.Duration
	label string
	every bool
}

func (k *runArmer) Receive(c *engine.Context, m engine.Message) {
	if !m.IsTimer() {
		cmd := string(m.Payload)
		if cmd == "arm" {
			for _, p := range k.plan {
				var t engine.Timer
				var err error
				if p.every {
					t, err = c.Every(p.d, []byte(p.label))
				} else {
					t, err = c.After(p.d, []byte(p.label))
				}
				if err != nil {
					panic(err)
				}
				k.timers[p.label] = t
			}
			return
		}
		if f := strings.Fields(cmd); f[0] == "after" {
			d, _ := time.ParseDuration(f[1])
			t, err := c.After(d, []byte(f[2]))
			if err != nil {
				panic(err)
			}
			k.timers[f[2]] = t
			return
		}
		label := cmd[len("stop "):]
		*k.log = append(*k.log, fmt.Sprintf("stop %s %v", label, k.timers[label].Stop()))
		return
	}
	*k.log = append(*k.log, fmt.Sprintf("%v %s", k.now().Sub(enginetest.Epoch), m.Payload))
}

func newRunArmer(t *testing.T, plans map[string][]runTimer) (*enginetest.Harness, map[string]*[]string) {
	t.Helper()
	h := enginetest.New(t, engine.WithLoops(2))
	logs := map[string]*[]string{}
	for key := range plans {
		logs[key] = new([]string)
	}
	for key, plan := range plans {
		// A type per key, so that the test owns each agent's log.
		name := "armer-" + key
		log, plan := logs[key], plan
		if err := h.Engine.Register(name, func() engine.Agent {
			return &runArmer{now: h.Clock.Now, log: log, plan: plan, timers: map[string]engine.Timer{}}
		}); err != nil {
			t.Fatal(err)
		}
	}
	h.Start()
	return h, logs
}

func armerSend(t *testing.T, h *enginetest.Harness, key, cmd string) {
	t.Helper()
	if err := h.Engine.SendID(engine.AgentID{Type: "armer-" + key, Key: key}, []byte(cmd)); err != nil {
		t.Fatal(err)
	}
	h.Settle()
}

// TestTimerRunFiresInDueOrder: timers armed in a shuffled order, many of
// them in one wheel tick and others spread over several, fire each at its
// own due time, in due order.
func TestTimerRunFiresInDueOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var plan []runTimer
	var want []string
	for i := 0; i < 300; i++ {
		// 200 in the tick at 100 ms, 100 over the next ten ticks.
		d := 100*time.Millisecond + time.Duration(i)*3*time.Microsecond
		if i >= 200 {
			d = 101*time.Millisecond + time.Duration(i-200)*97*time.Microsecond
		}
		plan = append(plan, runTimer{d: d, label: "t" + strconv.Itoa(i)})
	}
	r.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	sorted := slices.Clone(plan)
	slices.SortFunc(sorted, func(a, b runTimer) int { return int(a.d - b.d) })
	for _, p := range sorted {
		want = append(want, fmt.Sprintf("%v %s", p.d, p.label))
	}
	h, logs := newRunArmer(t, map[string][]runTimer{"a": plan})
	armerSend(t, h, "a", "arm")
	h.Advance(100*time.Millisecond - time.Nanosecond)
	if got := *logs["a"]; len(got) != 0 {
		t.Fatalf("fired before their due time: %q", got)
	}
	h.Advance(200 * time.Millisecond)
	expectLog(t, *logs["a"], want...)
}

// TestTimerRunStop: a timer stopped once its bucket has become a run on
// the heap never fires, Stop reports true once, and the timers beside it
// fire. Stopping most of a big run also makes the loop compact it (the
// stopped timers exceed a quarter of the heap), which keeps the rest.
func TestTimerRunStop(t *testing.T) {
	var plan []runTimer
	for i := 0; i < 400; i++ {
		plan = append(plan, runTimer{d: 100*time.Millisecond + time.Duration(i)*time.Microsecond, label: "t" + strconv.Itoa(i)})
	}
	h, logs := newRunArmer(t, map[string][]runTimer{"a": plan})
	armerSend(t, h, "a", "arm")
	h.Advance(90 * time.Millisecond) // the bucket has left the wheel
	var want []string
	for i := 0; i < 400; i++ {
		if i%4 != 3 {
			armerSend(t, h, "a", "stop t"+strconv.Itoa(i))
			want = append(want, fmt.Sprintf("stop t%d true", i))
		}
	}
	armerSend(t, h, "a", "stop t0")
	want = append(want, "stop t0 false")
	for i := 3; i < 400; i += 4 {
		want = append(want, fmt.Sprintf("%v t%d", plan[i].d, i))
	}
	h.Advance(time.Second)
	expectLog(t, *logs["a"], want...)
	if n := timersHeld(h.Engine); n != 0 {
		t.Fatalf("%d timers still held after all fired or stopped", n)
	}
}

// timersHeld is the number of timers the loops hold (Stats), once
// published.
func timersHeld(e *engine.Engine) int64 {
	var n int64
	for _, l := range e.Stats().Loops {
		n += l.Timers
	}
	return n
}

// TestTimerRunBesideHeapTimers: near timers, which go straight to the
// heap, armed while a run waits, fire interleaved with the run's timers
// in due order.
func TestTimerRunBesideHeapTimers(t *testing.T) {
	var far, near []runTimer
	for i := 0; i < 50; i++ {
		far = append(far, runTimer{d: 100*time.Millisecond + time.Duration(2*i)*time.Microsecond, label: "far" + strconv.Itoa(i)})
	}
	// Armed at 90 ms: due at 100 ms + an odd number of µs, between two far ones.
	for i := 0; i < 50; i++ {
		near = append(near, runTimer{d: 10*time.Millisecond + time.Duration(2*i+1)*time.Microsecond, label: "near" + strconv.Itoa(i)})
	}
	h, logs := newRunArmer(t, map[string][]runTimer{"a": far, "b": near})
	armerSend(t, h, "a", "arm")
	h.Advance(90 * time.Millisecond)
	armerSend(t, h, "b", "arm")
	h.Advance(time.Second)
	var want []string
	for i := 0; i < 50; i++ {
		want = append(want, fmt.Sprintf("%v far%d", far[i].d, i))
	}
	expectLog(t, *logs["a"], want...)
	want = want[:0]
	for i := 0; i < 50; i++ {
		want = append(want, fmt.Sprintf("%v near%d", 90*time.Millisecond+near[i].d, i))
	}
	expectLog(t, *logs["b"], want...)

	// On one agent the two kinds interleave in due order: a near timer
	// armed after the run formed, due between two of the run's timers.
	h2, logs2 := newRunArmer(t, map[string][]runTimer{"m": far[:10]})
	armerSend(t, h2, "m", "arm")
	h2.Advance(90 * time.Millisecond)
	armerSend(t, h2, "m", "after 10.005ms mid")
	h2.Advance(time.Second)
	want = want[:0]
	for i := 0; i < 10; i++ {
		want = append(want, fmt.Sprintf("%v far%d", far[i].d, i))
		if i == 2 {
			want = append(want, fmt.Sprintf("%v mid", 100*time.Millisecond+5*time.Microsecond))
		}
	}
	expectLog(t, *logs2["m"], want...)
}

// TestTimerRunEvery: a repeating timer whose period puts every tick on the
// wheel re-arms into a new bucket, and so a new run, at each tick, without
// drift, until stopped.
func TestTimerRunEvery(t *testing.T) {
	plan := []runTimer{
		{d: 70 * time.Millisecond, label: "e70", every: true},
		{d: 110 * time.Millisecond, label: "e110", every: true},
	}
	h, logs := newRunArmer(t, map[string][]runTimer{"a": plan})
	h.Advance(300 * time.Microsecond) // off the tick boundary
	armerSend(t, h, "a", "arm")
	h.Advance(450 * time.Millisecond)
	at := func(d time.Duration) time.Duration { return 300*time.Microsecond + d }
	want := []string{
		fmt.Sprintf("%v e70", at(70*time.Millisecond)),
		fmt.Sprintf("%v e110", at(110*time.Millisecond)),
		fmt.Sprintf("%v e70", at(140*time.Millisecond)),
		fmt.Sprintf("%v e70", at(210*time.Millisecond)),
		fmt.Sprintf("%v e110", at(220*time.Millisecond)),
		fmt.Sprintf("%v e70", at(280*time.Millisecond)),
		fmt.Sprintf("%v e110", at(330*time.Millisecond)),
		fmt.Sprintf("%v e70", at(350*time.Millisecond)),
		fmt.Sprintf("%v e70", at(420*time.Millisecond)),
		fmt.Sprintf("%v e110", at(440*time.Millisecond)),
	}
	expectLog(t, *logs["a"], want...)
	armerSend(t, h, "a", "stop e70")
	h.Advance(time.Second)
	got := *logs["a"]
	if got[len(want)] != "stop e70 true" {
		t.Fatalf("after the ticks: %q, want the stop", got[len(want):])
	}
	for _, s := range got[len(want)+1:] {
		if s[len(s)-3:] == "e70" {
			t.Fatalf("e70 ticked after Stop: %q", got[len(want):])
		}
	}
	if n := len(got) - len(want) - 1; n != 9 {
		t.Fatalf("%d ticks of e110 in the next second, want 9: %q", n, got[len(want):])
	}
}
