package engine

import _ "unsafe" // for go:linkname

// nanotime is the runtime's monotonic clock in nanoseconds: what time.Now
// reads for its monotonic part, without the wall clock. The loops read it
// once per agent run to measure handler time; it is not the engine clock
// (WithClock), which only drives timers.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64
