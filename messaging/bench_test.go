package messaging

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks of workload W6 (bench/README.md): publish a 64-byte payload to S
// subscribers, S = 1, 100, 10 000, beside a naive map bus. Run with
//
//	go test -run '^$' -bench '^BenchmarkW6_' -count 6 ./messaging/ | benchstat -
//
// ns/delivery is ns/op divided by S: the cost of reaching one in-process
// handler that does almost nothing.

var (
	benchSubs = []int{1, 100, 10000}
	benchSink int // written by the benchmark handlers, so they are not empty
)

const benchTopic = "telemetry.dev-42.temp"

// benchWildcards all match benchTopic.
var benchWildcards = []string{"telemetry.*.temp", "telemetry.>", "telemetry.dev-42.*", "*.dev-42.temp", ">"}

func benchHandler(_ string, p []byte) { benchSink += len(p) }

func BenchmarkW6_Publish(b *testing.B) {
	for _, n := range benchSubs {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			for _, kind := range []string{"exact", "wildcard"} {
				b.Run(kind, func(b *testing.B) {
					var bus Bus
					for i := range n {
						pattern := benchTopic
						if kind == "wildcard" {
							pattern = benchWildcards[i%len(benchWildcards)]
						}
						if _, err := bus.Subscribe(pattern, benchHandler); err != nil {
							b.Fatal(err)
						}
					}
					benchPublish(b, n, bus.Publish)
				})
			}
		})
	}
}

// BenchmarkW6_PublishParallel publishes from every P at once: matching reads
// only immutable data, so publishers do not contend.
func BenchmarkW6_PublishParallel(b *testing.B) {
	var bus Bus
	var delivered atomic.Int64
	for i := range 100 {
		h := func(string, []byte) {}
		if i == 0 {
			h = func(string, []byte) { delivered.Add(1) }
		}
		_, _ = bus.Subscribe(benchWildcards[i%len(benchWildcards)], h)
	}
	payload := make([]byte, 64)
	for range 2 {
		_, _ = bus.Publish(benchTopic, payload)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = bus.Publish(benchTopic, payload)
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/delivery")
}

// mapBus is the W6 baseline: the bus one writes first, a map from exact
// topic to handlers behind a RWMutex. It has no patterns.
type mapBus struct {
	mu sync.RWMutex
	m  map[string][]func(string, []byte)
}

func (mb *mapBus) subscribe(topic string, h func(string, []byte)) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.m == nil {
		mb.m = make(map[string][]func(string, []byte))
	}
	mb.m[topic] = append(mb.m[topic], h)
}

func (mb *mapBus) publish(topic string, payload []byte) (int, error) {
	mb.mu.RLock()
	hs := mb.m[topic]
	mb.mu.RUnlock()
	for _, h := range hs {
		h(topic, payload)
	}
	return len(hs), nil
}

func BenchmarkW6_BaselineMapBus(b *testing.B) {
	for _, n := range benchSubs {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			var mb mapBus
			for range n {
				mb.subscribe(benchTopic, benchHandler)
			}
			benchPublish(b, n, mb.publish)
		})
	}
}

