package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/gateway"
)

// loadConfig is a mix small enough for -race on two cores.
const loadConfig = `load:
  rate: 1000
  loops: 2
agents:
  - {name: device, kind: device, instances: 40, feature_every: 2, subscribe: ["telemetry.*.*"]}
  - {name: feature, kind: feature, instances: 2, subscribe: ["features.*"]}
  - {name: inference, kind: inference, instances: 1, batch: 8, subscribe: ["aggregates.*"]}
  - {name: alert, kind: alert, instances: 1, subscribe: ["alerts.>"]}
`

func writeLoadConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mix.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// stepLine is a line of a search's progress.
var stepLine = regexp.MustCompile(`(?m)^  (baseline|agentloop) +(up|down|bisect) +(\d+) msgs/s  (pass|FAIL)  achieved +\d+  p99 +(?:\d+\.\d{3}ms|-)  cpu +[\d.]+%  dropped \d+( \(retry \d+\))?$`)

type step struct {
	system, phase string
	rate          int
	pass          bool
}

func steps(t *testing.T, stdout string) []step {
	t.Helper()
	var out []step
	for _, m := range stepLine.FindAllStringSubmatch(stdout, -1) {
		rate, err := strconv.Atoi(m[3])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, step{m[1], m[2], rate, m[4] == "pass"})
	}
	return out
}

// checkAlternate checks that the two searches took turns, agentloop
// first, until one of them ended.
func checkAlternate(t *testing.T, ss []step) {
	t.Helper()
	n := map[string]int{}
	for _, s := range ss {
		n[s.system]++
	}
	both := 2 * min(n["agentloop"], n["baseline"])
	for i, s := range ss {
		want := "agentloop"
		switch {
		case i < both && i%2 == 1:
			want = "baseline"
		case i >= both && n["baseline"] > n["agentloop"]:
			want = "baseline"
		}
		if s.system != want {
			t.Fatalf("run %d is %s's, want %s's: the runs do not alternate: %v", i, s.system, want, ss)
		}
	}
}

// TestLoadSmoke runs a real, short search on both systems. Whether a run
// passes depends on the machine; what the tool prints of it does not:
// the header, one line per run with the runs of the two searches taking
// turns, and a table whose max rates and ratio are those of the lines.
func TestLoadSmoke(t *testing.T) {
	cfg := writeLoadConfig(t, loadConfig)
	code, stdout, stderr := runCLI("load", "-config", cfg, "-duration", "250ms", "-start", "2000", "-max", "8000",
		"-step", "2", "-p99", "1s", "-achieved", "0.5", "-rounds", "1", "-baseline", "-ingress", "route")
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	if want := "load: 40 devices, 2 loops, 2 producers, ingress route, 250ms per run; pass: p99 ≤ 1s and ≥ 50% of the offered rate achieved\n" +
		"searching both systems, their runs alternating\n"; !strings.HasPrefix(stdout, want) {
		t.Errorf("output does not start with\n%s\n%s", want, stdout)
	}
	ss := steps(t, stdout)
	if got := strings.Count(stdout, "msgs/s  pass") + strings.Count(stdout, "msgs/s  FAIL"); got != len(ss) || len(ss) < 2 {
		t.Fatalf("%d well-formed run lines of %d:\n%s", len(ss), got, stdout)
	}
	checkAlternate(t, ss)
	best := map[string]int{}
	for _, s := range ss {
		if s.pass && s.rate > best[s.system] {
			best[s.system] = s.rate
		}
		if s.rate < 2000/16 || s.rate > 8000 {
			t.Errorf("rate %d outside the search's range", s.rate)
		}
	}
	table := stdout[strings.Index(stdout, "max rate with p99 ≤ 1s:\n\n"):]
	rows := strings.Split(strings.ReplaceAll(strings.TrimSpace(table), "\n\n", "\n"), "\n")
	wantRows := []string{"max rate", "| metric", "|---", "| max offered rate (msg/s)", "| throughput (msg/s)", "| p50 latency",
		"| p99 latency (ms)", "| p999 latency (ms)", "| CPU (% of a core)", "| dropped"}
	if len(rows) < len(wantRows) {
		t.Fatalf("table:\n%s", table)
	}
	for i, w := range wantRows {
		if !strings.HasPrefix(rows[i], w) {
			t.Errorf("row %d = %q, want %q", i, rows[i], w)
		}
	}
	if !regexp.MustCompile(`^\| metric +\| goroutine-per-device baseline \| +agentloop \|$`).MatchString(rows[1]) {
		t.Errorf("header %q", rows[1])
	}
	cell := func(system string) string {
		if best[system] == 0 {
			return "no rate passed"
		}
		return group(int64(best[system]))
	}
	if want := regexp.MustCompile(`^\| max offered rate \(msg/s\) \| +` + cell("baseline") + ` \| +` + cell("agentloop") + ` \|$`); !want.MatchString(rows[3]) {
		t.Errorf("max rate row %q, want %s", rows[3], want)
	}
	ratio := ""
	if best["baseline"] > 0 && best["agentloop"] > 0 {
		ratio = fmt.Sprintf("\nagentloop / baseline max rate: %.2f×\n", float64(best["agentloop"])/float64(best["baseline"]))
	}
	if got := strings.Contains(stdout, "agentloop / baseline max rate:"); got != (ratio != "") || ratio != "" && !strings.HasSuffix(stdout, ratio) {
		t.Errorf("ratio line: want %q:\n%s", ratio, stdout)
	}
}

