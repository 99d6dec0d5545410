package metrics

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/lifecycle"
)

// crash is a factory of agents that panic on "boom".
var crash = factory(func(_ *engine.Context, m engine.Message) {
	if string(m.Payload) == "boom" {
		panic("boom")
	}
})

// burn is a factory of agents that keep their loop busy for the duration
// in their payload.
var burn = factory(func(_ *engine.Context, m engine.Message) {
	d, err := time.ParseDuration(string(m.Payload))
	if err != nil {
		panic(err)
	}
	for start := time.Now(); time.Since(start) < d; {
	}
})

// trafficEngine runs known traffic through three types on two loops and
// returns once the engine's Stats show all of it:
//
//	sensor: 10 messages on loop 0, 4 on loop 1
//	queue:  paused on loop 1, capacity 3 DropNewest, 5 sent: 3 queued, 2 dropped
//	crash:  "boom" (a panic and a restart), then "ok", on loop 0
func trafficEngine(t *testing.T) *engine.Engine {
	t.Helper()
	e := startEngine(t, engine.WithLoops(2))
	register(t, e, "sensor", nop)
	register(t, e, "queue", nop, engine.Mailbox(3, engine.DropNewest))
	register(t, e, "crash", crash, engine.Restarts(5, time.Minute))

	s0 := spawn(t, e, engine.AgentID{Type: "sensor", Key: "0"}, engine.OnLoop(0))
	s1 := spawn(t, e, engine.AgentID{Type: "sensor", Key: "1"}, engine.OnLoop(1))
	q0 := spawn(t, e, engine.AgentID{Type: "queue", Key: "0"}, engine.OnLoop(1))
	c0 := spawn(t, e, engine.AgentID{Type: "crash", Key: "0"}, engine.OnLoop(0))
	send(t, s0, 10)
	send(t, s1, 4)
	for _, p := range []string{"boom", "ok"} {
		if err := c0.Send([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "queue/0 is running", func() bool { return q0.State() == lifecycle.Running })
	if err := e.Pause(q0.ID()); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	send(t, q0, 5)

	eventually(t, "the traffic shows in Stats", func() bool {
		s := e.Stats()
		return s.Processed == 16 && s.Dropped == 2 && s.Queued == 3 && s.Restarts == 1 && s.Panics == 1
	})
	return e
}

// stopEngine stops e gracefully and returns its final Stats. Loops publish
// their counters one after another, so only a stopped engine's figures can
// be compared exactly with a scrape.
func stopEngine(t *testing.T, e *engine.Engine) engine.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	return e.Stats()
}

// TestCollectorCounts checks every engine-wide and per-type series of a
// scrape over HTTP against the traffic that was sent.
func TestCollectorCounts(t *testing.T) {
	e := trafficEngine(t)
	f := scrape(t, serve(t, e))

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"agentloop_agents", nil, 4},
		{"agentloop_dead_letters_total", nil, 2},
		{"agentloop_panics_total", nil, 1},

		{"agentloop_messages_received_total", typ("sensor"), 14},
		{"agentloop_messages_processed_total", typ("sensor"), 14},
		{"agentloop_messages_dropped_total", typ("sensor"), 0},
		{"agentloop_restarts_total", typ("sensor"), 0},
		{"agentloop_mailbox_messages", typ("sensor"), 0},

		{"agentloop_messages_received_total", typ("queue"), 5},
		{"agentloop_messages_processed_total", typ("queue"), 0},
		{"agentloop_messages_dropped_total", typ("queue"), 2},
		{"agentloop_restarts_total", typ("queue"), 0},
		{"agentloop_mailbox_messages", typ("queue"), 3},

		{"agentloop_messages_received_total", typ("crash"), 2},
		{"agentloop_messages_processed_total", typ("crash"), 2},
		{"agentloop_messages_dropped_total", typ("crash"), 0},
		{"agentloop_restarts_total", typ("crash"), 1},
		{"agentloop_mailbox_messages", typ("crash"), 0},
	}
	for _, c := range checks {
		if got := f.value(t, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"agentloop_agents", "agentloop_dead_letters_total", "agentloop_panics_total"} {
		if n := len(f[name].GetMetric()); n != 1 {
			t.Errorf("%s has %d series, want 1", name, n)
		}
	}
	if n := len(f["agentloop_messages_processed_total"].GetMetric()); n != 3 {
		t.Errorf("agentloop_messages_processed_total has %d series, want one per type (3)", n)
	}
}

