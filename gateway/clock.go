package gateway

import (
	"time"

	"github.com/agentloop/agentloop/engine"
)

// clock is the time a run paces its load by and measures with: the system
// clock, or the one of Options.Clock.
type clock struct {
	c engine.Clock // nil: the system clock
}

func (k clock) now() time.Time {
	if k.c == nil {
		return time.Now()
	}
	return k.c.Now()
}

// since is the time from t on this clock.
func (k clock) since(t time.Time) time.Duration {
	if k.c == nil {
		return time.Since(t)
	}
	return k.c.Now().Sub(t)
}

// afterFunc calls f once d has passed on this clock; f must not block.
func (k clock) afterFunc(d time.Duration, f func()) (stop func() bool) {
	if k.c == nil {
		return time.AfterFunc(d, f).Stop
	}
	return k.c.AfterFunc(d, f)
}

// signal returns a channel that gets a value once d has passed, and the
// function that cancels it.
func (k clock) signal(d time.Duration) (<-chan struct{}, func() bool) {
	ch := make(chan struct{}, 1)
	stop := k.afterFunc(d, func() { ch <- struct{}{} })
	return ch, stop
}
