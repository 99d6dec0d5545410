package gateway_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/gateway"
)

// longAlarmClock is a stepClock that also signals each alarm set at least
// min ahead (the drain limit's, among the producers' short ones).
type longAlarmClock struct {
	*stepClock
	min  time.Duration
	long chan struct{}
}

func (c *longAlarmClock) AfterFunc(d time.Duration, f func()) func() bool {
	stop := c.stepClock.AfterFunc(d, f)
	if d >= c.min {
		select {
		case c.long <- struct{}{}:
		default:
		}
	}
	return stop
}

// TestRunInterruptedDrains ends a run through its context (Ctrl-C) while
// an agent holds the only loop, with messages queued behind it: the drain
// that follows still waits, up to its own limit, for the queues to
// empty, instead of ending with the run's context, and the summary says
// every message was processed rather than that the system was
// overloaded.
func TestRunInterruptedDrains(t *testing.T) {
	for _, baseline := range []bool{false, true} {
		cfg := smallMix(t)
		cfg.SetDevices(10, "test")
		cfg.Load.Rate = 2000
		cfg.Load.Duration = time.Hour // the drain limit: 2 s
		cfg.Load.Loops = 1
		cfg.Load.Producers = 1
		holding, release := make(chan struct{}), make(chan struct{})
		var releaseOnce sync.Once
		releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
		clk := &longAlarmClock{stepClock: newStepClock(), min: 2 * time.Second, long: make(chan struct{}, 1)}
		opts := gateway.Options{Clock: clk}
		if !baseline {
			opts.OnEngine = func(e *engine.Engine) (func(), error) {
				var once sync.Once
				if err := e.Register("stall", func() engine.Agent { return &stall{once: &once, holding: holding, release: release} }); err != nil {
					return nil, err
				}
				if err := e.SubscribeAgent("features.dev-0", engine.AgentID{Type: "stall", Key: "0"}); err != nil {
					return nil, err
				}
				return releaseAll, nil
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		var (
			sum gateway.Summary
			err error
		)
		done := make(chan struct{})
		go func() {
			defer close(done)
			sum, err = gateway.RunnerFor(cfg, baseline, opts)(ctx, cfg.Load.Rate)
		}()
		// The engine's stall begins about 20 ms in, at dev-0's first
		// feature vector; the baseline, which nothing holds, is interrupted
		// once the producer has emitted 50 ms of load.
		end := clk.Now().Add(50 * time.Millisecond)
		held, long := holding, clk.long
	drive:
		for {
			if next, ok := clk.Next(); ok && !next.After(end) {
				clk.Set(next)
				continue
			}
			if baseline && held != nil && clk.Now().Add(time.Millisecond).After(end) {
				held = nil
				cancel()
			}
			select {
			case <-done:
				break drive
			case <-clk.armed:
			case <-held: // the loop is held: interrupt
				held = nil
				cancel()
			case <-long: // the drain has begun: let the loop go on
				long = nil
				releaseAll()
			}
		}
		cancel()
		releaseAll()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("baseline %v: err %v, want the run's context's", baseline, err)
		}
		if !sum.Drained || sum.Dropped != 0 || sum.Processed != sum.Emitted || sum.Emitted == 0 {
			t.Errorf("baseline %v: drained %v, emitted %d, processed %d, dropped %d; want everything emitted processed",
				baseline, sum.Drained, sum.Emitted, sum.Processed, sum.Dropped)
		}
	}
}
