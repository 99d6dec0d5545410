package bench

import (
	"context"
	"testing"
	"time"

	"github.com/agentloop/agentloop/gateway"
)

// W10's first target, CPU per message at equal offered rate: each
// iteration runs the default mix (w10Config: 2 loops, ingress publish) at
// w10Rate for w10Window, open loop, and takes the process CPU time of the
// run (from the first message to the end of the drain, set-up and stop
// left out) over the telemetry messages processed in it
// (gateway.Summary.CPUPerMessage). cpu-µs/msg is the median over the
// iterations; msgs/s and dropped show that both systems kept up with the
// same offered rate. The target is
// BenchmarkW10_CPUPerMessage ≤ 0.5 × BenchmarkW10_BaselineCPUPerMessage;
// `agentloop load -rates` measures the same ratio with the runs taking
// turns.

func benchW10CPU(b *testing.B, baseline bool) {
	b.ReportAllocs()
	run := gateway.RunnerFor(w10Config(b), baseline, gateway.Options{})
	var perMsg, achieved []float64
	var dropped uint64
	for b.Loop() {
		s, err := run(context.Background(), w10Rate)
		if err != nil {
			b.Fatal(err)
		}
		d := s.CPUPerMessage()
		if d == 0 {
			b.Fatalf("no CPU per message: %d messages processed, cpu %.1f%% (CPU time is not measured on this platform?)", s.Processed, s.CPU)
		}
		perMsg = append(perMsg, float64(d)/float64(time.Microsecond))
		achieved = append(achieved, s.Achieved)
		dropped += s.Dropped
	}
	b.StopTimer()
	b.ReportMetric(median(perMsg), "cpu-µs/msg")
	b.ReportMetric(median(achieved), "msgs/s")
	b.ReportMetric(float64(dropped)/float64(len(perMsg)), "dropped")
}

// BenchmarkW10_CPUPerMessage is the engine's CPU per message at 200 000
// msgs/s.
func BenchmarkW10_CPUPerMessage(b *testing.B) { benchW10CPU(b, false) }

// BenchmarkW10_BaselineCPUPerMessage is the goroutine-per-device
// baseline's CPU per message at the same offered rate.
func BenchmarkW10_BaselineCPUPerMessage(b *testing.B) { benchW10CPU(b, true) }