// TestCollectorHistogram checks the handler histogram of each type: its
// count is the messages processed, its buckets are the engine's bounds in
// seconds with cumulative, monotone counts, and it matches the engine's
// own figures.
func TestCollectorHistogram(t *testing.T) {
	e := trafficEngine(t)
	url := serve(t, e)
	s := stopEngine(t, e)
	f := scrape(t, url)
	if got := s.Types[1]; got.Type != "queue" || got.Processed != 3 {
		t.Fatalf("after Stop, %s processed %d, want queue with 3", got.Type, got.Processed)
	}

	if got := f["agentloop_handler_seconds"].GetType(); got != dto.MetricType_HISTOGRAM {
		t.Fatalf("agentloop_handler_seconds is a %v, want a histogram", got)
	}
	for _, ts := range s.Types {
		h := f.metric(t, "agentloop_handler_seconds", typ(ts.Type)).GetHistogram()
		if h.GetSampleCount() != ts.Processed {
			t.Errorf("%s: histogram count %d, want %d processed", ts.Type, h.GetSampleCount(), ts.Processed)
		}
		if got, want := h.GetSampleSum(), ts.Handler.Sum.Seconds(); math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: histogram sum %v, engine says %v", ts.Type, got, want)
		}
		// The text format spells out the +Inf bucket, the engine's last.
		bs := h.GetBucket()
		if len(bs) != engine.HandlerBuckets {
			t.Fatalf("%s: %d buckets, want %d", ts.Type, len(bs), engine.HandlerBuckets)
		}
		var cum uint64
		for i, b := range bs {
			want := math.Inf(1)
			if d := engine.HandlerBucketBound(i); d >= 0 {
				want = d.Seconds()
			}
			if b.GetUpperBound() != want {
				t.Errorf("%s: bucket %d bound %v, want %v", ts.Type, i, b.GetUpperBound(), want)
			}
			if i > 0 && b.GetCumulativeCount() < bs[i-1].GetCumulativeCount() {
				t.Errorf("%s: bucket %d count %d below bucket %d's %d", ts.Type, i, b.GetCumulativeCount(), i-1, bs[i-1].GetCumulativeCount())
			}
			cum += ts.Handler.Buckets[i]
			if b.GetCumulativeCount() != cum {
				t.Errorf("%s: bucket %d count %d, want %d", ts.Type, i, b.GetCumulativeCount(), cum)
			}
		}
		if inf := bs[len(bs)-1].GetCumulativeCount(); inf != h.GetSampleCount() {
			t.Errorf("%s: +Inf bucket %d, want the count %d", ts.Type, inf, h.GetSampleCount())
		}
	}
}

