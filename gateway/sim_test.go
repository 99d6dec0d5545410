package gateway

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// tiny is a small mix that runs fast under -race on two cores.
func tiny(t *testing.T) *Config {
	t.Helper()
	cfg := mustLoad(t, "testdata/valid_small.yaml")
	cfg.SetDevices(100, "test")
	cfg.Load.Rate = 20000
	cfg.Load.Duration = 500 * time.Millisecond
	cfg.Load.Loops = 2
	cfg.Load.Producers = 2
	cfg.Type(Device).FeatureEvery = 5
	cfg.Type(Device).Mailbox = 4096
	cfg.Type(Feature).Mailbox = 4096
	cfg.Type(Inference).Mailbox = 4096
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRunOverloaded offers far more than tiny mailboxes hold: drops are
// counted, the drain gives up at its limit, and the run still ends.
func TestRunOverloaded(t *testing.T) {
	for _, baseline := range []bool{false, true} {
		cfg := tiny(t)
		cfg.SetDevices(4, "test")
		cfg.Type(Device).Mailbox = 2
		cfg.Type(Device).Overflow = engine.DropNewest
		cfg.Load.Rate = 400000
		cfg.Load.Duration = 300 * time.Millisecond
		start := time.Now()
		s, err := RunnerFor(cfg, baseline, Options{})(context.Background(), cfg.Load.Rate)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("baseline %v: the run took %v", baseline, took)
		}
		if s.Dropped == 0 {
			t.Errorf("baseline %v: nothing dropped from 2-message mailboxes at 400 000 msgs/s: %+v", baseline, s)
		}
		if s.Processed+s.Dropped < s.Emitted-s.Refused {
			t.Errorf("baseline %v: processed %d + dropped %d < emitted %d", baseline, s.Processed, s.Dropped, s.Emitted)
		}
		if s.Pass(time.Hour, 0.95) {
			t.Errorf("baseline %v: an overloaded run passes: %+v", baseline, s)
		}
	}
}

func TestRunStopsWithContext(t *testing.T) {
	for _, baseline := range []bool{false, true} {
		cfg := tiny(t)
		cfg.Load.Duration = time.Hour
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		_, err := RunnerFor(cfg, baseline, Options{})(ctx, 10000)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("baseline %v: err %v", baseline, err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("baseline %v: stopped after %v", baseline, took)
		}
	}
}

func TestRunRefusesInvalidConfig(t *testing.T) {
	cfg := tiny(t)
	cfg.Load.Rate = 0
	for _, run := range []func(context.Context, *Config, Options) (Summary, error){Run, RunBaseline} {
		if _, err := run(context.Background(), cfg, Options{}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("got %v", err)
		}
	}
}

