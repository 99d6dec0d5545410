package bench

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// W8: spawn idle agents. Run with -benchtime 1000000x for the 1M figure.
// bytes/agent counts heap and goroutine stacks retained per agent.

type idle struct{}

func (idle) Receive(*engine.Context, engine.Message) {}

type probe struct{ done chan struct{} }

func (p probe) Receive(*engine.Context, engine.Message) { p.done <- struct{}{} }

func BenchmarkW8_Spawn(b *testing.B) {
	e := newEngine(b, 2)
	done := make(chan struct{}, e.Loops())
	must(b, e.Register("idle", func() engine.Agent { return idle{} }))
	must(b, e.Register("probe", func() engine.Agent { return probe{done} }))
	must(b, e.Start())
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = "dev-" + strconv.Itoa(i)
	}
	before := memInUse()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Spawn(engine.AgentID{Type: "idle", Key: keys[i]}); err != nil {
			b.Fatal(err)
		}
	}
	// A probe per loop: when it answers, every spawn before it on that
	// loop has been initialised.
	for l := 0; l < e.Loops(); l++ {
		ref, err := e.Spawn(engine.AgentID{Type: "probe", Key: strconv.Itoa(l)}, engine.OnLoop(l))
		must(b, err)
		must(b, ref.Send(nil))
	}
	for l := 0; l < e.Loops(); l++ {
		<-done
	}
	b.StopTimer()
	after := memInUse()
	b.ReportMetric(float64(after-before)/float64(b.N), "bytes/agent")
	runtime.KeepAlive(keys)
}

// BenchmarkW8_BaselineGoroutine: one goroutine and one channel per actor.
func BenchmarkW8_BaselineGoroutine(b *testing.B) {
	chans := make([]chan []byte, b.N)
	before := memInUse()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range chans {
		ch := make(chan []byte, 1)
		chans[i] = ch
		go func() {
			for range ch {
			}
		}()
	}
	b.StopTimer()
	after := memInUse()
	b.ReportMetric(float64(after-before)/float64(b.N), "bytes/agent")
	for _, ch := range chans {
		close(ch)
	}
}

// memInUse is live heap plus goroutine stacks, after a collection.
func memInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}
