package engine

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// timerLog records timer deliveries: payload and wall-clock time.
type timerLog struct {
	mu   sync.Mutex
	seen []string
	at   map[string][]time.Time
}

func (l *timerLog) add(p string) {
	now := time.Now().Round(0) // wall clock, as the engine schedules on it
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, p)
	if l.at == nil {
		l.at = map[string][]time.Time{}
	}
	l.at[p] = append(l.at[p], now)
}

func (l *timerLog) count(p string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.at[p])
}

func (l *timerLog) times(p string) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at[p]...)
}

// TestAfterFiresOnce: After delivers its payload once, as a message with no
// topic and no sender, and not again before a later timer.
func TestAfterFiresOnce(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	var log timerLog
	done := make(chan struct{})
	bad := make(chan string, 4)
	var tm Timer
	mustRegister(t, e, "t", recvAgent(func(c *Context, m Message) {
		p := string(m.Payload)
		switch p {
		case "start":
			var err error
			if tm, err = c.After(5*time.Millisecond, []byte("once")); err != nil {
				bad <- err.Error()
			}
			if _, err := c.After(40*time.Millisecond, []byte("sync")); err != nil {
				bad <- err.Error()
			}
			return
		}
		if m.Topic != "" || !m.Sender.IsZero() {
			bad <- fmt.Sprintf("timer message %q has topic %q sender %v", p, m.Topic, m.Sender.ID())
		}
		log.add(p)
		if p == "sync" {
			close(done)
		}
	}))
	if err := e.SendID(AgentID{"t", "1"}, []byte("start")); err != nil {
		t.Fatal(err)
	}
	wait(t, done, "the later timer")
	stop(t, e)
	select {
	case msg := <-bad:
		t.Fatal(msg)
	default:
	}
	if log.seen[0] != "once" || log.count("once") != 1 {
		t.Fatalf("deliveries %q, want once then sync", log.seen)
	}
	if tm.Stop() {
		t.Fatal("Stop of a timer that has fired returned true")
	}
}

// TestTimerStopBeforeFire: a stopped After never fires.
func TestTimerStopBeforeFire(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	var log timerLog
	done := make(chan struct{})
	results := make(chan [2]bool, 1)
	mustRegister(t, e, "t", recvAgent(func(c *Context, m Message) {
		switch p := string(m.Payload); p {
		case "start":
			short, _ := c.After(2*time.Millisecond, []byte("short"))
			long, _ := c.After(200*time.Millisecond, []byte("long")) // on the wheel
			c.After(30*time.Millisecond, []byte("sync"))
			results <- [2]bool{short.Stop(), long.Stop()}
		default:
			log.add(p)
			if p == "sync" {
				close(done)
			}
		}
	}))
	if err := e.SendID(AgentID{"t", "1"}, []byte("start")); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, results, "Stop results"); !r[0] || !r[1] {
		t.Fatalf("Stop of armed timers returned %v, want true, true", r)
	}
	wait(t, done, "sync timer")
	stop(t, e)
	if !slices.Equal(log.seen, []string{"sync"}) {
		t.Fatalf("deliveries %q, want only sync", log.seen)
	}
}

// TestEveryStoppedInHandler: Every fires repeatedly; stopped from the
// handler of its fifth tick, it delivers nothing more.
func TestEveryStoppedInHandler(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	var log timerLog
	done := make(chan struct{})
	var ticker Timer
	var stopped atomic.Bool
	var startAt time.Time
	mustRegister(t, e, "t", recvAgent(func(c *Context, m Message) {
		switch p := string(m.Payload); p {
		case "start":
			startAt = time.Now().Round(0)
			ticker, _ = c.Every(3*time.Millisecond, []byte("tick"))
		case "tick":
			log.add(p)
			if log.count("tick") == 5 {
				stopped.Store(ticker.Stop())
				c.After(30*time.Millisecond, []byte("sync")) // ten periods later
			}
		case "sync":
			close(done)
		}
	}))
	if err := e.SendID(AgentID{"t", "1"}, []byte("start")); err != nil {
		t.Fatal(err)
	}
	wait(t, done, "sync")
	stop(t, e)
	if !stopped.Load() {
		t.Fatal("Stop of a running Every returned false")
	}
	if n := log.count("tick"); n != 5 {
		t.Fatalf("%d ticks, want 5 (none after Stop)", n)
	}
	if ticker.Stop() {
		t.Fatal("second Stop returned true")
	}
	// Tick k is due k periods after Every was called, never earlier.
	for i, at := range log.times("tick") {
		if due := startAt.Add(time.Duration(i+1) * 3 * time.Millisecond); at.Before(due) {
			t.Errorf("tick %d came %v early", i+1, due.Sub(at))
		}
	}
}

