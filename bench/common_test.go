package bench

import (
	"context"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// payload is the 64-byte message body every workload sends.
var payload = make([]byte, 64)

// newEngine returns a started engine with loops loops, stopped at cleanup.
func newEngine(b *testing.B, loops int, opts ...engine.Option) *engine.Engine {
	b.Helper()
	e, err := engine.New(append([]engine.Option{engine.WithLoops(loops)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			b.Error(err)
		}
	})
	return e
}

// reportRate adds msgs/s and ns/msg for msgs messages handled in the
// benchmark's elapsed time.
func reportRate(b *testing.B, msgs int) {
	b.Helper()
	sec := b.Elapsed().Seconds()
	if msgs == 0 || sec == 0 {
		return
	}
	b.ReportMetric(float64(msgs)/sec, "msgs/s")
	b.ReportMetric(sec*1e9/float64(msgs), "ns/msg")
}

// must fails the benchmark on err. It marks itself a helper only on
// failure: b.Helper walks the caller's stack, which costs more than some
// of the workloads' own cycles when called in a timed loop.
func must(b *testing.B, err error) {
	if err != nil {
		b.Helper()
		b.Fatal(err)
	}
}

// sink is an agent that counts messages and closes done at target.
type sink struct {
	n      int
	target int
	done   chan struct{}
}

func (s *sink) Receive(_ *engine.Context, _ engine.Message) {
	s.n++
	if s.n == s.target {
		close(s.done)
	}
}
