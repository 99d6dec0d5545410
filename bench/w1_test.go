package bench

import (
	"testing"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/internal/labels"
	"github.com/agentloop/agentloop/profiler"
)

// W1: in-loop send. Agent A, on a trigger, sends a burst of 1024 messages
// to agent B on the same loop; B signals when the burst is in.

const w1Burst = 1024

type w1Sender struct{ to engine.Ref }

func (s *w1Sender) Receive(c *engine.Context, _ engine.Message) {
	for i := 0; i < w1Burst; i++ {
		_ = c.Send(s.to, payload)
	}
}

type w1Receiver struct {
	n    int
	done chan struct{}
}

func (r *w1Receiver) Receive(_ *engine.Context, _ engine.Message) {
	r.n++
	if r.n == w1Burst {
		r.n = 0
		r.done <- struct{}{}
	}
}

func BenchmarkW1_InLoopSend(b *testing.B) { benchW1(b) }

// BenchmarkW1_InLoopSendLabelled is W1 with the loops tagging agent work
// with pprof labels, as they do while the profiler runs.
func BenchmarkW1_InLoopSendLabelled(b *testing.B) {
	labels.Enable()
	defer labels.Disable()
	benchW1(b)
}

// BenchmarkW1_InLoopSendProfiled is W1 with the duty-cycled profiler on at
// Sampling 0.01 (CPU, wall clock and heap windows, labels on).
func BenchmarkW1_InLoopSendProfiled(b *testing.B) {
	p, err := profiler.Start(profiler.Options{Sampling: 0.01, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := p.Stop(); err != nil {
			b.Error(err)
		}
	}()
	benchW1(b)
}

func benchW1(b *testing.B) {
	e := newEngine(b, 2)
	done := make(chan struct{}, 1)
	must(b, e.Register("recv", func() engine.Agent { return &w1Receiver{done: done} }))
	var to engine.Ref
	must(b, e.Register("send", func() engine.Agent { return &w1Sender{to: to} }))
	must(b, e.Start())
	var err error
	to, err = e.Spawn(engine.AgentID{Type: "recv", Key: "b"}, engine.OnLoop(0))
	must(b, err)
	from, err := e.Spawn(engine.AgentID{Type: "send", Key: "a"}, engine.OnLoop(0))
	must(b, err)
	bursts := (b.N + w1Burst - 1) / w1Burst
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < bursts; i++ {
		must(b, from.Send(nil))
		<-done
	}
	b.StopTimer()
	reportRate(b, bursts*w1Burst)
}

// BenchmarkW1_BaselineChannel: a buffered channel from one goroutine to
// another, the same bursts.
func BenchmarkW1_BaselineChannel(b *testing.B) {
	ch := make(chan []byte, w1Burst)
	done := make(chan struct{})
	bursts := (b.N + w1Burst - 1) / w1Burst
	go func() {
		for i := 0; i < bursts; i++ {
			for j := 0; j < w1Burst; j++ {
				<-ch
			}
		}
		close(done)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < bursts; i++ {
		for j := 0; j < w1Burst; j++ {
			ch <- payload
		}
	}
	<-done
	b.StopTimer()
	reportRate(b, bursts*w1Burst)
}

// BenchmarkW1_BaselineRing: a ring buffer inside one goroutine, the limit
// any in-loop send can approach.
func BenchmarkW1_BaselineRing(b *testing.B) {
	var buf [w1Burst][]byte
	var head, tail uint
	sum := 0
	bursts := (b.N + w1Burst - 1) / w1Burst
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < bursts; i++ {
		for j := 0; j < w1Burst; j++ {
			buf[tail%w1Burst] = payload
			tail++
		}
		for head != tail {
			sum += len(buf[head%w1Burst])
			head++
		}
	}
	b.StopTimer()
	if sum != bursts*w1Burst*len(payload) {
		b.Fatal("ring lost messages")
	}
	reportRate(b, bursts*w1Burst)
}
