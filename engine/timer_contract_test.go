package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// timerLab is a harness engine with one registered type, "lab", whose
// agents run the test's functions on their loop (see do) and record every
// other delivery as "<offset from enginetest.Epoch> <payload>". A request
// is taken with ReplyLater and its handle kept for the test.
type timerLab struct {
	t *testing.T
	h *enginetest.Harness

	mu    sync.Mutex // protects the fields below
	fns   map[string]chan func(*engine.Context)
	log   map[string][]string
	msgs  map[string][]engine.Message
	held  []engine.ReplyHandle
	inits map[string]int
	hooks map[string]func(*engine.Context, engine.Message)
}

// labRun is the payload that makes a lab agent run the next function the
// test queued for it.
const labRun = "lab:run"

type labAgent struct{ lab *timerLab }

func (a labAgent) Init(c *engine.Context) error {
	a.lab.mu.Lock()
	defer a.lab.mu.Unlock()
	a.lab.inits[c.ID().Key]++
	return nil
}

func (a labAgent) Receive(c *engine.Context, m engine.Message) {
	key := c.ID().Key
	if string(m.Payload) == labRun {
		(<-a.lab.queue(key))(c)
		return
	}
	lab := a.lab
	lab.mu.Lock()
	defer lab.mu.Unlock()
	if hook := lab.hooks[key]; hook != nil {
		lab.mu.Unlock()
		hook(c, m)
		lab.mu.Lock()
	}
	if m.IsRequest() {
		h, err := c.ReplyLater()
		if err != nil {
			panic(err)
		}
		lab.held = append(lab.held, h)
	}
	at := lab.h.Clock.Now().Sub(enginetest.Epoch)
	lab.log[key] = append(lab.log[key], fmt.Sprintf("%v %s", at, m.Payload))
	lab.msgs[key] = append(lab.msgs[key], m)
}

// newTimerLab starts a harness engine on one loop (extra options first).
func newTimerLab(t *testing.T, opts ...engine.Option) *timerLab {
	t.Helper()
	lab := &timerLab{
		t:     t,
		h:     enginetest.New(t, append([]engine.Option{engine.WithLoops(1)}, opts...)...),
		fns:   map[string]chan func(*engine.Context){},
		log:   map[string][]string{},
		msgs:  map[string][]engine.Message{},
		inits: map[string]int{},
		hooks: map[string]func(*engine.Context, engine.Message){},
	}
	if err := lab.h.Engine.Register("lab", func() engine.Agent { return labAgent{lab} }); err != nil {
		t.Fatal(err)
	}
	lab.h.Start()
	return lab
}

func labID(key string) engine.AgentID { return engine.AgentID{Type: "lab", Key: key} }

func (lab *timerLab) queue(key string) chan func(*engine.Context) {
	lab.mu.Lock()
	defer lab.mu.Unlock()
	ch := lab.fns[key]
	if ch == nil {
		ch = make(chan func(*engine.Context), 1)
		lab.fns[key] = ch
	}
	return ch
}

// do runs f as the lab agent key (spawning it if need be) and returns once
// f has returned and the engine has settled. A panic in f fails the test
// instead of reaching the engine.
func (lab *timerLab) do(key string, f func(c *engine.Context)) {
	lab.t.Helper()
	done := make(chan any, 1)
	lab.queue(key) <- func(c *engine.Context) {
		defer func() { done <- recover() }()
		f(c)
	}
	if err := lab.h.Engine.SendID(labID(key), []byte(labRun)); err != nil {
		lab.t.Fatalf("send to %s: %v", key, err)
	}
	select {
	case p := <-done:
		if p != nil {
			lab.t.Fatalf("panic in %s: %v", key, p)
		}
	case <-time.After(lab.h.SettleTimeout):
		lab.t.Fatalf("%s did not run the function", key)
	}
	lab.h.Settle()
}

// on makes agent key call f with each delivery, before recording it.
func (lab *timerLab) on(key string, f func(*engine.Context, engine.Message)) {
	lab.mu.Lock()
	defer lab.mu.Unlock()
	lab.hooks[key] = f
}

// step is Harness.Advance for timers on the loop's precise heap (due in
// less than 50 wheel ticks): it advances the clock by d, then wakes the
// loop with a message, so that a timer due by then fires even if the loop
// armed its clock alarm only after the harness saw it idle.
func (lab *timerLab) step(d time.Duration) {
	lab.t.Helper()
	lab.h.Advance(d)
	lab.do("waker", func(*engine.Context) {})
}

