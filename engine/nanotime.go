package engine

import _ "unsafe" // for go:linkname

// nanotime is the runtime's monotonic clock in nanoseconds: what time.Now
// reads for its monotonic part, without the wall clock.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// runTime is the clock that measures handler time: the loops read it once
// per agent run (see runAgents), and the distance between two reads is the
// run's handler time. On the system clock it is the monotonic clock. Under
// WithClock it is the engine clock, so that handler time, and with it the
// scheduler's CPU shares, follows that clock rather than the processes
// that share the machine: on a manual clock a handler costs exactly what
// it advances the clock by. The branch is taken per run, never per message.
func (e *Engine) runTime() int64 {
	if e.virtual {
		return e.clockNanos()
	}
	return nanotime()
}

// clockNanos is the engine clock in unix nanoseconds, kept out of line so
// that runTime stays small enough to inline on the system-clock path.
//
//go:noinline
func (e *Engine) clockNanos() int64 { return e.clock.Now().UnixNano() }
