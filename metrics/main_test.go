package metrics

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/goleak"

	"github.com/agentloop/agentloop/engine"
)

func TestMain(m *testing.M) {
	// IgnoreCurrent: the goroutines that exist before any test are those
	// of ants' package-level default pool, started by its init when the
	// engine is imported.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// waitTimeout bounds every wait: it only turns a hang into a failure.
const waitTimeout = 10 * time.Second

// agentFunc is an agent made of its Receive method.
type agentFunc func(c *engine.Context, m engine.Message)

func (f agentFunc) Receive(c *engine.Context, m engine.Message) { f(c, m) }

// factory returns a factory of agents that run f.
func factory(f func(c *engine.Context, m engine.Message)) func() engine.Agent {
	return func() engine.Agent { return agentFunc(f) }
}

// nop is a factory of agents that do nothing with what they receive.
var nop = factory(func(*engine.Context, engine.Message) {})

// startEngine returns a started engine that is stopped when the test ends.
func startEngine(t testing.TB, opts ...engine.Option) *engine.Engine {
	t.Helper()
	e, err := engine.New(opts...)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := e.Stop(ctx, engine.Immediate()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	if err := e.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return e
}

func register(t testing.TB, e *engine.Engine, name string, f func() engine.Agent, opts ...engine.RegisterOption) {
	t.Helper()
	if err := e.Register(name, f, opts...); err != nil {
		t.Fatalf("Register(%q): %v", name, err)
	}
}

func spawn(t testing.TB, e *engine.Engine, id engine.AgentID, opts ...engine.SpawnOption) engine.Ref {
	t.Helper()
	r, err := e.Spawn(id, opts...)
	if err != nil {
		t.Fatalf("Spawn(%v): %v", id, err)
	}
	return r
}

// send sends n messages to r.
func send(t testing.TB, r engine.Ref, n int) {
	t.Helper()
	for range n {
		if err := r.Send([]byte("x")); err != nil {
			t.Fatalf("Send to %v: %v", r.ID(), err)
		}
	}
}

// eventually polls cond until it holds. It is for the engine's Stats,
// which loops publish once per turn and which have no signal of their own.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", waitTimeout, what)
		}
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// waitProcessed waits until e's Stats count n processed messages.
func waitProcessed(t testing.TB, e *engine.Engine, n uint64) {
	t.Helper()
	eventually(t, "processed reaches "+itoa(n), func() bool { return e.Stats().Processed >= n })
	if got := e.Stats().Processed; got != n {
		t.Fatalf("Stats().Processed = %d, want %d", got, n)
	}
}

// serve serves e's metrics on a free loopback port until the test ends
// and returns the URL to scrape.
func serve(t testing.TB, e *engine.Engine, opts ...Option) string {
	t.Helper()
	stop, addr, err := Listen("127.0.0.1:0", e, opts...)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return "http://" + addr + Path
}

// families is a parsed scrape, by metric family name.
type families map[string]*dto.MetricFamily

// scrape GETs url and parses the text exposition format.
func scrape(t testing.TB, url string) families {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Ask for text: the parser below reads the text format only.
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape of %s: %v", url, err)
	}
	return fams
}

// metric returns the metric of family name whose labels include want,
// failing the test unless there is exactly one.
func (f families) metric(t testing.TB, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mf, ok := f[name]
	if !ok {
		t.Fatalf("no family %s in the scrape", name)
	}
	var found []*dto.Metric
	for _, m := range mf.GetMetric() {
		if hasLabels(m, want) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d metrics, want 1", name, want, len(found))
	}
	return found[0]
}

// value returns the value of a counter or gauge.
func (f families) value(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	m := f.metric(t, name, labels)
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

// series counts the metrics of the families whose names start with
// prefix (a histogram counting as one), and of those labelled with label.
func (f families) series(prefix, label string) (all, labelled int) {
	for name, mf := range f {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, m := range mf.GetMetric() {
			all++
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label {
					labelled++
					break
				}
			}
		}
	}
	return all, labelled
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func typ(name string) map[string]string { return map[string]string{"type": name} }
func loopLabel(i int) map[string]string { return map[string]string{"loop": itoa(uint64(i))} }

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