// got returns what agent key has received so far.
func (lab *timerLab) got(key string) []string {
	lab.mu.Lock()
	defer lab.mu.Unlock()
	return append([]string(nil), lab.log[key]...)
}

func (lab *timerLab) expect(key string, want ...string) {
	lab.t.Helper()
	if got := lab.got(key); fmt.Sprint(got) != fmt.Sprint(want) {
		if len(got) > 12 {
			got = append(got[:12:12], fmt.Sprintf("… %d in all", len(got)))
		}
		lab.t.Fatalf("%s received %q, want %q", key, got, want)
	}
}

// ticks returns n deliveries of payload, every period from first.
func ticks(first, period time.Duration, n int, payload string) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%v %s", first+time.Duration(i)*period, payload))
	}
	return out
}

// pastEndOfTime are durations whose deadline, from the harness epoch, lies
// after the last unix nanosecond an int64 holds (April 2262).
var pastEndOfTime = []time.Duration{
	math.MaxInt64,
	math.MaxInt64 - 1,
	250 * 365 * 24 * time.Hour,
}

func TestAfterPastEndOfTimeNeverFires(t *testing.T) {
	for _, d := range pastEndOfTime {
		t.Run(fmt.Sprint(int64(d)), func(t *testing.T) {
			lab := newTimerLab(t)
			var never, soon engine.Timer
			lab.do("a", func(c *engine.Context) {
				var err error
				if never, err = c.After(d, []byte("never")); err != nil {
					t.Errorf("After(%v): %v", d, err)
				}
				if soon, err = c.After(time.Hour, []byte("soon")); err != nil {
					t.Errorf("After(1h): %v", err)
				}
			})
			lab.h.Advance(1000 * time.Hour)
			lab.expect("a", "1h0m0s soon") // a timer behind it still fires
			if soon.Stop() {
				t.Error("Stop of a fired one-shot timer returned true")
			}
			if !never.Stop() {
				t.Fatal("Stop of the armed never-firing timer returned false")
			}
			if never.Stop() {
				t.Fatal("second Stop returned true")
			}
			lab.h.Advance(1000 * time.Hour)
			lab.expect("a", "1h0m0s soon")
		})
	}
}

func TestEveryPastEndOfTimeNeverFires(t *testing.T) {
	for _, d := range pastEndOfTime {
		t.Run(fmt.Sprint(int64(d)), func(t *testing.T) {
			lab := newTimerLab(t)
			var tm engine.Timer
			lab.do("a", func(c *engine.Context) {
				var err error
				if tm, err = c.Every(d, []byte("never")); err != nil {
					t.Errorf("Every(%v): %v", d, err)
				}
			})
			lab.h.Advance(1000 * time.Hour)
			lab.expect("a")
			if !tm.Stop() {
				t.Fatal("Stop of the armed timer returned false")
			}
		})
	}
}

// toNearEndOfTime advances the lab's clock to before the last unix
// nanosecond an int64 holds (April 2262).
func (lab *timerLab) toNearEndOfTime(before time.Duration) {
	lab.t.Helper()
	end := time.Unix(0, math.MaxInt64)
	lab.h.Advance(end.Sub(lab.h.Clock.Now()) - before)
}

// Near the end of time, the next tick of a repeating timer falls past it:
// it must saturate to never, not wrap round into the past and fire at
// once, again and again.
func TestEveryTickPastEndOfTimeNeverFires(t *testing.T) {
	lab := newTimerLab(t)
	lab.toNearEndOfTime(100 * time.Millisecond)
	var every, after engine.Timer
	lab.do("a", func(c *engine.Context) {
		every, _ = c.Every(40*time.Millisecond, []byte("tick"))
		after, _ = c.After(200*time.Millisecond, []byte("after"))
	})
	start := lab.h.Clock.Now().Sub(enginetest.Epoch)
	lab.step(40 * time.Millisecond)
	lab.step(40 * time.Millisecond)
	lab.step(9 * time.Millisecond) // to 11ms before the end
	lab.expect("a", ticks(start+40*time.Millisecond, 40*time.Millisecond, 2, "tick")...)
	if !every.Stop() || !after.Stop() {
		t.Fatal("Stop of a timer past the end of time returned false")
	}
}