// TestCollectorLoops checks the per-loop series against the engine's
// figures and that utilisation is a ratio.
func TestCollectorLoops(t *testing.T) {
	e := trafficEngine(t)
	url := serve(t, e)
	s := stopEngine(t, e)
	f := scrape(t, url)

	if len(s.Loops) != 2 {
		t.Fatalf("%d loops, want 2", len(s.Loops))
	}
	var picks float64
	for _, l := range s.Loops {
		ll := loopLabel(l.Loop)
		if got := f.value(t, "agentloop_loop_turns_total", ll); got < 1 {
			t.Errorf("loop %d: turns_total = %v, want at least 1", l.Loop, got)
		}
		if got, want := f.value(t, "agentloop_loop_busy_seconds_total", ll), l.Busy.Seconds(); got != want {
			t.Errorf("loop %d: busy_seconds_total = %v, engine says %v", l.Loop, got, want)
		}
		if got := f.value(t, "agentloop_loop_utilisation_ratio", ll); got < 0 || got > 1 {
			t.Errorf("loop %d: utilisation_ratio = %v, want within [0, 1]", l.Loop, got)
		}
		exact := []struct {
			name string
			want float64
		}{
			{"agentloop_loop_inbox_envelopes", float64(l.Inbox)},
			{"agentloop_loop_runnable_agents", float64(l.Runnable)},
			{"agentloop_loop_timers", float64(l.Timers)},
			{"agentloop_loop_scheduler_picks_total", float64(l.Scheduler.Picks)},
			{"agentloop_loop_scheduler_aged_picks_total", float64(l.Scheduler.AgedPicks)},
			{"agentloop_loop_scheduler_longest_wait_picks", float64(l.Scheduler.LongestWait)},
		}
		for _, x := range exact {
			if got := f.value(t, x.name, ll); got != x.want {
				t.Errorf("loop %d: %s = %v, engine says %v", l.Loop, x.name, got, x.want)
			}
		}
		f.value(t, "agentloop_loop_parks_total", ll) // present
		picks += f.value(t, "agentloop_loop_scheduler_picks_total", ll)
	}
	if picks == 0 {
		t.Error("no scheduler picks on any loop after 19 messages")
	}
	if n := len(f["agentloop_loop_turns_total"].GetMetric()); n != 2 {
		t.Errorf("agentloop_loop_turns_total has %d series, want one per loop (2)", n)
	}
}

// TestSeriesDoNotGrowWithAgents checks the cardinality rule: a thousand
// agents of one type have the series of one.
func TestSeriesDoNotGrowWithAgents(t *testing.T) {
	e := startEngine(t, engine.WithLoops(2))
	register(t, e, "device", nop)
	url := serve(t, e)

	send(t, spawn(t, e, engine.AgentID{Type: "device", Key: "0"}), 1)
	waitProcessed(t, e, 1)
	one := scrape(t, url)
	all1, typed1 := one.series("agentloop_", "type")

	const n = 1000
	for i := 1; i < n; i++ {
		send(t, spawn(t, e, engine.AgentID{Type: "device", Key: itoa(uint64(i))}), 1)
	}
	waitProcessed(t, e, n)
	many := scrape(t, url)
	all, typed := many.series("agentloop_", "type")

	if got := many.value(t, "agentloop_agents", nil); got != n {
		t.Fatalf("agentloop_agents = %v, want %d", got, n)
	}
	if got := many.value(t, "agentloop_messages_processed_total", typ("device")); got != n {
		t.Errorf("processed_total = %v, want %d", got, n)
	}
	if typed != typed1 || all != all1 {
		t.Errorf("series with 1 agent: %d (%d by type); with %d agents: %d (%d by type)", all1, typed1, n, all, typed)
	}
	if want := 6; typed != want {
		t.Errorf("%d series labelled by type for one type, want %d", typed, want)
	}
	if want := 3 + 6 + 10*2; all != want {
		t.Errorf("%d series, want 3 + 6·types + 10·loops = %d", all, want)
	}
}

