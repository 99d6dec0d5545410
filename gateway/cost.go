package gateway

import (
	"math"
	"time"
)

// CPUPerMessage is the process CPU time of the run divided by the
// telemetry messages the device agents processed in it. Both are taken
// over Elapsed, from the first message to the end of the drain, so the
// set-up and the stop of the system weigh on neither: it is CPU ÷ 100 ÷
// Achieved, as bench/README.md defines CPU per message for W10. It is 0
// when nothing was processed or no CPU time was measured (on platforms
// where CPUTime is always 0).
func (s Summary) CPUPerMessage() time.Duration {
	if !(s.Achieved > 0) || !(s.CPU > 0) {
		return 0
	}
	return time.Duration(math.Round(s.CPU / 100 / s.Achieved * float64(time.Second)))
}