// Skipping missed ticks near the end of time saturates too: the tick in
// phase after the late one would fall 5ms past the end.
func TestEverySkippingMissedTicksPastEndOfTime(t *testing.T) {
	lab := newTimerLab(t)
	lab.toNearEndOfTime(95 * time.Millisecond)
	lab.do("a", func(c *engine.Context) { _, _ = c.Every(10*time.Millisecond, []byte("tick")) })
	start := lab.h.Clock.Now().Sub(enginetest.Epoch)
	lab.step(10 * time.Millisecond)
	lab.step(10 * time.Millisecond)
	lab.do("a", func(*engine.Context) {
		lab.h.Clock.Advance(73 * time.Millisecond) // busy until 93ms in
	})
	lab.step(0)
	lab.step(time.Millisecond) // to 1ms before the end
	lab.expect("a", append(ticks(start+10*time.Millisecond, 10*time.Millisecond, 2, "tick"),
		fmt.Sprintf("%v tick", start+93*time.Millisecond))...)
}

func TestRequestTimeoutPastEndOfTimeNeverExpires(t *testing.T) {
	lab := newTimerLab(t)
	lab.do("target", func(*engine.Context) {}) // spawn it
	var target engine.Ref
	lab.do("target", func(c *engine.Context) { target = c.Self() })

	var (
		mu      sync.Mutex
		outcome []string
	)
	lab.do("asker", func(c *engine.Context) {
		err := c.Request(target, []byte("q"), math.MaxInt64, func(_ *engine.Context, reply []byte, err error) {
			mu.Lock()
			defer mu.Unlock()
			outcome = append(outcome, fmt.Sprintf("%s %v", reply, err))
		})
		if err != nil {
			t.Errorf("Request: %v", err)
		}
	})
	lab.h.Advance(1000 * time.Hour)
	mu.Lock()
	if len(outcome) != 0 {
		t.Fatalf("request with a timeout past 2262 settled with %q", outcome)
	}
	mu.Unlock()

	lab.mu.Lock()
	held := lab.held
	lab.mu.Unlock()
	if len(held) != 1 {
		t.Fatalf("target holds %d requests, want 1", len(held))
	}
	if err := held[0].Reply([]byte("a")); err != nil {
		t.Fatalf("Reply: %v", err)
	}
	lab.h.Settle()
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(outcome) != "[a <nil>]" {
		t.Fatalf("outcome %q, want the reply", outcome)
	}
}

func TestAfterAndEveryRefuseNonPositiveDurations(t *testing.T) {
	lab := newTimerLab(t)
	for _, d := range []time.Duration{0, -time.Nanosecond, -time.Hour, math.MinInt64} {
		lab.do("a", func(c *engine.Context) {
			for name, arm := range map[string]func(time.Duration, []byte) (engine.Timer, error){
				"After": c.After, "Every": c.Every,
			} {
				tm, err := arm(d, []byte("x"))
				if !errors.Is(err, engine.ErrInvalidDuration) || !strings.Contains(err.Error(), d.String()) {
					t.Errorf("%s(%v) = %v, want ErrInvalidDuration naming %v", name, d, err, d)
				}
				if tm.Stop() {
					t.Errorf("%s(%v): the Timer of a refused call stopped something", name, d)
				}
			}
		})
	}
	lab.h.Advance(time.Hour)
	lab.expect("a")
}

func TestAfterDeliversAPlainMessage(t *testing.T) {
	lab := newTimerLab(t)
	lab.do("a", func(c *engine.Context) {
		if _, err := c.After(time.Second, []byte("x")); err != nil {
			t.Error(err)
		}
		if _, err := c.Every(time.Second, []byte("y")); err != nil {
			t.Error(err)
		}
	})
	lab.h.Advance(time.Second)
	lab.mu.Lock()
	defer lab.mu.Unlock()
	if len(lab.msgs["a"]) != 2 {
		t.Fatalf("%d deliveries, want 2", len(lab.msgs["a"]))
	}
	for _, m := range lab.msgs["a"] {
		if m.Topic != "" || !m.Sender.IsZero() || m.IsRequest() {
			t.Errorf("timer message %q: topic %q, sender %v, request %v; want none", m.Payload, m.Topic, m.Sender.ID(), m.IsRequest())
		}
	}
}

