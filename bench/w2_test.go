package bench

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// W2: external send. One goroutine outside the engine sends b.N messages
// to one agent through its Ref.

func BenchmarkW2_RefSend(b *testing.B) {
	e := newEngine(b, 2)
	done := make(chan struct{})
	must(b, e.Register("sink", func() engine.Agent { return &sink{target: b.N, done: done} },
		engine.Mailbox(1<<16, engine.Block)))
	must(b, e.Start())
	ref, err := e.Spawn(engine.AgentID{Type: "sink", Key: "1"})
	must(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ref.Send(payload); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	reportRate(b, b.N)
}

// BenchmarkW2_RefSendDrop is W2 on the default DropNewest mailbox, whose
// senders skip the mailbox reservation that Block needs.
func BenchmarkW2_RefSendDrop(b *testing.B) {
	e := newEngine(b, 2)
	done := make(chan struct{})
	var got atomic.Int64
	must(b, e.Register("sink", func() engine.Agent { return &countSink{n: &got} }, engine.Mailbox(1<<20, engine.DropNewest)))
	must(b, e.Start())
	ref, err := e.Spawn(engine.AgentID{Type: "sink", Key: "1"})
	must(b, err)
	_ = done
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ref.Send(payload); err != nil {
			b.Fatal(err)
		}
	}
	for got.Load() != int64(b.N) {
		if st := e.Stats(); st.DeadLetters > 0 {
			b.Fatalf("dropped %d", st.DeadLetters)
		}
		runtime.Gosched()
	}
	b.StopTimer()
	reportRate(b, b.N)
}

type countSink struct{ n *atomic.Int64 }

func (s *countSink) Receive(_ *engine.Context, _ engine.Message) { s.n.Add(1) }

// BenchmarkW2_BaselineChannel: a buffered channel to one goroutine.
func BenchmarkW2_BaselineChannel(b *testing.B) {
	ch := make(chan []byte, 1024)
	done := make(chan struct{})
	go func() {
		for i := 0; i < b.N; i++ {
			<-ch
		}
		close(done)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch <- payload
	}
	<-done
	b.StopTimer()
	reportRate(b, b.N)
}

// BenchmarkW2_BaselineSPSC: a lock-free single-producer single-consumer
// ring between two spinning goroutines, the limit of a cross-goroutine
// handoff.
func BenchmarkW2_BaselineSPSC(b *testing.B) {
	const size = 1024
	var (
		buf        [size][]byte
		head, tail atomic.Uint64
	)
	done := make(chan struct{})
	go func() {
		var h uint64
		for n := 0; n < b.N; {
			t := tail.Load()
			for ; h < t; h++ {
				_ = buf[h%size]
				n++
			}
			head.Store(h)
			if h == t {
				runtime.Gosched()
			}
		}
		close(done)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	var t uint64
	for i := 0; i < b.N; i++ {
		for t-head.Load() >= size {
			runtime.Gosched()
		}
		buf[t%size] = payload
		t++
		tail.Store(t)
	}
	<-done
	b.StopTimer()
	reportRate(b, b.N)
}
