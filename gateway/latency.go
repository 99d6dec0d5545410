package gateway

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms record nanoseconds from 1 ns to a minute with three
// significant digits (HdrHistogram: log-linear buckets, never averages).
const (
	histMin    = 1
	histMax    = int64(time.Minute)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// latency is one inference agent's (or goroutine's) histogram. An
// hdrhistogram is not safe for concurrent use: the owner records a whole
// batch under mu, and the live line and the summary read it under mu too,
// so the lock is taken once per batch and is almost never contended.
type latency struct {
	mu sync.Mutex // guards h
	h  *hdrhistogram.Histogram
	_  [40]byte // histograms of different agents on their own cache lines
}

// recordBatch records now−stamp for each stamp.
func (l *latency) recordBatch(now int64, stamps []int64) {
	l.mu.Lock()
	for _, s := range stamps {
		d := now - s
		if d < histMin {
			d = histMin
		}
		if d > histMax {
			d = histMax
		}
		_ = l.h.RecordValue(d) // in range by construction
	}
	l.mu.Unlock()
}

// latencies are the histograms of one run, one per inference instance.
type latencies []latency

func newLatencies(n int) latencies {
	ls := make(latencies, n)
	for i := range ls {
		ls[i].h = newHist()
	}
	return ls
}

// merged returns the merge of all the histograms, taken under each lock in
// turn.
func (ls latencies) merged() *hdrhistogram.Histogram {
	m := newHist()
	for i := range ls {
		ls[i].mu.Lock()
		m.Merge(ls[i].h)
		ls[i].mu.Unlock()
	}
	return m
}

// Percentiles are the latency figures of a run.
type Percentiles struct {
	Count          int64 // messages measured
	P50, P99, P999 time.Duration
	Max            time.Duration
}

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		Count: h.TotalCount(),
		P50:   time.Duration(h.ValueAtQuantile(50)),
		P99:   time.Duration(h.ValueAtQuantile(99)),
		P999:  time.Duration(h.ValueAtQuantile(99.9)),
		Max:   time.Duration(h.Max()),
	}
}

// intervalMeter turns the merged histograms of a run, taken again and
// again as they grow, into the histogram of what each interval added: the
// counts of the merge minus those of the merge before. Only the live
// sampling uses it, once per interval.
type intervalMeter struct {
	prev []int64 // the counts of the last merge, nil before the first
}

// next returns the histogram of what cur holds beyond the previous call's
// cur; cur must hold everything that one held (histograms only grow).
func (m *intervalMeter) next(cur *hdrhistogram.Histogram) *hdrhistogram.Histogram {
	s := cur.Export() // a copy of the counts
	counts := append([]int64(nil), s.Counts...)
	for i := range m.prev {
		s.Counts[i] -= m.prev[i]
	}
	m.prev = counts
	return hdrhistogram.Import(s)
}
