package gateway_test

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/gateway"
)

// chanWriter hands each line written to it to a channel (a write is a
// whole line, as the live lines are).
type chanWriter chan string

func (w chanWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// stall is an agent that, on its first message, blocks its loop until
// release closes, closing holding as it starts to.
type stall struct {
	once             *sync.Once
	holding, release chan struct{}
}

func (s *stall) Receive(*engine.Context, engine.Message) {
	s.once.Do(func() { close(s.holding) })
	<-s.release
}

// TestLiveP99IsPerInterval stalls the only loop early in a run (at the
// first feature vector of dev-0, about 20 ms in, until 150 ms): the
// second interval's p99 shows the stall, and the intervals after it show
// the quiet pipeline again, in the live lines and in the summary's
// latency-over-time table, instead of a p99 "so far" that the stall pins.
//
// The clock moves in lockstep with the pipeline: after each move the test
// waits for the engine to finish what it was handed (except while the
// stall holds it), and at each interval's end for its live line; the
// stall ends at 150 ms on the clock exactly. Outside
// the stall a latency is then at most one step of the producer's schedule
// (500 µs), whatever the machine's speed.
func TestLiveP99IsPerInterval(t *testing.T) {
	cfg := smallMix(t)
	cfg.SetDevices(10, "test")
	cfg.Load.Rate = 2000 // one message per 500 µs
	cfg.Load.Duration = 500 * time.Millisecond
	cfg.Load.Loops = 1
	cfg.Load.Producers = 1
	const (
		interval = 100 * time.Millisecond
		n        = 5 // intervals in the window
		stallEnd = 150 * time.Millisecond
	)
	clk := newStepClock()
	origin := clk.Now() // the clock moves only to alarms, which the load sets
	holding, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	releaseStall := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseStall()
	var eng atomic.Pointer[engine.Engine]
	lines := make(chanWriter, 2*n)
	opts := gateway.Options{Live: lines, Interval: interval, Clock: clk, OnEngine: func(e *engine.Engine) (func(), error) {
		var once sync.Once
		if err := e.Register("stall", func() engine.Agent { return &stall{once: &once, holding: holding, release: release} }); err != nil {
			return nil, err
		}
		if err := e.SubscribeAgent("features.dev-0", engine.AgentID{Type: "stall", Key: "0"}); err != nil {
			return nil, err
		}
		eng.Store(e)
		return releaseStall, nil
	}}
	var (
		sum gateway.Summary
		err error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sum, err = gateway.Run(context.Background(), cfg, opts)
	}()

	released := false
	// settle waits until the engine has processed what it was handed, or
	// the stall holds it.
	settle := func() {
		e := eng.Load()
		if e == nil {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if !released {
			go func() {
				select {
				case <-holding:
					cancel()
				case <-ctx.Done():
				}
			}()
		}
		_ = e.WaitIdle(ctx)
	}
	var live []string
	// waitLine waits for the live line of an interval whose end the clock
	// has reached, firing the live alarm if it was set only after the move.
	waitLine := func() {
		for {
			select {
			case l := <-lines:
				live = append(live, l)
				return
			case <-clk.armed:
				clk.Set(clk.Now())
			case <-done:
				return
			}
		}
	}
	// Until the last line, the producer and the live sampling each have an
	// alarm set whenever they wait: the clock moves only once both have, so
	// that it never jumps past the producer's schedule.
	for k := time.Duration(1); k <= n; {
		if clk.pending.Load() < 2 {
			select {
			case <-clk.armed:
				continue
			case <-done:
			}
			break
		}
		next, _ := clk.Next()
		// Never past the end of an interval without its line, nor past
		// the stall's end without releasing it.
		lineAt, stallAt := origin.Add(k*interval), origin.Add(stallEnd)
		next = minTime(next, lineAt)
		if !released {
			next = minTime(next, stallAt)
		}
		clk.Set(next)
		if !released && next.Equal(stallAt) {
			releaseStall()
			released = true
		}
		settle()
		if next.Equal(lineAt) {
			waitLine()
			k++
		}
	}
	<-done // the window has ended: the drain finds the queues empty
	if err != nil {
		t.Fatal(err)
	}

	// The live lines: one per interval, the second's p99 that of the
	// stall (its messages waited 30 ms at the least), the others' at most
	// a step of the schedule.
	p99 := regexp.MustCompile(`p99 +(\S+)ms `)
	if len(live) != n {
		t.Fatalf("%d live lines, want %d:\n%s", len(live), n, strings.Join(live, ""))
	}
	for i, l := range live {
		m := p99.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("live line %q has no p99 in ms", l)
		}
		ms, _ := strconv.ParseFloat(m[1], 64)
		if i == 1 && ms < 30 || i != 1 && ms > 1 {
			t.Errorf("interval %d: live p99 %vms, want %s:\n%s", i+1, ms, map[bool]string{true: "≥ 30ms (the stall)", false: "≤ 1ms"}[i == 1], strings.Join(live, ""))
		}
	}
	if len(sum.Intervals) != n {
		t.Fatalf("%d intervals in the summary, want %d: %+v", len(sum.Intervals), n, sum.Intervals)
	}
	var measured int64
	for i, iv := range sum.Intervals {
		if iv.At != time.Duration(i+1)*interval || iv.Span != interval || iv.Latency.Count == 0 {
			t.Errorf("interval %d: at %v, span %v, %d measured", i+1, iv.At, iv.Span, iv.Latency.Count)
		}
		if stalled := iv.Latency.P99 >= 30*time.Millisecond; stalled != (i == 1) || !stalled && iv.Latency.Max > time.Millisecond {
			t.Errorf("interval %d: p99 %v, max %v", i+1, iv.Latency.P99, iv.Latency.Max)
		}
		measured += iv.Latency.Count
	}
	if measured > sum.Latency.Count {
		t.Errorf("the intervals measured %d, the run %d", measured, sum.Latency.Count)
	}
	if sum.Latency.P99 < 30*time.Millisecond {
		t.Errorf("the run's p99 %v misses the stall", sum.Latency.P99)
	}

	// The summary's table: a row per interval, the same figures.
	var out bytes.Buffer
	sum.Print(&out)
	table := out.String()[strings.Index(out.String(), "latency over time"):]
	rows := regexp.MustCompile(`(?m)^ +\d+s +\d+ +(\S+)ms +(\S+)ms +(\S+)ms +(\d+)$`).FindAllStringSubmatch(table, -1)
	if len(rows) != n {
		t.Fatalf("%d rows in the table, want %d:\n%s", len(rows), n, out.String())
	}
	for i, r := range rows {
		if got, want := r[2], gateway.FormatLatency(sum.Intervals[i].Latency.P99, 1); got+"ms" != want {
			t.Errorf("row %d: p99 %sms, want %s", i+1, got, want)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
