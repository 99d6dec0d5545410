package bench

import (
	"context"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/agentloop/agentloop/engine"
)

// W5: request/response from outside the engine (Engine.Request), one
// requester, b.N round trips, every 8th one timed for percentiles.

type echo struct{}

func (echo) Receive(c *engine.Context, m engine.Message) { _ = c.Reply(m.Payload) }

func BenchmarkW5_Request(b *testing.B) {
	e := newEngine(b, 2)
	must(b, e.Register("echo", func() engine.Agent { return echo{} }))
	must(b, e.Start())
	id := engine.AgentID{Type: "echo", Key: "1"}
	ctx := context.Background()
	_, err := e.RequestID(ctx, id, payload)
	must(b, err)
	hist := hdrhistogram.New(1, int64(time.Second), 3)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var t0 time.Time
		if i&7 == 0 {
			t0 = time.Now()
		}
		if _, err := e.RequestID(ctx, id, payload); err != nil {
			b.Fatal(err)
		}
		if i&7 == 0 {
			_ = hist.RecordValue(int64(time.Since(t0)))
		}
	}
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N), "ns/rt")
	reportLatency(b, hist)
}

// BenchmarkW5_BaselineChannel: a server goroutine answering requests that
// carry their own reply channel.
func BenchmarkW5_BaselineChannel(b *testing.B) {
	type req struct {
		p     []byte
		reply chan []byte
	}
	reqs := make(chan req)
	go func() {
		for r := range reqs {
			r.reply <- r.p
		}
	}()
	defer close(reqs)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := req{p: payload, reply: make(chan []byte, 1)}
		reqs <- r
		<-r.reply
	}
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N), "ns/rt")
}
