package main

import (
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
		// bench/README.md compares W2's channel with the default policy,
		// which runs after Block.
		{"W2_BaselineChannel", "W2_RefSendDrop", 32.0 / 30},
		// W10's two baselines: the max rate (more is better) and CPU per
		// message (less is better), each against the benchmark that
		// reports it.
		{"W10_BaselineGoroutines", "W10_Gateway", 2},
		{"W10_BaselineCPUPerMessage", "W10_CPUPerMessage", 2},
		{"W5_BaselineChannel", "W5_Request", 0.5},
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
		what     string
	}
	want := map[key]struct {
		verdict string
		value   float64
		from    string
	}{
		{1, "≤ 15 ns/msg", "ns/msg"}:                                                       {"met", 15, "W1_InLoopSend"},
		{1, "≤ 0.45× the channel", "agentloop ns/msg ÷ channel ns/msg"}:                    {"met", 15.0 / 110, "W1_InLoopSend ÷ W1_BaselineChannel"},
		{1, "0 allocs", "allocs/msg"}:                                                      {"met", 0, "W1_InLoopSend"},
		{2, "default policy ≤ 0.9× the channel", "default policy ns/msg ÷ channel ns/msg"}: {"not met", 30.0 / 32, "W2_RefSendDrop ÷ W2_BaselineChannel"},
		{2, "Block ≤ 1.15× the default policy", "Block ns/msg ÷ default policy ns/msg"}:    {"not met", 70.0 / 30, "W2_RefSend ÷ W2_RefSendDrop"},
		{2, "0 allocs", "allocs/msg, default policy"}:                                      {"met", 0, "W2_RefSendDrop"},
		{2, "0 allocs", "allocs/msg, Block"}:                                               {"met", 0, "W2_RefSend"},
		// Producers=2 is in the peers input only: its ratio comes from there.
		{3, "≤ 1.0× the channel at 2 and at 8 producers", "agentloop ns/msg ÷ channel ns/msg, 2 producers"}:               {"met", 140.0 / 150, "W3/producers=2/impl=agentloop ÷ W3/producers=2/impl=channels"},
		{3, "≤ 1.0× the channel at 2 and at 8 producers", "agentloop ns/msg ÷ channel ns/msg, 8 producers"}:               {"met", 100.0 / 212, "W3_FanIn/producers=8 ÷ W3_BaselineChannel/producers=8"},
		{4, "≤ 1.0× the unbuffered channels", "agentloop ns/rt ÷ channel ns/rt"}:                                          {"not met", 800.0 / 712, "W4_PingPong ÷ W4_BaselineChannel"},
		{5, "≤ 1.3× the channel ping-pong", "agentloop ns/rt ÷ channel ns/rt"}:                                            {"not met", 2, "W5_Request ÷ W5_BaselineChannel"},
		{5, "≤ 2 allocs per round trip", "allocs/rt"}:                                                                     {"met", 2, "W5_Request"},
		{6, "0 allocs per publish", "allocs/publish (100 subscribers)"}:                                                   {"met", 0, "W6_EnginePublish/subs=100/exact"},
		{6, "≤ 10 ns per in-loop delivery", "ns/delivery (100 subscribers)"}:                                              {"met", 8, "W6_EnginePublish/subs=100/exact"},
		{7, "≤ 150 ns per schedule+cancel pair", "ns/pair"}:                                                               {"met", 120, "W7_AgentTimerPair"},
		{7, "burst p99 lateness ≤ 2 ms", "late-p99-µs"}:                                                                   {"met", 1500, "W7_TimerBurst"},
		{7, "idle engine ≤ 0.1 % CPU", "cpu-% (1M armed timers)"}:                                                         {"met", 0.05, "W7_IdleArmedTimers"},
		{8, "≤ 500 ns per spawn", "ns/spawn"}:                                                                             {"not measured", 0, ""},
		{8, "≤ 300 B per agent", "bytes/agent"}:                                                                           {"not measured", 0, ""},
		{9, "pooled: 0 allocs per cycle", "allocs/cycle"}:                                                                 {"met", 0, "W9/impl=agentloop"},
		{9, "≥ 2× faster than unpooled", "unpooled ns ÷ pooled ns"}:                                                       {"met", 2.5, "W9/impl=agentloop-unpooled ÷ W9/impl=agentloop"},
		{10, "CPU per message at equal offered rate ≤ 0.5× the baseline's", "agentloop cpu-µs/msg ÷ baseline cpu-µs/msg"}: {"met", 0.5, "W10_CPUPerMessage ÷ W10_BaselineCPUPerMessage"},
		{10, "max rate with p99 ≤ 1 ms ≥ 1 M msgs/s on 2 cores", "max rate msgs/s"}:                                       {"not met", 400_000, "W10_Gateway"},
	}
	got := d.evaluate()
	if len(got) != len(targets) {
		t.Fatalf("%d verdicts for %d targets", len(got), len(targets))
	}
	seen := map[key]bool{}
	for _, v := range got {
		k := key{v.workload, v.target, v.what}
		w, ok := want[k]
		if !ok || seen[k] {
			t.Errorf("unexpected or repeated target W%d %q (%s)", v.workload, v.target, v.what)
			continue
		}
		seen[k] = true
		if v.String() != w.verdict || v.from != w.from {
			t.Errorf("W%d %q (%s): %s from %q, want %s from %q", v.workload, v.target, v.what, v, v.from, w.verdict, w.from)
		}
		if !near(v.value, w.value) {
			t.Errorf("W%d %q (%s): value %v, want %v", v.workload, v.target, v.what, v.value, w.value)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d of %d targets evaluated", len(seen), len(want))
	}
}