func TestTimerStopReportsWhetherItStopped(t *testing.T) {
	var zero engine.Timer
	if zero.Stop() {
		t.Fatal("the zero Timer stopped something")
	}

	lab := newTimerLab(t)
	var pending, fired, every engine.Timer
	lab.do("a", func(c *engine.Context) {
		pending, _ = c.After(2*time.Second, []byte("pending"))
		fired, _ = c.After(time.Second, []byte("fired"))
		every, _ = c.Every(time.Second, []byte("every"))
	})
	lab.h.Advance(1500 * time.Millisecond)
	lab.expect("a", "1s fired", "1s every")

	if fired.Stop() {
		t.Error("Stop after a one-shot timer fired returned true")
	}
	if !pending.Stop() || pending.Stop() {
		t.Error("Stop of a pending one-shot timer: want true, then false")
	}
	if !every.Stop() || every.Stop() {
		t.Error("Stop of a repeating timer between ticks: want true, then false")
	}
	lab.h.Advance(time.Minute)
	lab.expect("a", "1s fired", "1s every")
}

func TestTimerStopAfterEngineStopIsFalse(t *testing.T) {
	lab := newTimerLab(t)
	var tm engine.Timer
	lab.do("a", func(c *engine.Context) { tm, _ = c.Every(time.Second, []byte("x")) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lab.h.Engine.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if tm.Stop() {
		t.Fatal("Stop of a timer the engine's stop dropped returned true")
	}
}

// A Timer refers to one scheduling: once it fired, its Stop must not
// cancel a later timer, even one the engine built from the same memory.
func TestTimerOfAFinishedSchedulingStopsNothing(t *testing.T) {
	lab := newTimerLab(t)
	var old engine.Timer
	lab.do("a", func(c *engine.Context) { old, _ = c.After(time.Millisecond, []byte("old")) })
	lab.step(time.Millisecond)
	const n = 64
	lab.do("a", func(c *engine.Context) {
		for range n {
			if _, err := c.After(time.Millisecond, []byte("new")); err != nil {
				t.Error(err)
			}
		}
	})
	if old.Stop() {
		t.Fatal("Stop of a fired timer returned true")
	}
	lab.step(time.Millisecond)
	if got := len(lab.got("a")); got != 1+n {
		t.Fatalf("%d deliveries, want %d: the old Timer stopped a new one", got, 1+n)
	}
}

func TestTimerStopFromManyGoroutinesStopsOnce(t *testing.T) {
	lab := newTimerLab(t)
	var tm engine.Timer
	lab.do("a", func(c *engine.Context) { tm, _ = c.After(time.Hour, []byte("x")) })
	const n = 8
	var wg sync.WaitGroup
	results := make(chan bool, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- tm.Stop()
		}()
	}
	wg.Wait()
	close(results)
	stopped := 0
	for ok := range results {
		if ok {
			stopped++
		}
	}
	if stopped != 1 {
		t.Fatalf("%d of %d concurrent Stops returned true, want 1", stopped, n)
	}
	lab.h.Advance(2 * time.Hour)
	lab.expect("a")
}

// A Stop racing with the timer's deadline either wins (true, nothing is
// delivered) or loses (false, the delivery happens): never both.
func TestTimerStopRacingItsDeadline(t *testing.T) {
	lab := newTimerLab(t)
	const rounds = 200
	for i := range rounds {
		var tm engine.Timer
		lab.do("a", func(c *engine.Context) { tm, _ = c.After(time.Millisecond, []byte("x")) })
		stopped := make(chan bool)
		go func() { stopped <- tm.Stop() }()
		lab.h.Advance(time.Millisecond)
		ok := <-stopped
		lab.step(0)
		want := i + 1
		if ok {
			want = i
		}
		lab.mu.Lock()
		got := len(lab.log["a"])
		lab.mu.Unlock()
		if got != want {
			t.Fatalf("round %d: Stop returned %v and the agent has %d deliveries, want %d", i, ok, got, want)
		}
		if ok {
			lab.mu.Lock()
			lab.log["a"] = append(lab.log["a"], "stopped") // keep the count in step
			lab.mu.Unlock()
		}
	}
}

// Every: while the loop is busy past several due times, the missed ticks
// become one late tick, and the schedule resumes in its first phase.
func TestEverySkipsMissedTicks(t *testing.T) {
	lab := newTimerLab(t)
	lab.h.Advance(300 * time.Millisecond) // off the second, to see the phase
	lab.do("a", func(c *engine.Context) {
		if _, err := c.Every(time.Second, []byte("tick")); err != nil {
			t.Error(err)
		}
	})
	lab.h.Advance(2 * time.Second) // ticks at 1.3s and 2.3s
	lab.do("a", func(*engine.Context) {
		lab.h.Clock.Advance(3500 * time.Millisecond) // a handler that runs until 5.8s
	})
	lab.h.Advance(2 * time.Second)
	lab.expect("a", "1.3s tick", "2.3s tick", "5.8s tick", "6.3s tick", "7.3s tick")
}

// A timer delivers to the incarnation that armed it: once the agent
// terminated, a new agent of the same ID gets none of its ticks.
func TestTimersEndWithTheirAgent(t *testing.T) {
	lab := newTimerLab(t)
	var every, after, cron engine.Timer
	lab.do("a", func(c *engine.Context) {
		every, _ = c.Every(time.Second, []byte("every"))
		after, _ = c.After(1500*time.Millisecond, []byte("after"))
		cron, _ = c.Cron("@every 1s", []byte("cron"))
	})
	lab.h.Advance(time.Second)
	lab.expect("a", "1s every", "1s cron")
	lab.do("a", func(c *engine.Context) { c.Terminate() })
	lab.do("a", func(*engine.Context) {}) // a new incarnation
	lab.h.Advance(time.Minute)
	lab.expect("a", "1s every", "1s cron")
	for name, tm := range map[string]engine.Timer{"Every": every, "After": after, "Cron": cron} {
		if tm.Stop() {
			t.Errorf("Stop of the %s timer of a terminated agent, after its due time: true, want false", name)
		}
	}
	lab.mu.Lock()
	defer lab.mu.Unlock()
	if lab.inits["a"] != 2 {
		t.Fatalf("%d incarnations, want 2", lab.inits["a"])
	}
}

// A Stop does not take back a tick already handed over, and no tick due
// after it arrives. Both timers fall due at 1s on one loop: the ticker's
// tick is handed over with the stopper's message, whichever agent runs
// first.
func TestEveryStopDoesNotRecallAHandedOverTick(t *testing.T) {
	lab := newTimerLab(t)
	var tm engine.Timer
	lab.do("ticker", func(c *engine.Context) { tm, _ = c.Every(time.Second, []byte("tick")) })
	stopped := make(chan bool, 1)
	lab.on("stopper", func(*engine.Context, engine.Message) { stopped <- tm.Stop() })
	lab.do("stopper", func(c *engine.Context) { _, _ = c.After(time.Second, []byte("stop")) })
	lab.h.Advance(time.Second)
	select {
	case ok := <-stopped:
		if !ok {
			t.Fatal("Stop between ticks returned false")
		}
	default:
		t.Fatal("the stopper's timer did not fire")
	}
	lab.h.Advance(time.Minute)
	lab.expect("ticker", "1s tick")
	lab.expect("stopper", "1s stop")
}

// On the system clock too (the real timing wheel, a real park), a deadline
// past the end of time never fires, and a timer behind it does.
func TestAfterPastEndOfTimeNeverFiresOnTheSystemClock(t *testing.T) {
	e, err := engine.New(engine.WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 16)
	var never []engine.Timer
	arm := func(c *engine.Context, m engine.Message) {
		if string(m.Payload) != "arm" {
			out <- string(m.Payload)
			return
		}
		for _, f := range []func(time.Duration, []byte) (engine.Timer, error){c.After, c.Every} {
			tm, err := f(math.MaxInt64, []byte("never"))
			if err != nil {
				t.Error(err)
			}
			never = append(never, tm)
		}
		if _, err := c.After(60*time.Millisecond, []byte("soon")); err != nil { // on the wheel
			t.Error(err)
		}
		out <- "armed"
	}
	if err := e.Register("wall", func() engine.Agent { return timerFuncAgent(arm) }); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	if err := e.SendID(engine.AgentID{Type: "wall", Key: "1"}, []byte("arm")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"armed", "soon"} {
		select {
		case got := <-out:
			if got != want {
				t.Fatalf("received %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %q", want)
		}
	}
	for _, tm := range never { // read after out's receive: the loop wrote them before
		if !tm.Stop() {
			t.Error("Stop of a never-firing timer returned false")
		}
	}
}

// timerFuncAgent is an agent made of its Receive method.
type timerFuncAgent func(c *engine.Context, m engine.Message)

func (f timerFuncAgent) Receive(c *engine.Context, m engine.Message) { f(c, m) }
