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
	// runs: msgs/s, p99 and CPU % of that interval (not of the run so far),
	// and the agents, queued and dropped messages at its end.
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
	// StateDir, when set, keeps the mix's state across runs (the device
	// agents' counters, the feature agents' aggregates, the alert agents'
	// totals): Run restores every agent of the mix from the newest
	// snapshot there before it spawns the others, snapshots them every
	// StateEvery (default 10 s, on the engine's clock; the 3 newest files
	// are kept) and once more after the drain. Not used by the baseline.
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
	// Intervals are the figures of each live interval of the load, in
	// order (Options.Interval, the lines Options.Live gets); the drain has
	// none.
	Intervals []Interval
	// StateDir is Options.StateDir; RestoredFrom names the snapshot in it
	// the mix's agents were restored from ("" when there was none), and
	// Restored how many.
	StateDir     string
	RestoredFrom string
	Restored     int
}

// Interval is what one interval of the load achieved: the figures of a
// live line, kept for the summary's latency-over-time table.
type Interval struct {
	At   time.Duration // its end, from the start of the load: k × Options.Interval
	Span time.Duration // its length on the run's clock: longer when sampled late, standing for intervals it missed
	Rate float64       // telemetry processed per second of Span, msgs/s
	CPU  float64       // process CPU over Span, % of one core
	// Latency is of the aggregates scored within this interval only.
	Latency Percentiles
}

// Pass reports whether the run meets a latency target: at least one
// message measured, p99 ≤ p99Target, and the achieved rate at least
// minRatio of the offered one (which also fails runs where the producers
// fell behind or messages were dropped).
func (s Summary) Pass(p99Target time.Duration, minRatio float64) bool {
	return s.Latency.Count > 0 && s.Latency.P99 <= p99Target && s.Achieved >= minRatio*s.Offered
}

// Print writes the summary block, then the latency-over-time table of
// its Intervals (when there are any). Every latency is in milliseconds
// with three decimals (FormatLatency), so that figures in one column
// compare at a glance.
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "\nsummary (%s): %v offered + drain = %v, %d agents\n",
		s.System, s.Window.Round(time.Millisecond), s.Elapsed.Round(time.Millisecond), s.Agents)
	fmt.Fprintf(w, "  offered    %12.0f msgs/s  (%d emitted, backlog %d, worst lag %s)\n",
		s.Offered, s.Emitted, s.Backlog, FormatLatency(s.Lag, 1))
	fmt.Fprintf(w, "  achieved   %12.0f msgs/s  (%d processed)\n", s.Achieved, s.Processed)
	fmt.Fprintf(w, "  dropped    %12d msgs    (refused %d)\n", s.Dropped, s.Refused)
	n := s.Latency.Count
	fmt.Fprintf(w, "  latency    p50 %s  p99 %s  p99.9 %s  max %s  (%d measured)\n",
		FormatLatency(s.Latency.P50, n), FormatLatency(s.Latency.P99, n), FormatLatency(s.Latency.P999, n),
		FormatLatency(s.Latency.Max, n), n)
	fmt.Fprintf(w, "  alerts     %12d\n", s.Alerts)
	fmt.Fprintf(w, "  cpu        %12.1f %% of one core\n", s.CPU)
	if !s.Drained {
		fmt.Fprintf(w, "  (the queues did not drain within the limit: the system was overloaded)\n")
	}
	switch {
	case s.StateDir == "":
	case s.RestoredFrom == "":
		fmt.Fprintf(w, "  state      no snapshot in %s to restore; the agents' state is saved there\n", s.StateDir)
	default:
		fmt.Fprintf(w, "  state      %d agents restored from %s; their state is saved there again\n", s.Restored, s.RestoredFrom)
	}
	if len(s.Intervals) == 0 {
		return
	}
	fmt.Fprintf(w, "\n  latency over time (each interval on its own):\n")
	fmt.Fprintf(w, "  %6s  %10s  %10s  %10s  %10s  %9s\n", "t", "msgs/s", "p50", "p99", "max", "measured")
	for _, iv := range s.Intervals {
		n := iv.Latency.Count
		fmt.Fprintf(w, "  %5.0fs  %10.0f  %10s  %10s  %10s  %9d\n", iv.At.Seconds(), iv.Rate,
			FormatLatency(iv.Latency.P50, n), FormatLatency(iv.Latency.P99, n), FormatLatency(iv.Latency.Max, n), n)
	}
}

// FormatLatency writes a latency in milliseconds with three decimals
// (microsecond resolution), "0.291ms" or "1500.000ms", whatever its size,
// so that a column of them keeps one unit and one precision; n is how
// many values were measured, and with none it writes "-".
func FormatLatency(d time.Duration, n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

// drainLimit bounds the wait for the queues to empty after the load: a
// quarter of the window, between 200 ms and 2 s.
func drainLimit(window time.Duration) time.Duration {
	return min(max(window/4, 200*time.Millisecond), 2*time.Second)
}
