package gateway_test

import (
	"bytes"
	"context"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
	"github.com/agentloop/agentloop/gateway"
)

// stepClock is enginetest's manual clock that signals each alarm set on
// it, so that a test can move it from alarm to alarm.
type stepClock struct {
	*enginetest.Clock
	armed   chan struct{} // one value stands for any number of alarms set
	pending atomic.Int64  // alarms set and neither fired nor stopped
}

func newStepClock() *stepClock {
	return &stepClock{Clock: enginetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), armed: make(chan struct{}, 1)}
}

func (c *stepClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.pending.Add(1)
	stop := c.Clock.AfterFunc(d, func() {
		c.pending.Add(-1)
		f()
	})
	select {
	case c.armed <- struct{}{}:
	default:
	}
	return func() bool {
		if stop() {
			c.pending.Add(-1)
			return true
		}
		return false
	}
}

// drive moves the clock to each alarm due by end, in order, as they are
// set, until done closes. Alarms past end (the drain limit) never fire.
//
// A producer reads the clock and then sets its alarm for the next message
// (at most one message's interval away) relative to the clock's time by
// then, which may have moved on: an alarm can land a little past the
// window. end is the window plus slack for that, under the grace the
// producers give the window's end (20 ms), so that the clock never moves
// far enough to cut a producer short.
func (c *stepClock) drive(end time.Time, done <-chan struct{}) {
	for {
		for {
			next, ok := c.Next()
			if !ok || next.After(end) {
				break
			}
			c.Set(next)
		}
		select {
		case <-done:
			return
		case <-c.armed:
		}
	}
}

// runOnClock runs cfg (on the engine, or the baseline) under a manual
// clock moved only within the window: the producers offer every message of
// the window and the drain waits for the queues to empty, so the counts of
// the summary depend on neither the machine's speed nor its load.
func runOnClock(t *testing.T, cfg *gateway.Config, baseline bool, opts gateway.Options) gateway.Summary {
	t.Helper()
	clk := newStepClock()
	opts.Clock = clk
	var (
		sum gateway.Summary
		err error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sum, err = gateway.RunnerFor(cfg, baseline, opts)(context.Background(), cfg.Load.Rate)
	}()
	clk.drive(clk.Now().Add(cfg.Load.Duration+10*time.Millisecond), done)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// smallMix is 100 devices at 20 000 msgs/s for 500 ms: 10 000 telemetry
// messages, 100 per device, a feature vector every 5th.
func smallMix(t *testing.T) *gateway.Config {
	t.Helper()
	cfg, err := gateway.LoadFile("testdata/valid_small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetDevices(100, "test")
	cfg.Load.Rate = 20000
	cfg.Load.Duration = 500 * time.Millisecond
	cfg.Load.Loops = 2
	cfg.Load.Producers = 2
	cfg.Type(gateway.Device).FeatureEvery = 5
	for _, k := range []gateway.Kind{gateway.Device, gateway.Feature, gateway.Inference} {
		cfg.Type(k).Mailbox = 4096 // room for the whole run: nothing is dropped
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkDelivered checks a run of smallMix: every message offered, each
// processed by its device, every feature vector aggregated and measured,
// nothing dropped, the window as configured.
func checkDelivered(t *testing.T, s gateway.Summary, system string) {
	t.Helper()
	const due, vectors = 10000, 2000 // 100 messages per device: 20 vectors each, whatever its phase
	if s.System != system || s.Offered != 20000 || s.Agents != 104 {
		t.Errorf("system %q, offered %v, %d agents", s.System, s.Offered, s.Agents)
	}
	if s.Emitted != due || s.Backlog != 0 || s.Refused != 0 {
		t.Errorf("emitted %d, backlog %d, refused %d: want %d emitted", s.Emitted, s.Backlog, s.Refused, due)
	}
	if s.Processed != due || s.Dropped != 0 || !s.Drained {
		t.Errorf("processed %d, dropped %d, drained %v: want %d processed", s.Processed, s.Dropped, s.Drained, due)
	}
	if s.Latency.Count != vectors {
		t.Errorf("%d latencies measured, want one per feature vector: %d", s.Latency.Count, vectors)
	}
	if !(s.Latency.P50 > 0 && s.Latency.P50 <= s.Latency.P99 && s.Latency.P99 <= s.Latency.P999 && s.Latency.P999 <= s.Latency.Max) {
		t.Errorf("percentiles out of order: %+v", s.Latency)
	}
	// The window is the clock's, and the drain took no time on it (the
	// clock ends within drive's slack past the window).
	if s.Window != 500*time.Millisecond || s.Elapsed < s.Window || s.Elapsed > s.Window+10*time.Millisecond ||
		s.Achieved != float64(s.Processed)/s.Elapsed.Seconds() {
		t.Errorf("window %v, elapsed %v, achieved %v", s.Window, s.Elapsed, s.Achieved)
	}
	if s.Alerts == 0 { // the producers' readings spike past the alert level one in 2048
		t.Error("no alert reached the alert agents")
	}
	if !s.Pass(time.Minute, 0.98) {
		t.Errorf("a run that delivered everything does not pass: %+v", s)
	}
}

func TestRunDeliversEveryMessage(t *testing.T) {
	cfg := smallMix(t)
	var live bytes.Buffer
	var hooked, unhooked atomic.Bool
	opts := gateway.Options{Live: &live, Interval: 100 * time.Millisecond, Prefix: "> ",
		OnEngine: func(e *engine.Engine) (func(), error) {
			if n := e.Stats().Agents; n != 104 {
				t.Errorf("%d agents when the hook runs, want 104", n)
			}
			hooked.Store(true)
			return func() { unhooked.Store(true) }, nil
		},
	}
	s := runOnClock(t, cfg, false, opts)
	checkDelivered(t, s, "agentloop")
	if !hooked.Load() || !unhooked.Load() {
		t.Error("OnEngine or its stop function was not called")
	}
	checkLiveLines(t, live.String(), "> ", 5)
}

// checkLiveLines checks the live lines of a window of n intervals: one
// at least (the last falls due as the load ends), at most n (a line
// written late stands for the intervals it missed), each with every
// figure.
func checkLiveLines(t *testing.T, live, prefix string, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(live, "\n"), "\n")
	if live == "" || len(lines) > n {
		t.Fatalf("%d live lines, want 1 to %d:\n%s", len(lines), n, live)
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) +
		`t= +\d+s +\d+ msgs/s  p99 +\S+  agents +104  queued +\d+  dropped +0  cpu +\S+%$`)
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("live line %q does not match %s", l, re)
		}
	}
}

