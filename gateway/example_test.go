package gateway_test

import (
	"os"
	"time"

	"github.com/agentloop/agentloop/gateway"
)

// A summary prints as a block of figures, then the latency of each live
// interval on its own; every latency is in ms with three decimals.
func ExampleSummary_Print() {
	const us = time.Microsecond
	s := gateway.Summary{
		System: "agentloop", Window: 2 * time.Second, Elapsed: 2002 * time.Millisecond, Agents: 10021,
		Offered: 200000, Emitted: 400000, Lag: 4441 * us, Achieved: 199800, Processed: 400000,
		Latency: gateway.Percentiles{Count: 40000, P50: 123600 * time.Nanosecond, P99: 336600 * time.Nanosecond,
			P999: 854500 * time.Nanosecond, Max: 15 * time.Millisecond},
		Alerts: 840, CPU: 44.7, Drained: true,
		Intervals: []gateway.Interval{
			{At: time.Second, Span: time.Second, Rate: 200004, Latency: gateway.Percentiles{Count: 19988, P50: 121 * us, P99: 15 * time.Millisecond, Max: 15 * time.Millisecond}},
			{At: 2 * time.Second, Span: time.Second, Rate: 199840, Latency: gateway.Percentiles{Count: 20011, P50: 126 * us, P99: 337 * us, Max: 901 * us}},
		},
	}
	s.Print(os.Stdout)
	// Output:
	// summary (agentloop): 2s offered + drain = 2.002s, 10021 agents
	//   offered          200000 msgs/s  (400000 emitted, backlog 0, worst lag 4.441ms)
	//   achieved         199800 msgs/s  (400000 processed)
	//   dropped               0 msgs    (refused 0)
	//   latency    p50 0.124ms  p99 0.337ms  p99.9 0.855ms  max 15.000ms  (40000 measured)
	//   alerts              840
	//   cpu                44.7 % of one core
	//
	//   latency over time (each interval on its own):
	//        t      msgs/s         p50         p99         max   measured
	//       1s      200004     0.121ms    15.000ms    15.000ms      19988
	//       2s      199840     0.126ms     0.337ms     0.901ms      20011
}