// TestVerdictFallback checks the choice of variant: a ratio is taken from
// the first variant whose two sides are both in the input, and a check
// with none is not measured.
func TestVerdictFallback(t *testing.T) {
	d := sample(t)
	delete(d.benches, "W4_BaselineChannel") // the library ratio has no denominator now
	// The peers input has no W4 either: not measured.
	for _, v := range d.evaluate() {
		if v.workload == 4 && v.measured {
			t.Errorf("W4 measured from %q without a channel baseline", v.from)
		}
	}
	delete(d.benches, "W10_BaselineCPUPerMessage")
	for _, v := range d.evaluate() {
		if v.workload == 10 && v.atMost && v.measured {
			t.Errorf("W10's CPU ratio measured without the baseline, from %q", v.from)
		}
	}
	// Both sides present, the library variant first; without the library's
	// W3 producers=8 pair, the peers' pair stands in.
	delete(d.benches, "W3_FanIn/producers=8")
	for _, v := range d.evaluate() {
		if v.workload == 3 && strings.HasSuffix(v.what, "8 producers") {
			if want := "W3/producers=8/impl=agentloop ÷ W3/producers=8/impl=channels"; v.from != want || !near(v.value, 150.0/210) {
				t.Errorf("W3 at 8 producers: %v from %q, want %v from %q", v.value, v.from, 150.0/210, want)
			}
		}
	}
}

// readmeTargets reads the targets column of bench/README.md's table of
// workloads: workload number → the cell's text.
func readmeTargets(t *testing.T) map[int]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cells := map[int]string{}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "| id | workload |") && strings.HasSuffix(line, "| target |"):
			in = true
		case in && strings.HasPrefix(line, "| W"):
			row := strings.Split(strings.Trim(line, "| "), "|")
			n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(row[0]), "W"))
			if err != nil {
				t.Fatalf("row %q: %v", line, err)
			}
			cells[n] = strings.TrimSpace(row[len(row)-1])
		case in && !strings.HasPrefix(line, "|"):
			in = false
		}
	}
	if len(cells) == 0 {
		t.Fatal("bench/README.md has no table of workloads and targets")
	}
	return cells
}

// comparison is a limit as the README words it: "≤ 0.45×", "≥ 1 M",
// "≤ 2 ms"; a bare "0 allocs" has no operator.
var comparison = regexp.MustCompile(`(?:([≤≥]) )?(\d+(?:\.\d+)?)(?: ?(ms|M)\b)?`)