func TestRunOnEngineError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Run(context.Background(), tiny(t), Options{OnEngine: func(*engine.Engine) (func(), error) { return nil, boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}

// TestStagePolicies checks the baseline's channels against the engine's
// overflow policies.
func TestStagePolicies(t *testing.T) {
	p := func(b byte) []byte { return []byte{b} }
	contents := func(s *stage) string {
		var b []byte
		for len(s.ch[0]) > 0 {
			b = append(b, (<-s.ch[0])[0])
		}
		return string(b)
	}
	cases := []struct {
		policy  engine.Overflow
		outside bool
		want    string
	}{
		{engine.DropNewest, true, "ab"},
		{engine.Reject, true, "ab"},
		{engine.DropOldest, true, "bc"},
		{engine.Block, false, "ab"}, // inside the pipeline: dropped, never waits
	}
	for _, c := range cases {
		s := newStage(1, 2, c.policy)
		for _, b := range []byte("abc") {
			s.send(0, p(b), c.outside, nil)
		}
		if got := contents(s); got != c.want || s.dropped.Load() != 1 {
			t.Errorf("%v: kept %q, dropped %d; want %q and 1", c.policy, got, s.dropped.Load(), c.want)
		}
	}
	// Block from outside waits for room, or for stop.
	s := newStage(1, 1, engine.Block)
	stop := make(chan struct{})
	s.send(0, p('a'), true, stop)
	sent := make(chan struct{})
	go func() {
		s.send(0, p('b'), true, stop)
		close(sent)
	}()
	select {
	case <-sent:
		t.Fatal("block did not wait for room")
	case <-time.After(20 * time.Millisecond):
	}
	<-s.ch[0]
	<-sent
	if got := contents(s); got != "b" {
		t.Fatalf("kept %q", got)
	}
	s.send(0, p('c'), true, stop)
	go func() { close(stop) }()
	s.send(0, p('d'), true, stop) // full: returns once stop closes
	if s.dropped.Load() != 1 {
		t.Fatalf("dropped %d at stop", s.dropped.Load())
	}
}

// TestNoAllocationPerMessage checks that the code of the stages allocates
// nothing per message: with every allocation profiled, those made by this
// package under a message path (producers, agents' handlers, the
// baseline's goroutines) come to a few per run, plus the payload slabs (one
// per 1024 payloads). Allocations inside the engine are its own business
// and not counted.
func TestNoAllocationPerMessage(t *testing.T) {
	hot := []string{
		"gateway.(*producer).run", "gateway.(*deviceAgent).Receive", "gateway.(*featureAgent).Receive",
		"gateway.(*inferenceAgent).Receive", "gateway.(*alertAgent).Receive",
		"gateway.(*baseline).deviceLoop", "gateway.(*baseline).featureLoop", "gateway.(*baseline).inferenceLoop",
		"gateway.(*baseline).alertLoop",
	}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	for _, baseline := range []bool{false, true} {
		before := gatewayAllocs(hot)
		cfg := tiny(t)
		cfg.Load.Rate = 50000
		cfg.Load.Duration = 600 * time.Millisecond
		s, err := RunnerFor(cfg, baseline, Options{})(context.Background(), cfg.Load.Rate)
		if err != nil {
			t.Fatal(err)
		}
		after := gatewayAllocs(hot)
		slabs, other := after.slabs-before.slabs, after.other-before.other
		// Payloads: every telemetry message, plus one feature vector and
		// one aggregate per FeatureEvery (5) messages.
		payloads := int64(s.Emitted) * 7 / 5
		t.Logf("baseline %v: %d messages, %d slab allocations, %d others", baseline, s.Emitted, slabs, other)
		maxSlabs := payloads/slabPayloads + 16
		if baseline { // devices carve vectors from blocks of deviceSlabPayloads
			maxSlabs += int64(s.Emitted)/int64(cfg.Type(Device).FeatureEvery)/deviceSlabPayloads + int64(cfg.Devices())
		}
		if slabs > maxSlabs {
			t.Errorf("baseline %v: %d slab allocations for %d payloads", baseline, slabs, payloads)
		}
		if other > 16 {
			t.Errorf("baseline %v: %d allocations on message paths:\n%s", baseline, other, after.where)
		}
	}
}

type allocCount struct {
	slabs, other int64
	where        string
}

// gatewayAllocs sums the objects allocated so far directly by this
// package's code under one of the hot functions.
func gatewayAllocs(hot []string) allocCount {
	runtime.GC()
	runtime.GC() // the profile reflects the last completed cycle
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	var c allocCount
	var where strings.Builder
	for _, r := range recs {
		frames := runtime.CallersFrames(r.Stack())
		var first string // the allocating site: the innermost frame past the allocator
		underHot := false
		for {
			f, more := frames.Next()
			if first == "" && !isAllocator(f.Function) {
				first = f.Function
			}
			for _, h := range hot {
				underHot = underHot || strings.HasSuffix(f.Function, h)
			}
			if !more {
				break
			}
		}
		if !underHot || !strings.Contains(first, "/gateway.") {
			continue
		}
		// A slab block, whether or not next was inlined into its caller
		// (the profile does not always show inlined frames).
		if size := r.AllocBytes / max(r.AllocObjects, 1); strings.HasSuffix(first, "gateway.(*slab).next") ||
			size == PayloadSize*slabPayloads || size == PayloadSize*deviceSlabPayloads {
			c.slabs += r.AllocObjects
			continue
		}
		c.other += r.AllocObjects
		fmt.Fprintf(&where, "  %d of %d bytes at %s\n", r.AllocObjects, r.AllocBytes/max(r.AllocObjects, 1), first)
	}
	c.where = where.String()
	return c
}

// isAllocator reports whether fn is part of the runtime's allocator (or
// of its profiling), rather than code that asks it for memory. The
// runtime's own allocations on behalf of a goroutine (a sudog when it
// first blocks on a channel, say) are made by other runtime functions and
// are not this package's.
func isAllocator(fn string) bool {
	for _, p := range []string{
		"runtime.malloc", "runtime.new", "runtime.make", "runtime.grow", "runtime.raw", "runtime.concat",
		"runtime.slicebyte", "runtime.conv", "runtime.profilealloc", "runtime.mProf", "runtime.(*mcache)",
		"runtime.callers", "runtime.systemstack", "runtime.mcall",
	} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}
