package bench

import (
	"context"
	"flag"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/gateway"
)

// W7, the idle engine: w7IdleTimers timers of w7IdleDelay armed by
// w7IdleAgents agents on 2 loops, then nothing to do until they are due.
// BenchmarkW7_IdleArmedTimers waits until the engine is idle, collects
// the garbage of the arming, and measures the process CPU time over a
// window of wall time: cpu-% is that time as a percentage of one core
// (the target is ≤ 0.1 %). The window is -w7.idle (5 s), or N × 100 ms
// under -benchtime Nx, so that `-benchtime 1x` takes 100 ms of it:
//
//	go test -run '^$' -bench '^BenchmarkW7_IdleArmedTimers$' ./bench -w7.idle 10s
var w7IdleWindow = flag.Duration("w7.idle", 5*time.Second,
	"W7: wall time over which BenchmarkW7_IdleArmedTimers measures the idle engine's CPU (under -benchtime Nx: N × 100 ms)")

const (
	w7IdleTimers = 1_000_000
	w7IdleAgents = 1000
	w7IdleDelay  = time.Hour
	w7IdleSlice  = 100 * time.Millisecond // the window per iteration under -benchtime Nx
)

// w7Idler arms its share of the timers on its first message and reports
// how many it armed; a timer firing (within the hour) is another message,
// which the benchmark sees in the engine's counts.
type w7Idler struct{ armed chan<- int }

func (a *w7Idler) Receive(c *engine.Context, m engine.Message) {
	if m.Payload != nil {
		return
	}
	n := 0
	for range w7IdleTimers / w7IdleAgents {
		if _, err := c.After(w7IdleDelay, payload); err != nil {
			break
		}
		n++
	}
	a.armed <- n
}

// w7IdleWindowFor is the measured window of a run of n iterations.
func w7IdleWindowFor(n int) time.Duration {
	if f := flag.Lookup("test.benchtime"); f != nil && strings.HasSuffix(f.Value.String(), "x") {
		return time.Duration(n) * w7IdleSlice
	}
	return *w7IdleWindow
}

func BenchmarkW7_IdleArmedTimers(b *testing.B) {
	b.ReportAllocs()
	window := w7IdleWindowFor(b.N)
	e := newEngine(b, 2)
	armed := make(chan int, w7IdleAgents)
	must(b, e.Register("idle", func() engine.Agent { return &w7Idler{armed: armed} }))
	must(b, e.Start())
	for a := range w7IdleAgents {
		must(b, e.SendID(engine.AgentID{Type: "idle", Key: strconv.Itoa(a)}, nil))
	}
	total := 0
	for range w7IdleAgents {
		total += <-armed
	}
	if total != w7IdleTimers {
		b.Fatalf("%d timers armed, want %d", total, w7IdleTimers)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(b, e.WaitIdle(ctx))
	st := e.Stats()
	for _, l := range st.Loops {
		if l.Processed == 0 {
			b.Fatalf("loop %d runs none of the agents: the timers are not spread over the loops", l.Loop)
		}
	}
	before := st.Processed
	// The arming's garbage collected and its memory returned now, so
	// that neither the collector nor the scavenger bills the window; and
	// the loops Stats woke back asleep.
	debug.FreeOSMemory()
	must(b, e.WaitIdle(ctx))

	b.ResetTimer()
	cpu0, t0 := gateway.CPUTime(), time.Now()
	time.Sleep(window)
	cpu, wall := gateway.CPUTime()-cpu0, time.Since(t0)
	b.StopTimer()
	if after := e.Stats().Processed; after != before {
		b.Fatalf("%d messages handled while idle: a timer of %v fired within %v", after-before, w7IdleDelay, wall)
	}
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
}
