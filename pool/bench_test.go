package pool

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

type benchObj struct {
	id int
	_  [56]byte // make the object 64 bytes, a typical small struct
}

var sink *benchObj // keeps the "new" baseline from being optimised away

func BenchmarkPool(b *testing.B) {
	b.Run("Pool", func(b *testing.B) {
		b.ReportAllocs()
		var p Pool[benchObj]
		for range b.N {
			x := p.Get()
			x.id++
			p.Put(x)
		}
	})
	b.Run("sync.Pool", func(b *testing.B) {
		b.ReportAllocs()
		p := sync.Pool{New: func() any { return new(benchObj) }}
		for range b.N {
			x := p.Get().(*benchObj)
			x.id++
			*x = benchObj{}
			p.Put(x)
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			x := new(benchObj)
			x.id++
			sink = x
		}
	})
}

// BenchmarkPoolParallel measures the contended path: every P gets and puts.
func BenchmarkPoolParallel(b *testing.B) {
	b.Run("Pool", func(b *testing.B) {
		b.ReportAllocs()
		var p Pool[benchObj]
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.Put(p.Get())
			}
		})
	})
	b.Run("sync.Pool", func(b *testing.B) {
		b.ReportAllocs()
		p := sync.Pool{New: func() any { return new(benchObj) }}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				x := p.Get().(*benchObj)
				*x = benchObj{}
				p.Put(x)
			}
		})
	})
}

func BenchmarkBuffers(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"64B", 64}, {"4KiB", 4 << 10}, {"64KiB", 64 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			b.ReportAllocs()
			var bs Buffers
			for range b.N {
				bs.Get(size.n).Release()
			}
		})
	}
	b.Run("fanout8", func(b *testing.B) {
		// One payload shared by 8 holders: Retain once, Release 8 times.
		b.ReportAllocs()
		var bs Buffers
		for range b.N {
			buf := bs.Get(512)
			buf.Retain(7)
			for range 8 {
				buf.Release()
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var bs Buffers
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				bs.Get(1024).Release()
			}
		})
	})
	b.Run("make", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			p := make([]byte, 1024)
			byteSink = p
		}
	})
}

var byteSink []byte

// BenchmarkWorkers measures throughput: b.N tasks submitted, all waited for.
// The baseline starts one goroutine per task with go f(). Workers retries
// on ErrOverloaded, as a producer that sheds nothing would.
func BenchmarkWorkers(b *testing.B) {
	work := func() ([]byte, error) { return nil, nil }
	b.Run("Workers", func(b *testing.B) {
		b.ReportAllocs()
		w, err := NewWorkers(64, WithQueue(64))
		if err != nil {
			b.Fatal(err)
		}
		var pending atomic.Int64
		allDone := make(chan struct{})
		pending.Store(int64(b.N))
		done := func([]byte, error) {
			if pending.Add(-1) == 0 {
				close(allDone)
			}
		}
		var overloads int
		b.ResetTimer()
		for range b.N {
			for {
				err := w.Submit(work, done)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrOverloaded) {
					b.Fatal(err)
				}
				overloads++
				runtime.Gosched()
			}
		}
		<-allDone
		b.StopTimer()
		b.ReportMetric(float64(overloads)/float64(b.N), "overloads/op")
		if err := w.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		var wg sync.WaitGroup
		wg.Add(b.N)
		for range b.N {
			go func() {
				defer wg.Done()
				_, _ = work()
			}()
		}
		wg.Wait()
	})
}

// BenchmarkWorkersRoundTrip measures the latency of one task at a time:
// submit, run, deliver, and the submitter sees the result.
func BenchmarkWorkersRoundTrip(b *testing.B) {
	work := func() ([]byte, error) { return nil, nil }
	b.Run("Workers", func(b *testing.B) {
		b.ReportAllocs()
		w, err := NewWorkers(4)
		if err != nil {
			b.Fatal(err)
		}
		ch := make(chan struct{}, 1)
		done := func([]byte, error) { ch <- struct{}{} }
		b.ResetTimer()
		for range b.N {
			for w.Submit(work, done) != nil {
				runtime.Gosched() // the previous worker is still being recycled
			}
			<-ch
		}
		b.StopTimer()
		if err := w.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		ch := make(chan struct{}, 1)
		for range b.N {
			go func() {
				_, _ = work()
				ch <- struct{}{}
			}()
			<-ch
		}
	})
}
