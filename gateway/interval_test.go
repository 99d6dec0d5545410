package gateway_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/gateway"
)

// chanWriter hands each line written to it to a channel (a write is a
// whole line, as the live lines are).
type chanWriter chan string

func (w chanWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// stall is an agent that, on its first message, blocks its loop until
// release closes, closing holding as it starts to.
type stall struct {
	once             *sync.Once
	holding, release chan struct{}
}

func (s *stall) Receive(*engine.Context, engine.Message) {
	s.once.Do(func() { close(s.holding) })
	<-s.release
}

// TestRunIntervals: a run's Summary.Intervals are its live lines, one
// for one: the same p99, at the ends of the intervals, measuring no more
// than the run did.
func TestRunIntervals(t *testing.T) {
	for _, baseline := range []bool{false, true} {
		lines := make(chanWriter, 16)
		sum := runOnClock(t, smallMix(t), baseline, gateway.Options{Live: lines, Interval: 100 * time.Millisecond})
		close(lines)
		var live []string
		for l := range lines {
			live = append(live, l)
		}
		if len(live) == 0 || len(live) != len(sum.Intervals) {
			t.Fatalf("baseline %v: %d live lines, %d intervals", baseline, len(live), len(sum.Intervals))
		}
		var measured int64
		for i, iv := range sum.Intervals {
			if !strings.Contains(live[i], "p99 "+fmt.Sprintf("%10s", gateway.FormatLatency(iv.Latency.P99, iv.Latency.Count))) {
				t.Errorf("baseline %v: line %q, interval %+v", baseline, live[i], iv)
			}
			if iv.At%(100*time.Millisecond) != 0 || iv.At > 500*time.Millisecond || i > 0 && iv.At <= sum.Intervals[i-1].At || iv.Span <= 0 {
				t.Errorf("baseline %v: interval %d at %v, span %v", baseline, i, iv.At, iv.Span)
			}
			measured += iv.Latency.Count
		}
		if measured > sum.Latency.Count {
			t.Errorf("baseline %v: the intervals measured %d, the run %d", baseline, measured, sum.Latency.Count)
		}
	}
}