// TestUtilisation drives the collector's clock: the first scrape reports
// the busy time since NewCollector over the wall time since then, the next
// one only what happened in between.
func TestUtilisation(t *testing.T) {
	e := startEngine(t, engine.WithLoops(2))
	register(t, e, "burner", burn)
	send1 := spawn(t, e, engine.AgentID{Type: "burner", Key: "0"}, engine.OnLoop(0))
	burst := func(n int) {
		t.Helper()
		for range n {
			if err := send1.Send([]byte("5ms")); err != nil {
				t.Fatal(err)
			}
		}
	}
	burst(2) // before the collector: not part of its first interval
	waitProcessed(t, e, 2)

	c := NewCollector(e)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	base := c.lastBusy()
	if base[0] < 10*time.Millisecond {
		t.Fatalf("baseline busy time of loop 0 is %v after 10ms of work", base[0])
	}
	start := c.prevAt
	var wall time.Duration
	c.now = func() time.Time { return start.Add(wall) }

	burst(4)
	waitBusy(t, e, 0, base[0]+20*time.Millisecond)

	wall = 2 * time.Second
	util := gatherUtilisation(t, reg)
	first := c.lastBusy()
	for i := range first {
		want := float64(first[i]-base[i]) / float64(wall)
		if math.Abs(util[i]-want) > 1e-9 {
			t.Errorf("first scrape: loop %d utilisation %v, want %v", i, util[i], want)
		}
	}
	if min := float64(20*time.Millisecond) / float64(wall); util[0] < min {
		t.Errorf("first scrape: loop 0 utilisation %v after 20ms of work in %v, want at least %v", util[0], wall, min)
	}

	// The second scrape covers only the second since the first.
	burst(2)
	waitBusy(t, e, 0, first[0]+10*time.Millisecond)
	wall = 3 * time.Second
	util = gatherUtilisation(t, reg)
	second := c.lastBusy()
	for i := range second {
		want := float64(second[i]-first[i]) / float64(time.Second)
		if math.Abs(util[i]-want) > 1e-9 {
			t.Errorf("second scrape: loop %d utilisation %v, want %v", i, util[i], want)
		}
	}
	if util[0] < 0.010 {
		t.Errorf("second scrape: loop 0 utilisation %v after 10ms of work in 1s, want at least 0.01", util[0])
	}

	// After Stop no loop runs: the last interval is idle.
	stopEngine(t, e)
	wall = 4 * time.Second
	gatherUtilisation(t, reg)
	wall = 5 * time.Second
	for i, u := range gatherUtilisation(t, reg) {
		if u != 0 {
			t.Errorf("scrape of a stopped engine: loop %d utilisation %v, want 0", i, u)
		}
	}
}

// lastBusy returns the busy times of the collector's last snapshot.
func (c *Collector) lastBusy() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.prevBusy...)
}

// waitBusy waits until loop li of e has published at least d of busy time.
func waitBusy(t *testing.T, e *engine.Engine, li int, d time.Duration) {
	t.Helper()
	eventually(t, "loop "+itoa(uint64(li))+" is busy for "+d.String(), func() bool { return e.Stats().Loops[li].Busy >= d })
}

// TestUtilisationOverHTTP scrapes a busy loop twice on the real clock:
// every loop's utilisation is a ratio, and the busy loop's is above zero.
func TestUtilisationOverHTTP(t *testing.T) {
	e := startEngine(t, engine.WithLoops(2))
	register(t, e, "burner", burn)
	url := serve(t, e)
	r := spawn(t, e, engine.AgentID{Type: "burner", Key: "0"}, engine.OnLoop(1))

	scrape(t, url)
	for range 4 {
		if err := r.Send([]byte("5ms")); err != nil {
			t.Fatal(err)
		}
	}
	waitBusy(t, e, 1, 20*time.Millisecond)
	f := scrape(t, url)
	for i := range 2 {
		u := f.value(t, "agentloop_loop_utilisation_ratio", loopLabel(i))
		if u < 0 || u > 1 {
			t.Errorf("loop %d: utilisation %v, want within [0, 1]", i, u)
		}
		if i == 1 && u == 0 {
			t.Errorf("loop 1: utilisation 0 after 20ms of work")
		}
	}
	if b := f.value(t, "agentloop_loop_busy_seconds_total", loopLabel(1)); b < 0.020 {
		t.Errorf("loop 1: busy_seconds_total %v after 20ms of work", b)
	}
}

