package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sample reads testdata/bench.txt (a library suite run) and
// testdata/peers.txt (a peers suite run): six runs of each benchmark.
func sample(t *testing.T) *data {
	t.Helper()
	d := newData()
	for _, name := range []string{"bench.txt", "peers.txt"} {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		err = d.read(f, name)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestMedians(t *testing.T) {
	d := sample(t)
	cases := []struct {
		bench, unit string
		want        float64
		spread      string
	}{
		{"W1_InLoopSend", "ns/msg", 15, "±100%"},
		{"W1_InLoopSend", "allocs/op", 0, "±0%"},
		{"W2_RefSend", "msgs/s", 14285714, "±0%"},
		{"W7_TimerBurst", "late-p99-µs", 1500, "±0%"},
		{"W5/impl=agentloop", "ns/rt", 1200, "±17%"},
		{"W3/producers=8/impl=channels", "ns/msg", 210, "±0%"},
	}
	for _, c := range cases {
		b := d.benches[c.bench]
		if b == nil {
			t.Fatalf("%s not read", c.bench)
		}
		s, ok := b.summary(c.unit)
		if !ok {
			t.Fatalf("%s: no %s", c.bench, c.unit)
		}
		if !near(s.center, c.want) || s.n != 6 {
			t.Errorf("%s %s: median %v of %d runs, want %v of 6", c.bench, c.unit, s.center, s.n, c.want)
		}
		if got := s.spread(); got != c.spread {
			t.Errorf("%s %s: spread %q, want %q", c.bench, c.unit, got, c.spread)
		}
	}
	if d.benches["Unrelated"] != nil {
		t.Error("a benchmark outside the workloads was kept")
	}
	if got := d.config["cpu"]; len(got) != 1 || got[0] != "Intel(R) Xeon(R) Processor" {
		t.Errorf("cpu = %q", got)
	}
	if len(d.procs) != 1 || d.procs[0] != "2" {
		t.Errorf("GOMAXPROCS = %q, want [2]", d.procs)
	}
}

func TestNames(t *testing.T) {
	cases := []struct {
		name         string
		workload     int
		peers        bool
		impl, config string
		baseline     bool
	}{
		{"W1_InLoopSend", 1, false, "InLoopSend", "", false},
		{"W3_BaselineChannel/producers=8", 3, false, "BaselineChannel", "producers=8", true},
		{"W6_EnginePublish/subs=100/exact", 6, false, "EnginePublish", "subs=100/exact", false},
		{"W3/producers=8/impl=channels", 3, true, "channels", "producers=8", true},
		{"W9/impl=agentloop", 9, true, "agentloop", "", false},
		{"W9/impl=agentloop-unpooled", 9, true, "agentloop-unpooled", "", true},
		{"W10_Gateway", 10, false, "Gateway", "", false},
	}
	for _, c := range cases {
		b := newBench(c.name, c.workload)
		if b.peers != c.peers || b.impl != c.impl || b.config != c.config || b.baseline != c.baseline {
			t.Errorf("%s: peers %v impl %q config %q baseline %v, want %v %q %q %v",
				c.name, b.peers, b.impl, b.config, b.baseline, c.peers, c.impl, c.config, c.baseline)
		}
	}
	for in, want := range map[string][2]string{
		"W2_RefSend-2":         {"W2_RefSend", "2"},
		"W9/impl=agentloop-16": {"W9/impl=agentloop", "16"},
		"W9/impl=agentloop":    {"W9/impl=agentloop", ""},
		"W1_x-y":               {"W1_x-y", ""},
	} {
		if n, p := splitProcs(in); n != want[0] || p != want[1] {
			t.Errorf("splitProcs(%q) = %q, %q; want %q, %q", in, n, p, want[0], want[1])
		}
	}
}

func TestSpeedups(t *testing.T) {
	d := sample(t)
	cases := []struct {
		bench string
		ref   string
		want  float64
	}{
		{"W1_BaselineChannel", "W1_InLoopSend", 110.0 / 15},
		{"W3_BaselineChannel/producers=8", "W3_FanIn/producers=8", 2.12},
		{"W4_BaselineChannel", "W4_PingPong", 712.0 / 800},
		// The bus baseline has no exact/wildcard parameter: compared with
		// the first agentloop benchmark that extends its parameters.
		{"W6_BaselineMapBus/subs=100", "W6_EnginePublish/subs=100/exact", 0.25},
		// The burst baseline reports lateness, not ns/pair: compared with
		// the agentloop benchmark that reports lateness too.
		{"W7_BaselineAfterFuncBurst", "W7_TimerBurst", 76000.0 / 1500},
		{"W5/impl=protoactor", "W5/impl=agentloop", 10},
		{"W7/impl=channels", "W7/impl=agentloop", 1.2},
		{"W9/impl=agentloop-unpooled", "W9/impl=agentloop", 2.5},
	}
	for _, c := range cases {
		b := d.benches[c.bench]
		if ref := d.reference(b); ref == nil || ref.name != c.ref {
			t.Errorf("%s: reference %v, want %s", c.bench, ref, c.ref)
		}
		if got, ok := d.speedup(b); !ok || !near(got, c.want) {
			t.Errorf("%s: speedup %v (%v), want %v", c.bench, got, ok, c.want)
		}
	}
	if _, ok := d.speedup(d.benches["W1_InLoopSend"]); ok {
		t.Error("agentloop's own benchmark has a speedup")
	}
}

func TestVerdicts(t *testing.T) {
	d := sample(t)
	type key struct {
		workload int
		target   string
	}
	want := map[key]struct {
		verdict string
		value   float64
		from    string
	}{
		{1, "≤ 15 ns/msg"}:                                   {"met", 15, "W1_InLoopSend"},
		{1, "0 allocs"}:                                      {"met", 0, "W1_InLoopSend"},
		{2, "≤ 60 ns/msg"}:                                   {"not met", 70, "W2_RefSend"},
		{2, "0 allocs"}:                                      {"met", 0, "W2_RefSend"},
		{3, "≥ 1.5× the channel at 8 producers"}:             {"met", 2.12, "W3_BaselineChannel/producers=8 ÷ W3_FanIn/producers=8"},
		{4, "≤ 1.0× the unbuffered channel"}:                 {"not met", 800.0 / 712, "W4_PingPong ÷ W4_BaselineChannel"},
		{5, "≤ 1 500 ns/rt"}:                                 {"met", 1200, "W5/impl=agentloop"},
		{5, "≤ 2 allocs"}:                                    {"met", 0, "W5/impl=agentloop"},
		{6, "0 allocs per publish"}:                          {"met", 0, "W6_EnginePublish/subs=100/exact"},
		{6, "≤ 10 ns per in-loop delivery"}:                  {"met", 8, "W6_EnginePublish/subs=100/exact"},
		{7, "≤ 150 ns per schedule+cancel pair"}:             {"met", 120, "W7_AgentTimerPair"},
		{7, "burst p99 lateness ≤ 2 ms"}:                     {"met", 1500, "W7_TimerBurst"},
		{8, "≤ 300 B/agent"}:                                 {"not measured", 0, ""},
		{8, "≤ 500 ns/spawn"}:                                {"not measured", 0, ""},
		{9, "pooled: 0 allocs/cycle"}:                        {"met", 0, "W9/impl=agentloop"},
		{9, "pooled ≥ 2× faster than unpooled"}:              {"met", 2.5, "W9/impl=agentloop-unpooled ÷ W9/impl=agentloop"},
		{10, "≥ 1 M msg/s on 2 cores"}:                       {"not measured", 0, ""},
		{10, "max rate with p99 ≤ 1 ms ≥ 2× the baseline's"}: {"not measured", 0, ""},
	}
	got := d.evaluate()
	if len(got) != len(targets) {
		t.Fatalf("%d verdicts for %d targets", len(got), len(targets))
	}
	seen := 0
	for _, v := range got {
		w, ok := want[key{v.workload, v.target}]
		if !ok {
			t.Errorf("unexpected target W%d %q", v.workload, v.target)
			continue
		}
		seen++
		if v.String() != w.verdict || v.from != w.from {
			t.Errorf("W%d %q: %s from %q, want %s from %q", v.workload, v.target, v, v.from, w.verdict, w.from)
		}
		if !near(v.value, w.value) {
			t.Errorf("W%d %q: value %v, want %v", v.workload, v.target, v.value, w.value)
		}
	}
	if seen != len(want) {
		t.Errorf("%d of %d targets evaluated", seen, len(want))
	}
}

func TestRender(t *testing.T) {
	doc := render(sample(t), meta{cores: 2, commands: []string{"make bench"}, notes: []string{"A shared machine."}})
	for _, s := range []string{
		"- cpu: Intel(R) Xeon(R) Processor\n",
		"- cores: 2 (benchmarks ran with GOMAXPROCS 2)\n",
		"```sh\nmake bench\n```",
		"A shared machine.\n",
		// The workloads and targets are cited from the repository's own copy.
		"The workloads and targets are those of [bench/README.md](bench/README.md). ",
		"Each target of bench/README.md checked against the medians",
		"The idle-engine target of W7 in bench/README.md ",
		"| W2 | ≤ 60 ns/msg | ns/msg | ≤ 60 | 70 | `W2_RefSend` | **not met** |\n",
		"| W9 | pooled ≥ 2× faster than unpooled | unpooled ns ÷ pooled ns | ≥ 2 | 2.5× | `W9/impl=agentloop-unpooled ÷ W9/impl=agentloop` | **met** |\n",
		"| W10 | ≥ 1 M msg/s on 2 cores | max rate msgs/s | ≥ 1M | — | — | not measured |\n",
		"## W8: spawn idle agents\n\nNot measured: no W8 benchmarks in the input.\n",
		"| `W1_InLoopSend` | 15 ±100% | 15 ±100% | 0 ±0% | 0 ±0% | reference |\n",
		"| `W1_BaselineChannel` | 110 ±0% | 110 ±0% | 0 ±0% | 0 ±0% | 7.33× |\n",
		"| `W5/impl=protoactor` | 12k ±0% | 12k ±0% | 10 ±0% | 30 ±0% | 698 ±0% | 11 ±0% | 10× |\n",
		"| --- | --- | --- | ---: | ---: | --- | --- |\n", // the targets table's alignment
		// The peers summary: W7 has no ants row, W9 two agentloop columns.
		"| workload | unit | agentloop | agentloop-unpooled | channels | protoactor |\n",
		"| W7 | ns/pair | 300 |   | 360 |   |\n",
		"| W9 | ns/cycle | 100 | 250 |   | 5000 |\n",
		"| W3 producers=8 | ns/msg | 150 |   | 210 |   |\n",
	} {
		if !strings.Contains(doc, s) {
			t.Errorf("report lacks %q", s)
		}
	}
	if t.Failed() {
		t.Log(doc)
	}
}

func TestFormatNum(t *testing.T) {
	cases := map[float64]string{
		0: "0", 0.512: "0.512", 0.0123: "0.0123", 2.5: "2.5", 7.3333: "7.33", 42.09: "42.1",
		712: "712", 1452.4: "1452", 16500: "16.5k", 23758514: "23.8M", 1e6: "1M", 2.5e9: "2.5G", -3: "-3",
	}
	for in, want := range cases {
		if got := formatNum(in); got != want {
			t.Errorf("formatNum(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := run(out, []string{"testdata/bench.txt", "testdata/peers.txt"}, meta{cores: 2}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "# agentloop benchmarks\n") || !strings.Contains(string(b), "## W10: ") {
		t.Errorf("unexpected report:\n%s", b)
	}
	if err := run(out, []string{"testdata/missing.txt"}, meta{}); err == nil {
		t.Error("a missing input file is not an error")
	}
}
