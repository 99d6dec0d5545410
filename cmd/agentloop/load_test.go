package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentloop/agentloop/internal/gateway"
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

// TestLoadSmoke runs a real, short search on both systems. The targets
// are loose so that every step passes on a busy machine: the search steps
// up to -max, and the table shows both columns at it.
func TestLoadSmoke(t *testing.T) {
	cfg := writeLoadConfig(t, loadConfig)
	code, stdout, stderr := runCLI("load", "-config", cfg, "-duration", "250ms", "-start", "2000", "-max", "8000",
		"-step", "2", "-p99", "1s", "-achieved", "0.5", "-baseline", "-ingress", "route")
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	for _, want := range []string{
		"load: 40 devices, 2 loops (0: GOMAXPROCS), 2 producers, ingress route, 250ms per run; pass: p99 ≤ 1s and ≥ 50% of the offered rate achieved",
		"searching both systems, their runs alternating\n",
		"  baseline  up          2000 msgs/s  pass", "  baseline  up          8000 msgs/s  pass",
		"  agentloop up          2000 msgs/s  pass", "  agentloop up          8000 msgs/s  pass",
		"max rate with p99 ≤ 1s:",
		"agentloop / baseline max rate: 1.00×",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	// The two searches take turns: three runs each, alternating.
	var order []string
	for _, m := range regexp.MustCompile(`(?m)^  (baseline|agentloop) +up `).FindAllStringSubmatch(stdout, -1) {
		order = append(order, m[1])
	}
	if len(order) != 6 {
		t.Fatalf("%d runs, want 6:\n%s", len(order), stdout)
	}
	for i := 1; i < len(order); i++ {
		if order[i] == order[i-1] {
			t.Errorf("runs do not alternate: %v", order)
			break
		}
	}
	table := stdout[strings.Index(stdout, "| metric"):]
	rows := strings.Split(strings.TrimSpace(table), "\n")
	wantRows := []string{"metric", "---", "max offered rate (msg/s)", "throughput (msg/s)", "p50 latency", "p99 latency",
		"p999 latency", "CPU %", "dropped"}
	if len(rows) < len(wantRows) {
		t.Fatalf("table:\n%s", table)
	}
	for i, w := range wantRows {
		if !strings.Contains(rows[i], w) {
			t.Errorf("row %d = %q, want %q", i, rows[i], w)
		}
	}
	if !regexp.MustCompile(`^\| max offered rate \(msg/s\) \| +8 000 \| +8 000 \|$`).MatchString(rows[2]) {
		t.Errorf("max rate row %q", rows[2])
	}
	if !regexp.MustCompile(`^\| metric +\| goroutine-per-device baseline \| +agentloop \|$`).MatchString(rows[0]) {
		t.Errorf("header %q", rows[0])
	}
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
		if strings.Contains(stdout, "  baseline ") || !regexp.MustCompile(`\| +not run \|`).MatchString(stdout) {
			t.Errorf("the baseline ran or its column is not marked:\n%s", stdout)
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
	for _, want := range []string{"usage: agentloop load", "-baseline", "-p99", "-step", "geometric", "-achieved"} {
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
| p50 latency              |                no rate passed |      80µs |
| p99 latency              |                no rate passed |     900µs |
| p999 latency             |                no rate passed |       2ms |
| CPU %                    |                no rate passed |     180 % |
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
