// Package labels is the process-wide switch that tells the engine's loops
// whether to tag their work with pprof labels. The profiler turns it on while
// it samples; the loops read it once per agent switch, so when it is off the
// cost is one atomic load per switch.
package labels

import "sync/atomic"

var enabled atomic.Int32

// Enable turns labelling on. Calls nest: labelling stays on until every
// Enable has been matched by a Disable.
func Enable() { enabled.Add(1) }

// Disable undoes one Enable.
func Disable() {
	for {
		n := enabled.Load()
		if n <= 0 || enabled.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// Enabled reports whether any profiler wants labels now.
func Enabled() bool { return enabled.Load() > 0 }
