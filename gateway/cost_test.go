package gateway_test

import (
	"testing"
	"time"

	"github.com/agentloop/agentloop/gateway"
)

func TestCPUPerMessage(t *testing.T) {
	cases := []struct {
		name string
		s    gateway.Summary
		want time.Duration
	}{
		// 140 % of a core at 1 M msgs/s: 1.4 s of CPU per 1 M messages.
		{"loaded", gateway.Summary{CPU: 140, Achieved: 1_000_000, Elapsed: 3 * time.Second}, 1400 * time.Nanosecond},
		// Half a core at 200 000 msgs/s; Elapsed does not matter, the
		// CPU and the messages are counted over the same span.
		{"half a core", gateway.Summary{CPU: 50, Achieved: 200_000, Elapsed: time.Second}, 2500 * time.Nanosecond},
		{"half a core, longer", gateway.Summary{CPU: 50, Achieved: 200_000, Elapsed: time.Minute}, 2500 * time.Nanosecond},
		{"rounded to the ns", gateway.Summary{CPU: 100, Achieved: 3_000_000}, 333 * time.Nanosecond},
		{"nothing processed", gateway.Summary{CPU: 30}, 0},
		{"no CPU measured", gateway.Summary{Achieved: 1000}, 0},
	}
	for _, c := range cases {
		if got := c.s.CPUPerMessage(); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
