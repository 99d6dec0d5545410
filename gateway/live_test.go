package gateway

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentloop/agentloop/enginetest"
)

// armedClock is enginetest's manual clock that signals each alarm set.
type armedClock struct {
	*enginetest.Clock
	armed chan struct{}
}

func (c armedClock) AfterFunc(d time.Duration, f func()) func() bool {
	stop := c.Clock.AfterFunc(d, f)
	select {
	case c.armed <- struct{}{}:
	default:
	}
	return stop
}

type lineChan chan string

func (w lineChan) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// TestLiveP99IsPerInterval feeds the live lines a run whose second
// interval stalls (its aggregates wait 200 ms) and whose other intervals
// take 100 µs: the second line's p99 shows the stall and the lines after
// it show the pipeline recovered, as do the intervals kept for the
// summary, where a p99 "so far" would stay pinned at the stall.
func TestLiveP99IsPerInterval(t *testing.T) {
	const interval, n = time.Second, 5
	clk := armedClock{enginetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), make(chan struct{}, 1)}
	origin := clk.Now()
	lines := make(lineChan, n)
	h := newHist()
	k := 0
	sample := func() liveSample { // called once per interval, at its end
		k++
		d := 100 * time.Microsecond
		if k == 2 {
			d = 200 * time.Millisecond
		}
		_ = h.RecordValues(int64(d), 100)
		return liveSample{processed: uint64(k) * 1000, agents: 3, lat: h}
	}
	done := make(chan struct{})
	result := make(chan []Interval, 1)
	go func() {
		result <- live(context.Background(), clock{clk}, origin, n*interval, Options{Live: lines, Interval: interval}, done, sample)
	}()
	var got []string
	for i := 1; i <= n; i++ {
		at := origin.Add(time.Duration(i) * interval)
		for next, ok := clk.Next(); !ok || !next.Equal(at); next, ok = clk.Next() {
			<-clk.armed // the line before is out; the next alarm comes
		}
		clk.Set(at)
		got = append(got, <-lines)
	}
	close(done)
	intervals := <-result

	p99 := regexp.MustCompile(`^t= +(\d)s +1000 msgs/s  p99 +(\S+)  agents +3 `)
	for i, l := range got {
		want := "0.100ms"
		if i == 1 {
			want = "200.016ms" // the bucket's highest value, 3 digits
		}
		m := p99.FindStringSubmatch(l)
		if m == nil || m[1] != string(rune('1'+i)) || m[2] != want {
			t.Errorf("line %d: %q, want t=%ds and p99 %s", i+1, l, i+1, want)
		}
	}
	if len(intervals) != n {
		t.Fatalf("%d intervals, want %d", len(intervals), n)
	}
	for i, iv := range intervals {
		want := 100 * time.Microsecond
		if i == 1 {
			want = 200 * time.Millisecond
		}
		if iv.At != time.Duration(i+1)*interval || iv.Span != interval || iv.Rate != 1000 || iv.Latency.Count != 100 ||
			!h.ValuesAreEquivalent(int64(iv.Latency.P99), int64(want)) || !h.ValuesAreEquivalent(int64(iv.Latency.Max), int64(want)) {
			t.Errorf("interval %d: %+v, want p99 and max %v of 100 measured", i+1, iv, want)
		}
	}
	if t.Failed() {
		t.Log(strings.Join(got, ""))
	}
}