// benchPublish times publish of a 64-byte payload to benchTopic, which must
// reach n handlers.
func benchPublish(b *testing.B, n int, publish func(string, []byte) (int, error)) {
	b.Helper()
	payload := make([]byte, 64)
	// Twice: a topic enters the match cache on its second miss.
	for range 2 {
		if got, err := publish(benchTopic, payload); got != n || err != nil {
			b.Fatalf("publish reached %d handlers, %v; want %d", got, err, n)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = publish(benchTopic, payload)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
}

// BenchmarkSublistMatch: the cost of one Match on a list of 10 000 device
// subscriptions, from the cache and without it (a new topic every time, as
// with more hot topics than the cache holds).
func BenchmarkSublistMatch(b *testing.B) {
	var s Sublist[int]
	for i := range 10000 {
		_ = s.Insert(fmt.Sprintf("telemetry.dev-%d.*", i), i)
	}
	_ = s.Insert("telemetry.>", -1)
	b.Run("cached", func(b *testing.B) {
		s.Match(benchTopic)
		s.Match(benchTopic)
		b.ReportAllocs()
		for b.Loop() {
			s.Match(benchTopic)
		}
	})
	b.Run("uncached", func(b *testing.B) {
		topics := make([]string, 4*cacheSize)
		for i := range topics {
			topics[i] = fmt.Sprintf("telemetry.dev-%d.temp", i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.Match(topics[i%len(topics)])
			i++
		}
	})
}

// BenchmarkSublistChurn: one subscribe and one unsubscribe per op, on a list
// of 1000 device subscriptions, while another goroutine matches a set of hot
// topics without pause. Every change invalidates the cache, so the matcher
// keeps refilling it; ns/match is what a publisher pays under that churn.
func BenchmarkSublistChurn(b *testing.B) {
	var s Sublist[int]
	for i := range 1000 {
		_ = s.Insert(fmt.Sprintf("telemetry.dev-%d.*", i), i)
	}
	_ = s.Insert("telemetry.>", -1)
	topics := make([]string, 64)
	for i := range topics {
		topics[i] = fmt.Sprintf("telemetry.dev-%d.temp", i)
	}
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		matches int
		spent   time.Duration
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		for ; !stop.Load(); matches++ {
			s.Match(topics[matches%len(topics)])
		}
		spent = time.Since(start)
	}()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := topics[i%len(topics)]
		if err := s.Insert(p, i); err != nil {
			b.Fatal(err)
		}
		if err := s.Remove(p, i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop.Store(true)
	wg.Wait()
	if matches > 0 {
		b.ReportMetric(float64(spent.Nanoseconds())/float64(matches), "ns/match")
	}
}

// BenchmarkSublistRemoveShared removes one of n values stored under one
// pattern and inserts it again: what one subscriber leaving a pattern
// that n share costs. Remove copies the pattern's values, so the cost
// grows with n (see Sublist.Remove).
func BenchmarkSublistRemoveShared(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			var s Sublist[int]
			for i := range n {
				_ = s.Insert("alerts.>", i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				v := i * 7919 % n
				i++
				if err := s.Remove("alerts.>", v); err != nil {
					b.Fatal(err)
				}
				if err := s.Insert("alerts.>", v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRouteLists: what the engine's publish pays to match one topic
// against its lists (one per loop, one for type subscriptions), two ways:
// Match per list, which validates and splits the topic again for each list
// and validates it once more when no list matched (as the engine did), and
// one Topic parsed once and matched with MatchTopic against the lists that
// have subscriptions. Shapes: the W10 gateway (three type-subscription
// patterns, "alerts.>" on one loop, nothing on the other; 40 000 distinct
// topics in turn) and W6 in the engine (one pattern on one loop, one hot
// topic).
func BenchmarkRouteLists(b *testing.B) {
	type shape struct {
		name   string
		lists  [][]string // patterns per list; an empty list has none
		topics []string
	}
	w10 := make([]string, 40000)
	for i := range w10 {
		w10[i] = fmt.Sprintf("telemetry.dev-%d.s%d", i/4, i%4)
	}
	shapes := []shape{
		{"w10", [][]string{{"alerts.>"}, nil, {"telemetry.*.*", "features.*", "aggregates.*"}}, w10},
		{"w6-exact", [][]string{{"sensor.room1.temp"}, nil, nil}, []string{"sensor.room1.temp"}},
		{"w6-wildcard", [][]string{{"sensor.*.temp"}, nil, nil}, []string{"sensor.room1.temp"}},
	}
	for _, sh := range shapes {
		lists := make([]*Sublist[int], len(sh.lists))
		for i, ps := range sh.lists {
			lists[i] = NewSublist[int]()
			for _, p := range ps {
				_ = lists[i].Insert(p, i)
			}
		}
		b.Run(sh.name+"/Match", func(b *testing.B) {
			b.ReportAllocs()
			i, n := 0, 0
			for b.Loop() {
				topic := sh.topics[i%len(sh.topics)]
				i++
				found := false
				for _, l := range lists {
					if r := l.Match(topic); len(r) > 0 {
						found = true
						n += len(r)
					}
				}
				if !found && ValidateTopic(topic) != nil {
					b.Fatal("invalid topic")
				}
			}
			benchSink += n
		})
		b.Run(sh.name+"/MatchTopic", func(b *testing.B) {
			b.ReportAllocs()
			i, n := 0, 0
			for b.Loop() {
				var t Topic
				if t.Parse(sh.topics[i%len(sh.topics)]) != nil {
					b.Fatal("invalid topic")
				}
				i++
				for _, l := range lists {
					if l.Count() > 0 {
						n += len(l.MatchTopic(&t))
					}
				}
			}
			benchSink += n
		})
	}
}