// fakeRuns makes runners whose runs pass up to a rate per system, and
// records the mixes they were made for.
type fakeRuns struct {
	limit map[bool]int // system (baseline?) → the highest rate that passes
	mu    sync.Mutex
	cfgs  []*gateway.Config
	runs  []string
}

func (f *fakeRuns) newRunner(cfg *gateway.Config, baseline bool, opts gateway.Options) gateway.Runner {
	f.mu.Lock()
	f.cfgs = append(f.cfgs, cfg)
	f.mu.Unlock()
	return func(ctx context.Context, rate int) (gateway.Summary, error) {
		f.mu.Lock()
		f.runs = append(f.runs, fmt.Sprintf("%v %d", baseline, rate))
		f.mu.Unlock()
		s := gateway.Summary{Offered: float64(rate), Achieved: float64(rate), CPU: 50, Latency: gateway.Percentiles{
			Count: 100, P50: 100 * time.Microsecond, P99: 500 * time.Microsecond, P999: 900 * time.Microsecond}}
		if rate > f.limit[baseline] {
			s.Achieved, s.Dropped = float64(rate)/2, uint64(rate)/4
		}
		return s, nil
	}
}

// TestLoadSearch runs the tool on runs whose outcome it decides: the
// flags shape the mix both systems run, the two searches take turns,
// every run is reported, and the table and ratio give each system's
// highest passing rate.
func TestLoadSearch(t *testing.T) {
	cfg := writeLoadConfig(t, loadConfig)
	f := &fakeRuns{limit: map[bool]int{false: 8000, true: 3000}}
	var out, errOut bytes.Buffer
	code := run([]string{"load", "-config", cfg, "-duration", "3s", "-start", "1000", "-max", "8000", "-step", "2",
		"-rounds", "2", "-retries", "1", "-devices", "30", "-loops", "3", "-producers", "4", "-ingress", "route", "-baseline", "-quiet"},
		&env{stdout: &out, stderr: &errOut, newRunner: f.newRunner})
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if len(f.cfgs) != 2 {
		t.Fatalf("%d runners made, want 2", len(f.cfgs))
	}
	for _, c := range f.cfgs {
		if c.Devices() != 30 || c.Load.Loops != 3 || c.Load.Producers != 4 || c.Load.Ingress != gateway.Route ||
			c.Load.Duration != 3*time.Second || c.Type(gateway.Inference).Batch != 8 {
			t.Errorf("the runs' mix: %+v", c.Load)
		}
	}
	// agentloop passes every rate up to -max: 1000, 2000, 4000, 8000.
	// The baseline fails 4000 (and its retry), then bisects 2828 (pass)
	// and 3363 (fail, and its retry).
	want := `load: 30 devices, 3 loops, 4 producers, ingress route, 3s per run; pass: p99 ≤ 1ms and ≥ 95% of the offered rate achieved
searching both systems, their runs alternating
  agentloop up          1000 msgs/s  pass  achieved      1000  p99    0.500ms  cpu  50.0%  dropped 0
  baseline  up          1000 msgs/s  pass  achieved      1000  p99    0.500ms  cpu  50.0%  dropped 0
  agentloop up          2000 msgs/s  pass  achieved      2000  p99    0.500ms  cpu  50.0%  dropped 0
  baseline  up          2000 msgs/s  pass  achieved      2000  p99    0.500ms  cpu  50.0%  dropped 0
  agentloop up          4000 msgs/s  pass  achieved      4000  p99    0.500ms  cpu  50.0%  dropped 0
  baseline  up          4000 msgs/s  FAIL  achieved      2000  p99    0.500ms  cpu  50.0%  dropped 1000
  agentloop up          8000 msgs/s  pass  achieved      8000  p99    0.500ms  cpu  50.0%  dropped 0
  baseline  up          4000 msgs/s  FAIL  achieved      2000  p99    0.500ms  cpu  50.0%  dropped 1000 (retry 1)
  baseline  bisect      2828 msgs/s  pass  achieved      2828  p99    0.500ms  cpu  50.0%  dropped 0
  baseline  bisect      3363 msgs/s  FAIL  achieved      1682  p99    0.500ms  cpu  50.0%  dropped 840
  baseline  bisect      3363 msgs/s  FAIL  achieved      1682  p99    0.500ms  cpu  50.0%  dropped 840 (retry 1)

max rate with p99 ≤ 1ms:

| metric                   | goroutine-per-device baseline | agentloop |
|--------------------------|-------------------------------|-----------|
| max offered rate (msg/s) |                         2 828 |     8 000 |
| throughput (msg/s)       |                         2 828 |     8 000 |
| p50 latency (ms)         |                         0.100 |     0.100 |
| p99 latency (ms)         |                         0.500 |     0.500 |
| p999 latency (ms)        |                         0.900 |     0.900 |
| CPU (% of a core)        |                            50 |        50 |
| dropped                  |                             0 |         0 |

agentloop / baseline max rate: 2.83×
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	checkAlternate(t, steps(t, out.String()))
}

// TestLoadLiveLines checks the live lines each second, indented under
// their system, and that -quiet leaves them out.
func TestLoadLiveLines(t *testing.T) {
	cfg := writeLoadConfig(t, loadConfig)
	for _, quiet := range []bool{false, true} {
		args := []string{"load", "-config", cfg, "-duration", "1100ms", "-start", "4000", "-max", "4000",
			"-p99", "1s", "-achieved", "0.5"}
		if quiet {
			args = append(args, "-quiet")
		}
		code, stdout, stderr := runCLI(args...)
		if code != exitOK {
			t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
		}
		live := regexp.MustCompile(`(?m)^  agentloop   t=   1s +\d+ msgs/s  p99 .* agents +44 `).MatchString(stdout)
		if live == quiet {
			t.Errorf("quiet %v, live line printed %v:\n%s", quiet, live, stdout)
		}
		// Without -baseline the table has no baseline column at all.
		if strings.Contains(stdout, "  baseline ") || strings.Contains(stdout, "baseline |") ||
			!regexp.MustCompile(`(?m)^\| metric +\| agentloop \|$`).MatchString(stdout) {
			t.Errorf("the baseline ran or has a column:\n%s", stdout)
		}
	}
}

func TestLoadBadInput(t *testing.T) {
	bad := writeLoadConfig(t, strings.Replace(loadConfig, "batch: 8", "batch: 0", 1))
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"load", "-step", "1"}, exitUsage, "search: step factor 1: want > 1"},
		{[]string{"load", "-start", "0"}, exitUsage, "search: start rate 0"},
		{[]string{"load", "-max", "10", "-start", "20"}, exitUsage, "max rate 10 is below the start rate 20"},
		{[]string{"load", "-p99", "0s"}, exitUsage, "p99 target 0s"},
		{[]string{"load", "-devices", "0"}, exitUsage, "-devices: 0 is out of range 1..100000"},
		{[]string{"load", "-devices", "x"}, exitUsage, `"x" is not an integer`},
		{[]string{"load", "-duration", "-1s"}, exitUsage, "-duration: -1s is out of range"},
		{[]string{"load", "extra"}, exitUsage, "load takes no arguments"},
		{[]string{"load", "-ingress", "teleport"}, exitUsage, `"teleport": want publish or route`},
		{[]string{"load", "-config", bad}, exitFailure, bad + ":7: agents[2].batch: 0 is out of range 1..4096"},
		{[]string{"load", "-config", filepath.Join(t.TempDir(), "none.yaml")}, exitFailure, "no such file"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.msg)
		}
	}
}

func TestLoadHelp(t *testing.T) {
	code, stdout, _ := runCLI("help", "load")
	for _, want := range []string{"usage: agentloop load", "-baseline", "-p99", "-step", "geometric", "-achieved", "-rates", `"cpu-per-msg ratio R"`, "their median", "SIGTERM", "GOMAXPROCS", "three decimals"} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("help load: exit %d, lacks %q:\n%s", code, want, stdout)
		}
	}
	if _, stdout, _ := runCLI("help"); !strings.Contains(stdout, "load    find the highest rate") {
		t.Errorf("help does not list load:\n%s", stdout)
	}
}

func TestWriteTable(t *testing.T) {
	al := &gateway.SearchResult{MaxRate: 1_200_000, Best: gateway.Summary{
		Offered: 1_200_000, Achieved: 1_199_000.4, Dropped: 12, CPU: 180.4,
		Latency: gateway.Percentiles{Count: 10, P50: 80 * time.Microsecond, P99: 900 * time.Microsecond, P999: 2 * time.Millisecond},
	}}
	none := &gateway.SearchResult{}
	var b bytes.Buffer
	writeTable(&b, none, al, time.Millisecond)
	want := `max rate with p99 ≤ 1ms:

| metric                   | goroutine-per-device baseline | agentloop |
|--------------------------|-------------------------------|-----------|
| max offered rate (msg/s) |                no rate passed | 1 200 000 |
| throughput (msg/s)       |                no rate passed | 1 199 000 |
| p50 latency (ms)         |                no rate passed |     0.080 |
| p99 latency (ms)         |                no rate passed |     0.900 |
| p999 latency (ms)        |                no rate passed |     2.000 |
| CPU (% of a core)        |                no rate passed |       180 |
| dropped                  |                no rate passed |        12 |
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1 000", 1234567: "1 234 567", -45000: "-45 000"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestLoadDefaults checks the defaults the README gives the tool: the
// embedded mix, 2 s runs, p99 ≤ 1 ms with 95 % achieved, a search from
// 100 000 doubling up to 8 M (the last step clamped to it), and the
// failing rate retried once.
func TestLoadDefaults(t *testing.T) {
	f := &fakeRuns{limit: map[bool]int{false: 5_000_000}}
	var out, errOut bytes.Buffer
	if code := run([]string{"load", "-quiet"}, &env{stdout: &out, stderr: &errOut, newRunner: f.newRunner}); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	// -loops 0 is shown resolved: the loops the engine will run.
	if want := fmt.Sprintf("load: 10000 devices, %d loops (GOMAXPROCS), 2 producers, ingress publish, 2s per run; pass: p99 ≤ 1ms and ≥ 95%% of the offered rate achieved\n", runtime.GOMAXPROCS(0)); !strings.HasPrefix(out.String(), want) {
		t.Errorf("header:\n%s\nwant %s", out.String(), want)
	}
	var rates []string
	for _, s := range steps(t, out.String()) {
		rates = append(rates, fmt.Sprintf("%s %d %v", s.phase, s.rate, s.pass))
	}
	// Passing up to 5 M: 3.2 M passes, 6.4 M fails with its retry, then
	// three rounds at geometric midpoints: 4.53 M (pass), 5.38 M (fail
	// twice), 4.94 M (pass).
	want := []string{"up 100000 true", "up 200000 true", "up 400000 true", "up 800000 true", "up 1600000 true",
		"up 3200000 true", "up 6400000 false", "up 6400000 false", "bisect 4525483 true", "bisect 5381737 false",
		"bisect 5381737 false", "bisect 4935074 true"}
	if strings.Join(rates, ", ") != strings.Join(want, ", ") {
		t.Errorf("runs\n%s\nwant\n%s", strings.Join(rates, ", "), strings.Join(want, ", "))
	}
	f = &fakeRuns{limit: map[bool]int{false: 1 << 30}}
	out.Reset()
	run([]string{"load", "-quiet"}, &env{stdout: &out, stderr: &errOut, newRunner: f.newRunner})
	if ss := steps(t, out.String()); len(ss) != 8 || ss[6].rate != 6_400_000 || ss[7].rate != 8_000_000 {
		t.Errorf("a search where every rate passes: %+v, want 100 000 … 6 400 000 then 8 000 000", ss)
	}
}

// TestTurnsKeepTheTokenUntilTheNextRun checks that a search keeps its
// turn after a run returns, until it asks for its next run or ends: the
// step it reports of that run is then printed before the other search
// runs, and the output is in the order of the runs.
func TestTurnsKeepTheTokenUntilTheNextRun(t *testing.T) {
	tr := newTurns(2)
	var order []string
	runAs := func(name string) gateway.Runner {
		return func(context.Context, int) (gateway.Summary, error) {
			order = append(order, name) // one run at a time: the token orders these
			return gateway.Summary{}, nil
		}
	}
	r0, r1 := tr.runner(0, runAs("0")), tr.runner(1, runAs("1"))
	ctx := context.Background()
	if _, err := r0(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n := len(tr.token[1]); n != 0 {
		t.Fatal("search 1 was handed the turn as soon as search 0's run returned, before search 0 could report it")
	}
	second := make(chan error)
	go func() {
		_, err := r1(ctx, 1) // waits for search 0's next run to hand the turn on
		second <- err
	}()
	go func() {
		r0(ctx, 2) // hands the turn to search 1, then waits for it back
		second <- nil
	}()
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	tr.done(1) // search 1 ends: the turn goes back to search 0
	<-second
	tr.done(0)
	if got := strings.Join(order, " "); got != "0 1 0" {
		t.Errorf("runs %s, want 0 1 0", got)
	}
}
