package peers

import (
	"context"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/panjf2000/ants/v2"

	"github.com/agentloop/agentloop/engine"
)

// payload is the 64-byte message body every workload sends.
var payload = make([]byte, 64)

// boxed is payload as an interface value, made once: protoactor messages
// are interfaces, and converting a slice to one allocates.
var boxed any = payload

// waitLimit bounds every wait in test mode, so a lost message fails the
// test instead of hanging it.
const waitLimit = 30 * time.Second

// A workload is one BenchmarkW<n> and the implementations it compares.
type workload struct {
	name    string
	testN   int      // operations per implementation in TestWorkloads
	metrics []string // units every implementation must report
	impls   []impl
}

// An impl runs the workload on one implementation. Its name is the
// sub-benchmark path, ending in impl=<implementation>.
type impl struct {
	name string
	run  func(r *runner)
}

func (w *workload) bench(b *testing.B) {
	for _, im := range w.impls {
		b.Run(im.name, func(b *testing.B) {
			im.run(&runner{tb: b, b: b, n: b.N})
		})
	}
}

// runner is what an implementation sees of the benchmark: b.N, the timer,
// metrics and delivery checks. In TestWorkloads it wraps a *testing.T, a
// fixed n, a wall clock, and records the metrics instead.
type runner struct {
	tb      testing.TB
	b       *testing.B // nil in tests
	n       int
	t0      time.Time
	elapsed time.Duration
	metrics map[string]float64
	checks  int
}

// start resets the timer and allocation counters just before the measured
// part.
func (r *runner) start() {
	if r.b != nil {
		r.b.ReportAllocs()
		r.b.ResetTimer()
		return
	}
	r.t0 = time.Now()
}

func (r *runner) stop() {
	if r.b != nil {
		r.b.StopTimer()
		return
	}
	r.elapsed = time.Since(r.t0)
}

func (r *runner) seconds() float64 {
	if r.b != nil {
		return r.b.Elapsed().Seconds()
	}
	return r.elapsed.Seconds()
}

func (r *runner) metric(v float64, unit string) {
	if r.b != nil {
		r.b.ReportMetric(v, unit)
		return
	}
	r.metrics[unit] = v
}

// rate reports msgs/s and ns/msg for msgs messages in the measured time.
func (r *runner) rate(msgs int) {
	sec := r.seconds()
	if msgs == 0 || sec == 0 {
		return
	}
	r.metric(float64(msgs)/sec, "msgs/s")
	r.metric(sec*1e9/float64(msgs), "ns/msg")
}

// per reports the measured time divided by count, in ns per unit.
func (r *runner) per(count int, unit string) {
	if count > 0 {
		r.metric(r.seconds()*1e9/float64(count), unit)
	}
}

// latency reports the median and 99th percentile of h in µs.
func (r *runner) latency(h *hdrhistogram.Histogram) {
	if h.TotalCount() == 0 {
		return
	}
	r.metric(float64(h.ValueAtQuantile(50))/1e3, "p50-µs")
	r.metric(float64(h.ValueAtQuantile(99))/1e3, "p99-µs")
}

// wait receives from ch; in tests it gives up after waitLimit.
func (r *runner) wait(ch <-chan struct{}) {
	if r.b != nil {
		<-ch
		return
	}
	select {
	case <-ch:
	case <-time.After(waitLimit):
		r.tb.Fatal("timed out waiting for deliveries")
	}
}

// waitGroup waits for wg as wait does for a channel.
func (r *runner) waitGroup(wg *sync.WaitGroup) {
	if r.b != nil {
		wg.Wait()
		return
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	r.wait(done)
}

// expect fails unless got == want: every implementation checks that what
// it counted arrived.
// Like must, it marks itself a helper only on failure (see must).
func (r *runner) expect(what string, got, want int) {
	r.checks++
	if got != want {
		r.tb.Helper()
		r.tb.Fatalf("%s: got %d, want %d", what, got, want)
	}
}

// must fails the run on err. It marks itself a helper only on failure:
// tb.Helper walks the caller's stack, which costs more than some
// workloads' own cycles when called in a timed loop.
func (r *runner) must(err error) {
	if err != nil {
		r.tb.Helper()
		r.tb.Fatal(err)
	}
}

// newEngine returns an engine with 2 loops, stopped at cleanup. It is not
// started, so agent types can still be registered.
func (r *runner) newEngine() *engine.Engine {
	e, err := engine.New(engine.WithLoops(2))
	r.must(err)
	r.tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			r.tb.Error(err)
		}
	})
	return e
}

// newSystem returns a protoactor actor system that logs nothing. An actor
// system has no goroutine of its own: its actors run on goroutines only
// while they have messages, so stopping them (stopActors) is the cleanup.
func (r *runner) newSystem() *actor.ActorSystem {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	r.tb.Cleanup(sys.Shutdown)
	return sys
}

// stopActors stops pids at cleanup and waits until each has stopped.
func (r *runner) stopActors(sys *actor.ActorSystem, pids ...*actor.PID) {
	r.tb.Cleanup(func() {
		futures := make([]*actor.Future, len(pids))
		for i, pid := range pids {
			futures[i] = sys.Root.StopFuture(pid)
		}
		for _, f := range futures {
			if err := f.Wait(); err != nil {
				r.tb.Error(err)
			}
		}
	})
}

// antsPoolSize bounds the workers of each ants pool. Submit blocks when
// every worker is busy, and a drain task may submit another actor's drain
// task, so the pool must be larger than the number of actors that can be
// busy at once in any workload (101 in W6).
const antsPoolSize = 1024

// newPool returns an ants pool, released at cleanup once its workers and
// its two housekeeping goroutines have ended.
func (r *runner) newPool() *ants.Pool {
	p, err := ants.NewPool(antsPoolSize)
	r.must(err)
	r.tb.Cleanup(func() {
		if err := p.ReleaseTimeout(30 * time.Second); err != nil {
			r.tb.Error(err)
		}
	})
	return p
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Second), 3)
}

// memInUse is live heap plus goroutine stacks, after a collection.
func memInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}

// finite reports whether v is a usable metric value.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
