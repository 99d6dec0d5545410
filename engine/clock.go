package engine

import (
	"fmt"
	"time"

	"github.com/RussellLuo/timingwheel"
)

// Clock is the engine's source of time. Every timer path follows it: the
// precise heap, the coarse wheel, cron schedules and request timeouts; so
// does the measure of handler time when it is not the system clock. The
// default is the system clock; package enginetest provides a manual clock
// so tests of timer-driven agents run without sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f, on a goroutine of the clock's choosing, once d has
	// passed on this clock. stop cancels the call and reports whether it
	// did. f must not block.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// WithClock makes the engine read time from c instead of the system
// clock. Under a clock other than the system one the engine drives its own
// wheel from c (the timing-wheel library reads the system clock itself).
//
// The loops then measure handler time on c too: each run of an agent is
// charged the time that passed on c while it ran, in its type's handler
// histogram (Stats), in the loop's busy time and in the CPU share that
// weighs it in the scheduler. On a manual clock (package enginetest) a
// handler costs what it advances the clock by, and nothing if it does not,
// so a test can give handlers exact costs and the scheduling is
// independent of the machine's speed and load. c is read at most once per
// run, never per message. On the system clock handler time is the
// monotonic clock's.
func WithClock(c Clock) Option {
	return optionFunc(func(cfg *config) error {
		if c == nil {
			return fmt.Errorf("%w: WithClock(nil)", ErrInvalidOption)
		}
		cfg.clock = c
		return nil
	})
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// wheel is what a loop needs of a timing wheel: call f after about d, never
// on the loop itself (f only posts to the loop).
type wheel interface {
	AfterFunc(d time.Duration, f func()) (stop func() bool)
	Stop()
}

// rlWheel is the RussellLuo hierarchical timing wheel: 60 slots of one
// tick, with overflow wheels for longer delays. From newRLWheel to Stop it
// runs two goroutines (the delay queue's poller and the bucket flusher;
// Stop waits for both), and it calls each expired f on a new goroutine of
// its own, which Stop does not wait for. Idle, it sleeps until its next
// bucket and costs no CPU.
type rlWheel struct{ tw *timingwheel.TimingWheel }

func newRLWheel(tick time.Duration) *rlWheel {
	w := &rlWheel{tw: timingwheel.NewTimingWheel(tick, 60)}
	w.tw.Start()
	return w
}

func (w *rlWheel) AfterFunc(d time.Duration, f func()) func() bool {
	return w.tw.AfterFunc(d, f).Stop
}

func (w *rlWheel) Stop() { w.tw.Stop() }

// clockWheel stands in for the wheel under a clock other than the system
// one: the clock's own AfterFunc is the wheel.
type clockWheel struct{ c Clock }

func (w clockWheel) AfterFunc(d time.Duration, f func()) func() bool { return w.c.AfterFunc(d, f) }
func (w clockWheel) Stop()                                           {}
