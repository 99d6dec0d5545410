package profiler

import (
	"context"
	"runtime/pprof"
	"testing"

	"github.com/agentloop/agentloop/internal/labels"
)

// benchmarkAgentSwitch measures what a loop pays per agent switch for
// labels: one labels.Enabled check, and, when on, pprof.SetGoroutineLabels
// with the agent type's context, built once per type.
func benchmarkAgentSwitch(b *testing.B, on bool) {
	types := []string{"device", "sensor", "inference", "cron"}
	ctxs := make([]context.Context, len(types))
	for i, typ := range types {
		ctxs[i] = pprof.WithLabels(context.Background(), pprof.Labels(LabelAgentType, typ))
	}
	if on {
		labels.Enable()
		defer labels.Disable()
	}
	defer pprof.SetGoroutineLabels(context.Background())
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if labels.Enabled() {
			pprof.SetGoroutineLabels(ctxs[i&3])
		}
		i++
	}
}

// BenchmarkLabelsOff is the cost per agent switch while no profiler runs.
func BenchmarkLabelsOff(b *testing.B) { benchmarkAgentSwitch(b, false) }

// BenchmarkLabelsOn is the cost per agent switch while a profiler runs.
func BenchmarkLabelsOn(b *testing.B) { benchmarkAgentSwitch(b, true) }
