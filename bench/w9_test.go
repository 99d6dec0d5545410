package bench

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/scheduler"
)

// W9: spawn/terminate churn. Each cycle spawns an agent, sends it one
// 64-byte message and terminates it; the agent's OnTerminate counts the
// cycle done. The driver keeps at most w9Window cycles in flight, so a
// pooled type finds records back in its pool. allocs/op counts every
// allocation of the cycle, on the loops too.

const w9Window = 32

type churner struct{ ended *atomic.Int64 }

func (churner) Receive(*engine.Context, engine.Message) {}
func (c churner) OnTerminate(*engine.Context)           { c.ended.Add(1) }
func (churner) Reset()                                  {}

func benchW9(b *testing.B, opts ...engine.RegisterOption) {
	e := newEngine(b, 2)
	var ended atomic.Int64
	must(b, e.Register("churn", func() engine.Agent { return churner{&ended} }, opts...))
	must(b, e.Start())
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = "c-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for int64(i)-ended.Load() >= w9Window {
			runtime.Gosched()
		}
		id := engine.AgentID{Type: "churn", Key: keys[i]}
		ref, err := e.Spawn(id)
		if err != nil {
			b.Fatal(err)
		}
		must(b, ref.Send(payload))
		must(b, e.Terminate(id))
	}
	for ended.Load() < int64(b.N) {
		runtime.Gosched()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/cycle")
}

// BenchmarkW9_Pooled churns a Pooled type whose agents implement Reset.
func BenchmarkW9_Pooled(b *testing.B) { benchW9(b, engine.Pooled()) }

// BenchmarkW9_BaselineUnpooled is the same churn without Pooled.
func BenchmarkW9_BaselineUnpooled(b *testing.B) { benchW9(b) }

// BenchmarkSched_PickAccountPush is the runnable queue's cost per message
// as a loop pays it: pick the heaviest of 10 000 runnable agents, account
// its run (one clock reading's worth of handler time, a quantum of 64
// messages), and queue it again; epochs close every 128 picks, so the
// reweighing is included.
func BenchmarkSched_PickAccountPush(b *testing.B) {
	const n, quantum = 10_000, 64
	q, err := scheduler.New[int](scheduler.DefaultConfig())
	must(b, err)
	es := make([]scheduler.Entry[int], n)
	for i := range es {
		es[i].Value = i
		must(b, es[i].SetPriority(i%101))
		q.Push(&es[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e, _ := q.Pop()
		q.Account(e, int64(500+e.Value%1000), quantum, int64(64*(e.Value%32)))
		q.Push(e)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/quantum, "ns/msg")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/pick")
}