func TestRunIngressRoute(t *testing.T) {
	cfg := smallMix(t)
	cfg.Load.Ingress = gateway.Route
	checkDelivered(t, runOnClock(t, cfg, false, gateway.Options{}), "agentloop")
}

func TestRunBaselineDeliversEveryMessage(t *testing.T) {
	var live bytes.Buffer
	s := runOnClock(t, smallMix(t), true, gateway.Options{Live: &live, Interval: 100 * time.Millisecond})
	checkDelivered(t, s, "goroutines")
	checkLiveLines(t, live.String(), "", 5)
}

// TestRunLiveLineAtWindowEnd: a window of 1.1 intervals gets one line,
// stamped with its interval, even when the line falls due together with
// the end of the load.
func TestRunLiveLineAtWindowEnd(t *testing.T) {
	for _, baseline := range []bool{false, true} {
		for _, window := range []time.Duration{1100 * time.Millisecond, time.Second, 999 * time.Millisecond} {
			cfg := smallMix(t)
			cfg.Load.Rate = 1000
			cfg.Load.Duration = window
			var live bytes.Buffer
			runOnClock(t, cfg, baseline, gateway.Options{Live: &live})
			want := 1
			if window < time.Second {
				want = 0
			}
			if n := strings.Count(live.String(), "\n"); n != want || want == 1 && !strings.HasPrefix(live.String(), "t=   1s ") {
				t.Errorf("baseline %v, window %v: %d lines, want %d:\n%s", baseline, window, n, want, live.String())
			}
		}
	}
}

// sink is an agent that holds its first message until release closes:
// the engine is never idle while it does.
type sink struct{ release <-chan struct{} }

