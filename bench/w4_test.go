package bench

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/agentloop/agentloop/engine"
)

// W4: ping-pong between two agents on different loops, b.N round trips.
// One round trip in 8 is timed for the latency percentiles.

type w4Pinger struct {
	peer  engine.Ref
	left  int
	t0    time.Time
	hist  *hdrhistogram.Histogram
	done  chan struct{}
	count int
}

func (p *w4Pinger) Receive(c *engine.Context, m engine.Message) {
	if !m.Sender.IsZero() { // a pong
		if p.count&7 == 0 {
			_ = p.hist.RecordValue(int64(time.Since(p.t0)))
		}
		p.count++
		p.left--
		if p.left == 0 {
			close(p.done)
			return
		}
	}
	if p.count&7 == 0 {
		p.t0 = time.Now()
	}
	_ = c.Send(p.peer, payload)
}

type w4Ponger struct{}

func (w4Ponger) Receive(c *engine.Context, m engine.Message) { _ = c.Send(m.Sender, m.Payload) }

func BenchmarkW4_PingPong(b *testing.B) {
	e := newEngine(b, 2)
	pinger := &w4Pinger{left: b.N, done: make(chan struct{}), hist: hdrhistogram.New(1, int64(time.Second), 3)}
	must(b, e.Register("pong", func() engine.Agent { return w4Ponger{} }))
	must(b, e.Register("ping", func() engine.Agent { return pinger }))
	must(b, e.Start())
	var err error
	pinger.peer, err = e.Spawn(engine.AgentID{Type: "pong", Key: "1"}, engine.OnLoop(1))
	must(b, err)
	ping, err := e.Spawn(engine.AgentID{Type: "ping", Key: "1"}, engine.OnLoop(0))
	must(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	must(b, ping.Send(nil))
	<-pinger.done
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N), "ns/rt")
	reportLatency(b, pinger.hist)
}

func reportLatency(b *testing.B, h *hdrhistogram.Histogram) {
	if h.TotalCount() == 0 {
		return
	}
	b.ReportMetric(float64(h.ValueAtQuantile(50))/1e3, "p50-µs")
	b.ReportMetric(float64(h.ValueAtQuantile(99))/1e3, "p99-µs")
	b.ReportMetric(float64(h.ValueAtQuantile(99.9))/1e3, "p999-µs")
}

// BenchmarkW4_BaselineChannel: two goroutines and two unbuffered channels.
func BenchmarkW4_BaselineChannel(b *testing.B) {
	ping, pong := make(chan []byte), make(chan []byte)
	go func() {
		for p := range ping {
			pong <- p
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ping <- payload
		<-pong
	}
	b.StopTimer()
	close(ping)
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N), "ns/rt")
}

// BenchmarkW4_BaselineSpin: two goroutines spinning on one atomic word,
// the limit of a cross-core round trip.
func BenchmarkW4_BaselineSpin(b *testing.B) {
	var turn atomic.Int64
	n := int64(b.N)
	done := make(chan struct{})
	go func() {
		for i := int64(0); i < n; i++ {
			for turn.Load() != 2*i+1 {
				runtime.Gosched()
			}
			turn.Store(2*i + 2)
		}
		close(done)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := int64(0); i < n; i++ {
		turn.Store(2*i + 1)
		for turn.Load() != 2*i+2 {
			runtime.Gosched()
		}
	}
	<-done
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N), "ns/rt")
}