// TestEveryStoppedFromOutside: Timer.Stop is safe from another goroutine;
// after it returns and the mailbox has been flushed, the count stays put.
func TestEveryStoppedFromOutside(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	var log timerLog
	timers := make(chan Timer, 1)
	ticks := make(chan struct{}, 100)
	counts := make(chan int, 2)
	mustRegister(t, e, "t", recvAgent(func(c *Context, m Message) {
		switch p := string(m.Payload); p {
		case "start":
			tm, _ := c.Every(2*time.Millisecond, []byte("tick"))
			timers <- tm
		case "tick":
			log.add(p)
			select {
			case ticks <- struct{}{}:
			default:
			}
		case "sync1":
			counts <- log.count("tick")
			c.After(25*time.Millisecond, []byte("sync2"))
		case "sync2":
			counts <- log.count("tick")
		}
	}))
	r := mustSpawn(t, e, AgentID{"t", "1"}, OnLoop(1))
	if err := r.Send([]byte("start")); err != nil {
		t.Fatal(err)
	}
	tm := wait(t, timers, "timer")
	for i := 0; i < 3; i++ {
		wait(t, ticks, "tick")
	}
	if !tm.Stop() {
		t.Fatal("Stop of a running Every returned false")
	}
	if err := r.Send([]byte("sync1")); err != nil {
		t.Fatal(err)
	}
	c1 := wait(t, counts, "count at sync1")
	c2 := wait(t, counts, "count at sync2")
	stop(t, e)
	if c1 < 3 || c2 != c1 {
		t.Fatalf("ticks at the first sync point %d, at the second %d: want ≥ 3 and unchanged", c1, c2)
	}
}