func (s *sink) Receive(*engine.Context, engine.Message) { <-s.release }

// TestRunDrainLimit: the queues get a quarter of the window, at least
// 200 ms and at most 2 s, to empty; then the run ends and says it did not
// drain. An agent that holds a message (the first feature vector of
// dev-0) keeps the engine busy past any limit.
func TestRunDrainLimit(t *testing.T) {
	for _, c := range []struct{ window, limit time.Duration }{
		{400 * time.Millisecond, 200 * time.Millisecond},
		{4 * time.Second, time.Second},
		{10 * time.Second, 2 * time.Second},
	} {
		cfg := smallMix(t)
		// 800 messages a window: 8 for dev-0, whose first feature vector
		// is its 5th (and each message costs the clock a step).
		cfg.Load.Rate = int(800 / c.window.Seconds())
		cfg.Load.Duration = c.window
		release := make(chan struct{})
		opts := gateway.Options{Clock: newStepClock(), OnEngine: func(e *engine.Engine) (func(), error) {
			if err := e.Register("sink", func() engine.Agent { return &sink{release: release} }); err != nil {
				return nil, err
			}
			if err := e.SubscribeAgent("features.dev-0", engine.AgentID{Type: "sink", Key: "0"}); err != nil {
				return nil, err
			}
			return func() { close(release) }, nil
		}}
		clk := opts.Clock.(*stepClock)
		var (
			s   gateway.Summary
			err error
		)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s, err = gateway.Run(context.Background(), cfg, opts)
		}()
		clk.drive(clk.Now().Add(time.Hour), done) // every alarm, the drain limit's too
		if err != nil {
			t.Fatal(err)
		}
		if s.Drained || s.Elapsed < c.window+c.limit || s.Elapsed > c.window+c.limit+10*time.Millisecond {
			t.Errorf("window %v: drained %v after %v, want the limit %v to end the drain", c.window, s.Drained, s.Elapsed, c.limit)
		}
		if s.Emitted != 800 {
			t.Errorf("window %v: emitted %d", c.window, s.Emitted)
		}
	}
}

// TestOptionalFieldDefaults checks the defaults the README's table
// promises for every optional field.
func TestOptionalFieldDefaults(t *testing.T) {
	cfg, err := gateway.Parse("min.yaml", []byte(validConfig))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Load
	if l.Duration != 10*time.Second || l.Producers != 2 || l.Loops != 0 || l.Sensors != 4 || l.Ingress != gateway.Publish {
		t.Errorf("load defaults %+v, want 10s, 2 producers, 0 loops, 4 sensors, publish", l)
	}
	for _, a := range cfg.Agents {
		if a.Priority != 50 || a.Mailbox != 4096 || gateway.OverflowName(a.Overflow) != "drop-newest" {
			t.Errorf("%s: priority %d, mailbox %d, overflow %s; want 50, 4096, drop-newest", a.Name, a.Priority, a.Mailbox, gateway.OverflowName(a.Overflow))
		}
	}
	if b := cfg.Type(gateway.Inference).Batch; b != 32 {
		t.Errorf("inference batch %d, want 32", b)
	}
	if f := cfg.Type(gateway.Device).FeatureEvery; f != 10 {
		t.Errorf("feature_every %d, want 10", f)
	}
}

// TestEventLoops: the loop count a header shows (Load.EventLoops) is the
// one the run's engine has, GOMAXPROCS for loops: 0.
func TestEventLoops(t *testing.T) {
	for _, loops := range []int{0, 3} {
		cfg := smallMix(t)
		cfg.Load.Loops = loops
		cfg.Load.Duration = 10 * time.Millisecond
		want := loops
		if loops == 0 {
			want = runtime.GOMAXPROCS(0)
		}
		var got int
		runOnClock(t, cfg, false, gateway.Options{OnEngine: func(e *engine.Engine) (func(), error) {
			got = e.Loops()
			return nil, nil
		}})
		if cfg.Load.EventLoops() != want || got != want {
			t.Errorf("loops %d: EventLoops %d, the engine's %d; want %d", loops, cfg.Load.EventLoops(), got, want)
		}
	}
}
