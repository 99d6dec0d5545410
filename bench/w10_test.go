package bench

import (
	"context"
	"flag"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/gateway"
)

// W10, the IoT gateway mix (bench/README.md), on the code of cmd/gateway and
// `agentloop load`: each iteration runs the embedded default mix (10 000
// devices, 16 feature, 4 inference, 1 alert agent; 2 loops) open loop at
// w10Rate for w10Window and reports the achieved rate, the end-to-end
// latency percentiles, process CPU and drops (medians over iterations).
//
// maxrate-msgs/s is the highest offered rate with p99 ≤ 1 ms and 95 % of
// it achieved. By default a quick search finds it (three runs of 300 ms:
// 100 000 msgs/s doubling, or halving if 100 000 fails); with -w10.search
// (or AGENTLOOP_W10_SEARCH=1) the full search of `agentloop load` runs
// (1 s runs, step ×2 from 100 000, three bisection rounds, one retry),
// which takes a minute or more:
//
//	go test -run '^$' -bench '^BenchmarkW10_' -benchtime 1x ./bench -w10.search
var w10Search = flag.Bool("w10.search", os.Getenv("AGENTLOOP_W10_SEARCH") != "",
	"W10: run the full step-up search for maxrate-msgs/s (default: a quick 3-run search)")

const (
	w10Rate   = 200_000
	w10Window = 500 * time.Millisecond
)

// w10MaxRates caches each system's search: the benchmark function runs
// once per b.N tried, the search once per process.
var w10MaxRates = struct {
	sync.Mutex
	found map[w10System]gateway.SearchResult
}{found: make(map[w10System]gateway.SearchResult)}

func w10Config(b *testing.B) *gateway.Config {
	cfg := gateway.Default()
	cfg.Load.Loops = 2
	cfg.Load.Rate = w10Rate
	cfg.Load.Duration = w10Window
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	return cfg
}

// w10System is what a W10 benchmark runs.
type w10System struct {
	baseline bool            // the goroutine baseline instead of the engine
	ingress  gateway.Ingress // on the engine
}

func benchW10(b *testing.B, sys w10System) {
	b.ReportAllocs()
	cfg := w10Config(b)
	cfg.Load.Ingress = sys.ingress
	baseline := sys.baseline
	run := gateway.RunnerFor(cfg, baseline, gateway.Options{})
	var (
		achieved, p50, p99, p999, cpu []float64
		dropped                       uint64
	)
	for b.Loop() {
		s, err := run(context.Background(), w10Rate)
		if err != nil {
			b.Fatal(err)
		}
		achieved = append(achieved, s.Achieved)
		p50 = append(p50, micros(s.Latency.P50))
		p99 = append(p99, micros(s.Latency.P99))
		p999 = append(p999, micros(s.Latency.P999))
		cpu = append(cpu, s.CPU)
		dropped += s.Dropped
	}
	b.StopTimer()
	b.ReportMetric(median(achieved), "msgs/s")
	b.ReportMetric(median(p50), "p50-µs")
	b.ReportMetric(median(p99), "p99-µs")
	b.ReportMetric(median(p999), "p999-µs")
	b.ReportMetric(median(cpu), "cpu-%")
	b.ReportMetric(float64(dropped)/float64(len(achieved)), "dropped")

	w10MaxRates.Lock()
	res, ok := w10MaxRates.found[sys]
	if !ok {
		o := gateway.DefaultSearch
		c := cfg.Clone()
		if *w10Search {
			c.Load.Duration = time.Second
		} else {
			c.Load.Duration = 300 * time.Millisecond
			o.MaxSteps, o.Rounds, o.Retries = 3, 0, 0
		}
		var err error
		res, err = gateway.Search(context.Background(), gateway.RunnerFor(c, baseline, gateway.Options{}), o, func(s gateway.Step) {
			b.Logf("search %s %d msgs/s: pass %v, achieved %.0f, p99 %v", s.Phase, s.Rate, s.Pass, s.Summary.Achieved, s.Summary.Latency.P99)
		})
		if err != nil {
			w10MaxRates.Unlock()
			b.Fatal(err)
		}
		w10MaxRates.found[sys] = res
	}
	w10MaxRates.Unlock()
	if res.MaxRate > 0 {
		b.ReportMetric(float64(res.MaxRate), "maxrate-msgs/s")
	} else {
		b.Logf("no rate passed down to %d msgs/s: maxrate-msgs/s omitted", res.FirstFail)
	}
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// BenchmarkW10_Gateway runs the mix on the engine, telemetry published on
// its topics from outside (ingress publish, the default configuration's).
func BenchmarkW10_Gateway(b *testing.B) { benchW10(b, w10System{ingress: gateway.Publish}) }

// BenchmarkW10_GatewayRoute runs the mix on the engine with telemetry sent
// to the device agents through a topic → agent table (ingress route), the
// way the baseline reaches its channels: the difference from
// BenchmarkW10_Gateway is the cost of the bus on the ingress path.
func BenchmarkW10_GatewayRoute(b *testing.B) { benchW10(b, w10System{ingress: gateway.Route}) }

// BenchmarkW10_BaselineGoroutines runs the same mix with a goroutine and a
// buffered channel per device (and per feature, inference and alert
// instance): gateway.RunBaseline.
func BenchmarkW10_BaselineGoroutines(b *testing.B) { benchW10(b, w10System{baseline: true}) }
