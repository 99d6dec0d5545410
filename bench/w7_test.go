package bench

import (
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/RussellLuo/timingwheel"

	"github.com/agentloop/agentloop/engine"
)

// W7: timers. Schedule and cancel timers of 10 s (cost per pair), and a
// burst of timers due at the same instant (lateness percentiles).

// w7Arm schedules and cancels n timers inside one handler.
type w7Arm struct {
	n    int
	done chan struct{}
}

func (a *w7Arm) Receive(c *engine.Context, _ engine.Message) {
	for i := 0; i < a.n; i++ {
		t, err := c.After(10*time.Second, payload)
		if err != nil {
			panic(err)
		}
		t.Stop()
	}
	a.done <- struct{}{}
}

func BenchmarkW7_AgentTimerPair(b *testing.B) {
	e := newEngine(b, 2)
	arm := &w7Arm{n: b.N, done: make(chan struct{})}
	must(b, e.Register("arm", func() engine.Agent { return arm }))
	must(b, e.Start())
	ref, err := e.Spawn(engine.AgentID{Type: "arm", Key: "1"})
	must(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	must(b, ref.Send(nil))
	<-arm.done
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N), "ns/pair")
}

func BenchmarkW7_BaselineAfterFunc(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		t := time.AfterFunc(10*time.Second, func() {})
		t.Stop()
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N), "ns/pair")
}

func BenchmarkW7_BaselineWheel(b *testing.B) {
	tw := timingwheel.NewTimingWheel(time.Millisecond, 60)
	tw.Start()
	defer tw.Stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := tw.AfterFunc(10*time.Second, func() {})
		t.Stop()
	}
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N), "ns/pair")
}

// Burst: w7Burst timers all due at one instant, 300 ms ahead, spread over
// w7BurstAgents agents. Lateness is delivery time minus due time.
const (
	w7Burst       = 100000
	w7BurstAgents = 100
	w7Lead        = 300 * time.Millisecond
)

type w7Burster struct {
	due  time.Time
	late *[]time.Duration
	mu   *sync.Mutex
	left *int
	done chan struct{}
}

func (w *w7Burster) Receive(c *engine.Context, m engine.Message) {
	if m.Payload == nil { // arm
		for i := 0; i < w7Burst/w7BurstAgents; i++ {
			// On a machine too loaded to arm them all within w7Lead, the
			// last ones are due at once: their lateness still counts from
			// the common due time.
			if _, err := c.After(max(time.Until(w.due), time.Nanosecond), payload); err != nil {
				panic(err)
			}
		}
		return
	}
	l := time.Since(w.due)
	w.mu.Lock()
	*w.late = append(*w.late, l)
	*w.left--
	if *w.left == 0 {
		close(w.done)
	}
	w.mu.Unlock()
}

func BenchmarkW7_TimerBurst(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := newEngine(b, 2)
		var (
			late []time.Duration
			mu   sync.Mutex
			left = w7Burst
			done = make(chan struct{})
			due  = time.Now().Add(w7Lead)
		)
		must(b, e.Register("burst", func() engine.Agent {
			return &w7Burster{due: due, late: &late, mu: &mu, left: &left, done: done}
		}))
		must(b, e.Start())
		for a := 0; a < w7BurstAgents; a++ {
			must(b, e.SendID(engine.AgentID{Type: "burst", Key: strconv.Itoa(a)}, nil))
		}
		<-done
		reportLateness(b, late)
	}
}

func BenchmarkW7_BaselineAfterFuncBurst(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var (
			late []time.Duration
			mu   sync.Mutex
			wg   sync.WaitGroup
			due  = time.Now().Add(w7Lead)
		)
		wg.Add(w7Burst)
		for j := 0; j < w7Burst; j++ {
			time.AfterFunc(time.Until(due), func() {
				l := time.Since(due)
				mu.Lock()
				late = append(late, l)
				mu.Unlock()
				wg.Done()
			})
		}
		wg.Wait()
		reportLateness(b, late)
	}
}

// BenchmarkW7_BaselineBurstHandler: the limit of W7_TimerBurst. The burst
// handler's own work (read the clock, take the shared lock, append) for
// w7Burst timers that have all fired already, split between two
// goroutines as the engine's two loops split the burst: its lateness is
// what the handler alone costs, with no timer, mailbox or loop at all.
func BenchmarkW7_BaselineBurstHandler(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var (
			late []time.Duration
			mu   sync.Mutex
			wg   sync.WaitGroup
			due  = time.Now()
		)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range w7Burst / 2 {
					l := time.Since(due)
					mu.Lock()
					late = append(late, l)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		reportLateness(b, late)
	}
}

func reportLateness(b *testing.B, late []time.Duration) {
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	q := func(p float64) float64 { return float64(late[int(p*float64(len(late)-1))]) / 1e3 }
	b.ReportMetric(q(0.5), "late-p50-µs")
	b.ReportMetric(q(0.99), "late-p99-µs")
	b.ReportMetric(float64(late[0])/1e3, "late-min-µs")
}
