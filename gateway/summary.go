package gateway

import (
	"fmt"
	"io"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// Options are the knobs of one run that are not part of the mix.
type Options struct {
	// Live, when set, gets a line of figures every Interval while the load
	// runs: msgs/s, p99 so far, agents, queued, dropped, CPU %.
	Live     io.Writer
	Interval time.Duration // default 1 s
	// Prefix starts every live line (the load tool indents them).
	Prefix string
	// OnEngine, when set, is called with the started engine before the
	// load starts (to serve its metrics, say); the returned stop function
	// runs after the load, before the engine stops. Not called by the
	// baseline.
	OnEngine func(e *engine.Engine) (stop func(), err error)
	// Clock, when set, is the clock the run paces its load by and takes
	// every time it reports from (the window, the drain limit, the
	// latencies, the live lines), instead of the system clock. Under a
	// manual clock (package enginetest) the load offered is that clock's
	// to decide: each producer emits its whole share, however slowly the
	// machine runs it, as long as the clock is moved only to the alarms
	// set on it that fall within the window; a drain then lasts until the
	// queues are empty. The engine's own timers keep the system clock.
	Clock engine.Clock
	// StateDir, when set, keeps the device agents' counters across runs:
	// Run restores them from the newest snapshot there before it spawns
	// the devices, snapshots them every StateEvery (default 10 s, on the
	// engine's clock; the 3 newest files are kept) and once more after the
	// drain. Not used by the baseline.
	StateDir   string
	StateEvery time.Duration
}

func (o Options) interval() time.Duration {
	if o.Interval > 0 {
		return o.Interval
	}
	return time.Second
}

// Summary is what a run achieved.
type Summary struct {
	System    string        // "agentloop" or "goroutines"
	Offered   float64       // the offered rate, msgs/s
	Window    time.Duration // how long the load was offered
	Emitted   uint64        // telemetry messages the producers handed over
	Refused   uint64        // of those, refused at the door (Reject, a stopped system)
	Backlog   uint64        // due within the window but never emitted: the producers fell behind
	Lag       time.Duration // the producers' worst delay behind schedule (timer granularity included)
	Processed uint64        // telemetry messages handled by device agents
	Achieved  float64       // Processed per second of Elapsed, msgs/s
	// Dropped counts every message of any stage that was not processed:
	// the engine's dead letters (full mailboxes, and what was still queued
	// when the run stopped) plus those refused at the door.
	Dropped uint64
	Alerts  uint64 // alerts the alert agents received
	Latency Percentiles
	CPU     float64       // process CPU over Elapsed, % of one core
	Elapsed time.Duration // from the first message to the end of the drain
	Drained bool          // every stage finished its queue before the drain limit
	Agents  int
}

// Pass reports whether the run meets a latency target: at least one
// message measured, p99 ≤ p99Target, and the achieved rate at least
// minRatio of the offered one (which also fails runs where the producers
// fell behind or messages were dropped).
func (s Summary) Pass(p99Target time.Duration, minRatio float64) bool {
	return s.Latency.Count > 0 && s.Latency.P99 <= p99Target && s.Achieved >= minRatio*s.Offered
}

// Print writes the summary block.
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "\nsummary (%s): %v offered + drain = %v, %d agents\n",
		s.System, s.Window.Round(time.Millisecond), s.Elapsed.Round(time.Millisecond), s.Agents)
	fmt.Fprintf(w, "  offered    %12.0f msgs/s  (%d emitted, backlog %d, worst lag %v)\n",
		s.Offered, s.Emitted, s.Backlog, s.Lag.Round(time.Microsecond))
	fmt.Fprintf(w, "  achieved   %12.0f msgs/s  (%d processed)\n", s.Achieved, s.Processed)
	fmt.Fprintf(w, "  dropped    %12d msgs    (refused %d)\n", s.Dropped, s.Refused)
	fmt.Fprintf(w, "  latency    p50 %v  p99 %v  p99.9 %v  max %v  (%d measured)\n",
		fmtDur(s.Latency.P50), fmtDur(s.Latency.P99), fmtDur(s.Latency.P999), fmtDur(s.Latency.Max), s.Latency.Count)
	fmt.Fprintf(w, "  alerts     %12d\n", s.Alerts)
	fmt.Fprintf(w, "  cpu        %12.1f %% of one core\n", s.CPU)
	if !s.Drained {
		fmt.Fprintf(w, "  (the queues did not drain within the limit: the system was overloaded)\n")
	}
}

// fmtDur rounds a latency for display: µs below 10 ms, else ms.
func fmtDur(d time.Duration) string {
	if d < 10*time.Millisecond {
		return d.Round(time.Microsecond / 10).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// drainLimit bounds the wait for the queues to empty after the load: a
// quarter of the window, between 200 ms and 2 s.
func drainLimit(window time.Duration) time.Duration {
	return min(max(window/4, 200*time.Millisecond), 2*time.Second)
}