func gatherUtilisation(t *testing.T, g prometheus.Gatherer) map[int]float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[int]float64{}
	for _, mf := range fams {
		if mf.GetName() != "agentloop_loop_utilisation_ratio" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for i := range 2 {
				if hasLabels(m, loopLabel(i)) {
					out[i] = m.GetGauge().GetValue()
				}
			}
		}
	}
	if len(out) != 2 {
		t.Fatalf("utilisation of %d loops, want 2", len(out))
	}
	return out
}

func TestUtilisationRatio(t *testing.T) {
	cases := []struct {
		busy, wall time.Duration
		want       float64
	}{
		{0, time.Second, 0},
		{250 * time.Millisecond, time.Second, 0.25},
		{time.Second, time.Second, 1},
		{2 * time.Second, time.Second, 1}, // a turn published late: clamped
		{-time.Millisecond, time.Second, 0},
		{time.Millisecond, 0, 0},
		{time.Millisecond, -time.Second, 0},
	}
	for _, c := range cases {
		if got := utilisation(c.busy, c.wall); got != c.want {
			t.Errorf("utilisation(%v, %v) = %v, want %v", c.busy, c.wall, got, c.want)
		}
	}
}

// TestHistogramConversion checks the conversion of non-cumulative engine
// buckets to Prometheus' cumulative ones on hand-made figures.
func TestHistogramConversion(t *testing.T) {
	last := engine.HandlerBuckets - 1
	cases := []struct {
		name    string
		buckets map[int]uint64 // engine bucket -> messages
		sum     time.Duration
	}{
		{"empty", nil, 0},
		{"first only", map[int]uint64{0: 5}, 500 * time.Nanosecond},
		{"unbounded only", map[int]uint64{last: 2}, 5 * time.Second},
		{"spread", map[int]uint64{0: 1, 3: 4, 10: 2, last - 1: 7, last: 1}, 3 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h engine.HandlerStats
			var total uint64
			for i, n := range c.buckets {
				h.Buckets[i] = n
				total += n
			}
			h.Count, h.Sum = total, c.sum
			count, sum, got := histogram(h)
			if count != total {
				t.Errorf("count %d, want %d", count, total)
			}
			if sum != c.sum.Seconds() {
				t.Errorf("sum %v, want %v", sum, c.sum.Seconds())
			}
			if len(got) != last {
				t.Fatalf("%d buckets, want %d", len(got), last)
			}
			var cum uint64
			for i := range last {
				cum += c.buckets[i]
				bound := engine.HandlerBucketBound(i).Seconds()
				if v, ok := got[bound]; !ok || v != cum {
					t.Errorf("bucket le=%v: %d (present %v), want %d", bound, v, ok, cum)
				}
			}
			// The const histogram accepts it: bounds and counts are valid.
			d := prometheus.NewDesc("h_seconds", "h", nil, nil)
			if _, err := prometheus.NewConstHistogram(d, count, sum, got); err != nil {
				t.Errorf("NewConstHistogram: %v", err)
			}
		})
	}
}

// TestLint checks the series against Prometheus' naming conventions, and
// that a pedantic registry finds every collected series described.
func TestLint(t *testing.T) {
	e := trafficEngine(t)
	c := NewCollector(e)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatalf("CollectAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("pedantic Gather: %v", err)
	}
	if got, want := testutil.CollectAndCount(c), 3+6*3+10*2; got != want {
		t.Errorf("CollectAndCount = %d, want 3 + 6·types + 10·loops = %d", got, want)
	}
	var descs int
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for range ch {
		descs++
	}
	if descs != 19 {
		t.Errorf("Describe sent %d descriptors, want 19", descs)
	}
}