// TestTargetsAreTheReadmes holds targets to bench/README.md: every check
// cites words of its workload's cell and has the limit those words give,
// and every comparison of the cells is checked (what is left of a cell
// once its checks' words are taken out is separators and remarks without
// a limit, such as "(no benchmark yet)").
func TestTargetsAreTheReadmes(t *testing.T) {
	cells := readmeTargets(t)
	rest := maps.Clone(cells)
	for _, c := range targets {
		cell, ok := cells[c.workload]
		if !ok {
			t.Errorf("W%d: not in bench/README.md", c.workload)
			continue
		}
		if !strings.Contains(cell, c.target) {
			t.Errorf("W%d: %q is not in the README's target %q", c.workload, c.target, cell)
			continue
		}
		rest[c.workload] = strings.ReplaceAll(rest[c.workload], c.target, "")
		// The limit is the last comparison of the words, or the bare 0 of
		// "0 allocs".
		var op, num, unit string
		for _, m := range comparison.FindAllStringSubmatch(c.target, -1) {
			if m[1] != "" || op == "" && m[2] == "0" {
				op, num, unit = m[1], m[2], m[3]
			}
		}
		limit, err := strconv.ParseFloat(num, 64)
		if err != nil {
			t.Errorf("W%d %q: no limit in the words", c.workload, c.target)
			continue
		}
		switch unit {
		case "ms": // the latency metrics are in µs
			limit *= 1000
		case "M":
			limit *= 1e6
		}
		if atMost := op != "≥"; atMost != c.atMost || !near(limit, c.limit) {
			t.Errorf("W%d %q (%s): limit %v, at most %v; the words say %v, at most %v", c.workload, c.target, c.what, c.limit, c.atMost, limit, atMost)
		}
	}
	remark := regexp.MustCompile(`\([^()≤≥]*\)`)
	separators := regexp.MustCompile(`^(?:[\s,;()]|and)*$`)
	for n, r := range rest {
		if left := remark.ReplaceAllString(r, ""); !separators.MatchString(left) {
			t.Errorf("W%d: %q of the README's target %q is not checked", n, strings.TrimSpace(left), cells[n])
		}
	}
	for n := 1; n <= maxWorkload; n++ {
		if _, ok := cells[n]; !ok {
			t.Errorf("W%d has no row in bench/README.md's table", n)
		}
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
		"| W2 | Block ≤ 1.15× the default policy | Block ns/msg ÷ default policy ns/msg | ≤ 1.15 | 2.33× | `W2_RefSend ÷ W2_RefSendDrop` | **not met** |\n",
		"| W7 | idle engine ≤ 0.1 % CPU | cpu-% (1M armed timers) | ≤ 0.1 | 0.05 | `W7_IdleArmedTimers` | **met** |\n",
		"| W8 | ≤ 500 ns per spawn | ns/spawn | ≤ 500 | — | — | not measured |\n",
		"| W9 | ≥ 2× faster than unpooled | unpooled ns ÷ pooled ns | ≥ 2 | 2.5× | `W9/impl=agentloop-unpooled ÷ W9/impl=agentloop` | **met** |\n",
		"| W10 | CPU per message at equal offered rate ≤ 0.5× the baseline's | agentloop cpu-µs/msg ÷ baseline cpu-µs/msg | ≤ 0.5 | 0.5× | `W10_CPUPerMessage ÷ W10_BaselineCPUPerMessage` | **met** |\n",
		"| W10 | max rate with p99 ≤ 1 ms ≥ 1 M msgs/s on 2 cores | max rate msgs/s | ≥ 1M | 400k | `W10_Gateway` | **not met** |\n",
		"| `W10_BaselineCPUPerMessage` | 700M ±0% | 1.4 ±0% | 0 ±0% | 198k ±0% | — | — | 315M ±0% | 70k ±0% | 2× |\n",
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