// TestTimersOfTerminatedAgentNeverFire: timers of an agent that terminated
// are dropped: neither the old incarnation nor a new one with the same ID
// receives them, and they are not dead letters either.
func TestTimersOfTerminatedAgentNeverFire(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	rec := newRecorder()
	e.Use(rec)
	var log timerLog
	done := make(chan struct{})
	terminated := make(chan struct{}, 2)
	mustRegister(t, e, "t", func() Agent {
		return &fn{
			recv: func(c *Context, m Message) {
				switch p := string(m.Payload); p {
				case "start":
					c.After(20*time.Millisecond, []byte("late"))
					c.After(90*time.Millisecond, []byte("wheel")) // beyond 50 ticks
					c.Every(3*time.Millisecond, []byte("tick"))
					c.Terminate()
				default:
					log.add(c.ID().Key + ":" + p)
				}
			},
			terminate: func(*Context) { terminated <- struct{}{} },
		}
	})
	mustRegister(t, e, "witness", recvAgent(func(c *Context, m Message) {
		if string(m.Payload) == "start" {
			c.After(130*time.Millisecond, []byte("sync"))
			return
		}
		close(done)
	}))
	id := AgentID{"t", "1"}
	if err := e.SendID(id, []byte("start")); err != nil {
		t.Fatal(err)
	}
	wait(t, terminated, "termination")
	eventually(t, "the agent leaves the registry", func() bool {
		_, err := e.Lookup(id)
		return err != nil
	}, waitTimeout)
	// A new incarnation under the same ID.
	if err := e.SendID(id, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := e.SendID(AgentID{"witness", "1"}, []byte("start")); err != nil {
		t.Fatal(err)
	}
	wait(t, done, "witness timer")
	stop(t, e)
	if !slices.Equal(log.seen, []string{"1:hello"}) {
		t.Fatalf("deliveries %q, want only the new incarnation's hello", log.seen)
	}
	for _, d := range rec.deadLetters() {
		t.Errorf("dead letter %q: a dropped timer is not a dead letter", d.Message.Payload)
	}
}

// TestTimersNeverEarly schedules short timers (on the precise heap) and
// long ones (more than 50 wheel ticks away: through the wheel), one-shot
// and periodic, and checks that none is delivered before its due time.
func TestTimersNeverEarly(t *testing.T) {
	e := startedEngine(t, WithLoops(2), WithTimerTick(time.Millisecond))
	type sched struct {
		name string
		at   time.Time
		d    time.Duration
	}
	var mu sync.Mutex
	var scheds []sched
	var log timerLog
	const periodic = 60 * time.Millisecond
	done := make(chan struct{})
	var every Timer
	mustRegister(t, e, "t", recvAgent(func(c *Context, m Message) {
		p := string(m.Payload)
		if p == "start" {
			for _, d := range []time.Duration{1, 2, 3, 5, 5, 5, 8, 13, 55, 80, 80, 120} {
				d *= time.Millisecond
				name := fmt.Sprintf("after-%v-%d", d, len(scheds))
				mu.Lock()
				scheds = append(scheds, sched{name, time.Now().Round(0), d})
				mu.Unlock()
				c.After(d, []byte(name))
			}
			mu.Lock()
			scheds = append(scheds, sched{"every", time.Now().Round(0), periodic})
			mu.Unlock()
			every, _ = c.Every(periodic, []byte("every"))
			return
		}
		log.add(p)
		if p == "every" && log.count("every") == 3 {
			every.Stop()
			close(done)
		}
	}))
	if err := e.SendID(AgentID{"t", "1"}, []byte("start")); err != nil {
		t.Fatal(err)
	}
	wait(t, done, "three periodic ticks")
	stop(t, e)
	mu.Lock()
	defer mu.Unlock()
	for _, s := range scheds {
		ts := log.times(s.name)
		want := 1
		if s.name == "every" {
			want = 3
		}
		if len(ts) != want {
			t.Errorf("%s: delivered %d times, want %d", s.name, len(ts), want)
			continue
		}
		for k, at := range ts {
			due := s.at.Add(time.Duration(k+1) * s.d)
			if at.Before(due) {
				t.Errorf("%s #%d: delivered %v early", s.name, k+1, due.Sub(at))
			}
			if late := at.Sub(due); late > 500*time.Millisecond {
				t.Errorf("%s #%d: delivered %v late", s.name, k+1, late)
			}
		}
	}
	if t.Failed() {
		t.Logf("deliveries: %s", strings.Join(log.seen, " "))
	}
}

// TestManyStoppedTimers: stopping many armed timers and letting the loop
// compact them (down to an empty heap) keeps the loop and later timers
// working.
func TestManyStoppedTimers(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	done := make(chan struct{})
	var tms []Timer
	mustRegister(t, e, "t", recvAgent(func(c *Context, m Message) {
		switch string(m.Payload) {
		case "arm":
			for i := 0; i < 200; i++ {
				tm, _ := c.After(40*time.Millisecond, []byte("never")) // heap: under 50 ticks
				tms = append(tms, tm)
			}
			for _, tm := range tms {
				tm.Stop()
			}
			c.Send(c.Self(), []byte("turn")) // a turn with only stopped timers queued
		case "turn":
			c.After(2*time.Millisecond, []byte("ping"))
		case "ping":
			close(done)
		case "never":
			t.Error("a stopped timer fired")
		}
	}))
	if err := e.SendID(AgentID{"t", "1"}, []byte("arm")); err != nil {
		t.Fatal(err)
	}
	wait(t, done, "a timer after the stopped ones were compacted")
	eventually(t, "the stopped timers leave the heap", func() bool { return e.Stats().Loops[0].Timers == 0 }, waitTimeout)
	stop(t, e)
}

// TestStaleTimerHandleStopsNothing: a Timer whose delivery has happened
// stops nothing afterwards, even when the engine reuses its storage for a
// newer timer: the newer timer still fires.
func TestStaleTimerHandleStopsNothing(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	const rounds = 50
	done := make(chan struct{})
	bad := make(chan string, rounds)
	var old Timer
	var n atomic.Int32
	mustRegister(t, e, "t", recvAgent(func(c *Context, m Message) {
		switch string(m.Payload) {
		case "start", "next":
			old, _ = c.After(time.Millisecond, []byte("fired"))
		case "fired":
			// old has fired: its storage may now back the next timer.
			c.After(time.Millisecond, []byte("next-fired"))
			if old.Stop() {
				bad <- "Stop of a fired timer returned true"
			}
		case "next-fired":
			if n.Add(1) == rounds {
				close(done)
				return
			}
			c.Send(c.Self(), []byte("next"))
		}
	}))
	if err := e.SendID(AgentID{"t", "1"}, []byte("start")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case msg := <-bad:
		t.Fatal(msg)
	case <-time.After(waitTimeout):
		t.Fatalf("after %d rounds a newer timer never fired: a stale handle stopped it", n.Load())
	}
	stop(t, e)
}