func TestOptions(t *testing.T) {
	e := startEngine(t, engine.WithLoops(1))
	register(t, e, "device", nop)

	cases := []struct {
		name   string
		opts   []Option
		prefix string
		labels map[string]string
	}{
		{"default", nil, "agentloop_", nil},
		{"namespace", []Option{WithNamespace("gateway")}, "gateway_", nil},
		{"no namespace", []Option{WithNamespace("")}, "", nil},
		{"namespace with a colon", []Option{WithNamespace("site:gw")}, "site:gw_", nil},
		{"const labels", []Option{
			WithConstLabels(prometheus.Labels{"site": "north", "engine": "a"}),
			WithConstLabels(prometheus.Labels{"engine": "b"}),
		}, "agentloop_", map[string]string{"site": "north", "engine": "b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			if err := reg.Register(NewCollector(e, c.opts...)); err != nil {
				t.Fatalf("Register: %v", err)
			}
			fams, err := reg.Gather()
			if err != nil {
				t.Fatalf("Gather: %v", err)
			}
			if len(fams) != 19 {
				t.Errorf("%d families, want 19", len(fams))
			}
			for _, mf := range fams {
				name := mf.GetName()
				if !strings.HasPrefix(name, c.prefix) || strings.HasPrefix(name, "_") {
					t.Errorf("family %s: want prefix %q", name, c.prefix)
				}
				if rest := strings.TrimPrefix(name, c.prefix); strings.HasPrefix(rest, "agentloop_") {
					t.Errorf("family %s keeps the default namespace", name)
				}
				for _, m := range mf.GetMetric() {
					if !hasLabels(m, c.labels) {
						t.Errorf("%s: labels %v, want to include %v", name, m.GetLabel(), c.labels)
					}
				}
			}
		})
	}
}

// TestBadOptions checks that options a registry would refuse are refused
// by Register, and that collecting anyway does not panic.
func TestBadOptions(t *testing.T) {
	e := startEngine(t, engine.WithLoops(1))
	register(t, e, "device", nop)

	cases := []struct {
		name    string
		opt     Option
		mention string
	}{
		{"namespace with a dash", WithNamespace("bad-ns"), `"bad-ns"`},
		{"namespace with a leading digit", WithNamespace("9gw"), `"9gw"`},
		{"const label named type", WithConstLabels(prometheus.Labels{"type": "x"}), `"type"`},
		{"const label named loop", WithConstLabels(prometheus.Labels{"loop": "x"}), `"loop"`},
		{"const label with a leading digit", WithConstLabels(prometheus.Labels{"0site": "x"}), `"0site"`},
		{"const label with a dot", WithConstLabels(prometheus.Labels{"site.name": "x"}), `"site.name"`},
		{"reserved const label", WithConstLabels(prometheus.Labels{"__site": "x"}), `"__site"`},
		{"empty const label name", WithConstLabels(prometheus.Labels{"": "x"}), `""`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			col := NewCollector(e, c.opt)
			err := prometheus.NewRegistry().Register(col)
			if err == nil {
				t.Fatal("Register accepted the collector")
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("Register error %q does not name %s", err, c.mention)
			}
			ch := make(chan prometheus.Metric)
			go func() { col.Collect(ch); close(ch) }()
			var invalid int
			for m := range ch {
				if err := m.Write(&dto.Metric{}); err != nil {
					invalid++
				}
			}
			if invalid == 0 {
				t.Error("Collect sent no invalid metric")
			}
		})
	}
}

// TestConcurrentScrapes scrapes one collector from several goroutines
// while the engine works (run with -race).
func TestConcurrentScrapes(t *testing.T) {
	e := startEngine(t, engine.WithLoops(2))
	register(t, e, "device", nop)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(e))
	r := spawn(t, e, engine.AgentID{Type: "device", Key: "0"})

	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for range 50 {
				if _, err := reg.Gather(); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	send(t, r, 1000)
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	waitProcessed(t, e, 1000)
	util := gatherUtilisation(t, reg)
	for i, u := range util {
		if u < 0 || u > 1 {
			t.Errorf("loop %d: utilisation %v, want within [0, 1]", i, u)
		}
	}
}
