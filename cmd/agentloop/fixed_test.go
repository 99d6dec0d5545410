package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/gateway"
)

// fixedRuns makes runners whose run at a rate returns a summary the test
// sets, per system, and records the order of the runs.
type fixedRuns struct {
	sums map[bool]map[int]gateway.Summary // system (baseline?) → rate → outcome
	err  error                            // when set, the baseline's runs fail with it
	mu   sync.Mutex
	runs []string
}

func (f *fixedRuns) newRunner(_ *gateway.Config, baseline bool, _ gateway.Options) gateway.Runner {
	return func(_ context.Context, rate int) (gateway.Summary, error) {
		f.mu.Lock()
		f.runs = append(f.runs, fmt.Sprintf("%s %d", systemName(baseline), rate))
		f.mu.Unlock()
		if baseline && f.err != nil {
			return gateway.Summary{}, f.err
		}
		s, ok := f.sums[baseline][rate]
		if !ok {
			return gateway.Summary{}, fmt.Errorf("no outcome for %v at %d", baseline, rate)
		}
		return s, nil
	}
}

// fixedSum is a run at rate that achieved it with cpu % of a core.
func fixedSum(rate int, cpu float64, p50, p99, p999 time.Duration, dropped uint64) gateway.Summary {
	return gateway.Summary{Offered: float64(rate), Achieved: float64(rate), CPU: cpu, Dropped: dropped, Elapsed: 2 * time.Second,
		Latency: gateway.Percentiles{Count: 100, P50: p50, P99: p99, P999: p999}}
}

const us = time.Microsecond

// TestLoadFixedRates runs the fixed-rate comparison on runs whose outcome
// the test decides: the two systems take turns at each rate, agentloop
// first, and the table, the per-rate ratios and the last line are what
// those outcomes give.
func TestLoadFixedRates(t *testing.T) {
	cfg := writeLoadConfig(t, loadConfig)
	f := &fixedRuns{sums: map[bool]map[int]gateway.Summary{
		false: {
			// 40 % of a core at 200 000 msgs/s: 2 µs per message.
			200_000: fixedSum(200_000, 40, 80*us, 400*us, 900*us, 0),
			// 70 % at 400 000: 1.75 µs.
			400_000: fixedSum(400_000, 70, 90*us, 600*us, 1200*us, 3),
		},
		true: {
			// 3 µs and 3.5 µs: ratios 0.667 and 0.5, median 0.583.
			200_000: fixedSum(200_000, 60, 100*us, 500*us, 2*time.Millisecond, 0),
			400_000: fixedSum(400_000, 140, 300*us, 4*time.Millisecond, 20*time.Millisecond, 1500),
		},
	}}
	var out, errOut bytes.Buffer
	code := run([]string{"load", "-config", cfg, "-duration", "2s", "-rates", "200000,400000", "-quiet"},
		&env{stdout: &out, stderr: &errOut, newRunner: f.newRunner})
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := `load: 40 devices, 2 loops, 2 producers, ingress publish, 2s per run; pass: p99 ≤ 1ms and ≥ 95% of the offered rate achieved
fixed rates 200 000, 400 000 msgs/s on both systems, their runs alternating
  agentloop fixed     200000 msgs/s  pass  achieved    200000  p99    0.400ms  cpu  40.0%  dropped 0
  baseline  fixed     200000 msgs/s  pass  achieved    200000  p99    0.500ms  cpu  60.0%  dropped 0
  agentloop fixed     400000 msgs/s  pass  achieved    400000  p99    0.600ms  cpu  70.0%  dropped 3
  baseline  fixed     400000 msgs/s  FAIL  achieved    400000  p99    4.000ms  cpu 140.0%  dropped 1500

at fixed offered rates (CPU per message: process CPU time over the run ÷ messages processed):

| offered (msg/s) | system    | throughput (msg/s) | CPU/msg (µs) | p50 (ms) | p99 (ms) | p999 (ms) | dropped |
|-----------------|-----------|--------------------|--------------|----------|----------|-----------|---------|
| 200 000         | agentloop |            200 000 |         2.00 |    0.080 |    0.400 |     0.900 |       0 |
| 200 000         | baseline  |            200 000 |         3.00 |    0.100 |    0.500 |     2.000 |       0 |
| 400 000         | agentloop |            400 000 |         1.75 |    0.090 |    0.600 |     1.200 |       3 |
| 400 000         | baseline  |            400 000 |         3.50 |    0.300 |    4.000 |    20.000 |   1 500 |

cpu-per-msg ratio at 200 000 msgs/s: 0.67
cpu-per-msg ratio at 400 000 msgs/s: 0.50
cpu-per-msg ratio 0.58
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	if got, want := strings.Join(f.runs, ", "), "agentloop 200000, baseline 200000, agentloop 400000, baseline 400000"; got != want {
		t.Errorf("runs %s, want %s", got, want)
	}
}

// TestLoadFixedRatio checks the last line: one rate gives its own ratio
// and no per-rate lines; an odd count of ratios gives the middle one; a
// rate at which a system processed nothing has no ratio and does not
// count; with no ratio at all the line says so and the tool fails.
func TestLoadFixedRatio(t *testing.T) {
	cfg := writeLoadConfig(t, loadConfig)
	idle := gateway.Summary{Offered: 300_000, CPU: 5} // nothing processed
	sums := map[bool]map[int]gateway.Summary{
		false: {
			100_000: fixedSum(100_000, 10, us, us, us, 0),  // 1 µs
			200_000: fixedSum(200_000, 60, us, us, us, 0),  // 3 µs
			300_000: idle,                                  //
			400_000: fixedSum(400_000, 80, us, us, us, 0),  // 2 µs
			500_000: fixedSum(500_000, 100, us, us, us, 0), // 2 µs
		},
		true: {
			100_000: fixedSum(100_000, 40, us, us, us, 0),  // 4 µs: 0.25
			200_000: fixedSum(200_000, 80, us, us, us, 0),  // 4 µs: 0.75
			300_000: fixedSum(300_000, 90, us, us, us, 0),  // 3 µs: none
			400_000: fixedSum(400_000, 100, us, us, us, 0), // 2.5 µs: 0.8
			500_000: idle,
		},
	}
	cases := []struct {
		rates string
		code  int
		tail  string
	}{
		{"200000", exitOK, "|\n\ncpu-per-msg ratio 0.75\n"},
		{"100000,200000,400000", exitOK, "\ncpu-per-msg ratio at 400 000 msgs/s: 0.80\ncpu-per-msg ratio 0.75\n"},
		{"400000,300000,100000", exitOK, "\ncpu-per-msg ratio at 400 000 msgs/s: 0.80\ncpu-per-msg ratio at 300 000 msgs/s: -\n" +
			"cpu-per-msg ratio at 100 000 msgs/s: 0.25\ncpu-per-msg ratio 0.53\n"},
		{"200000,200000,100000", exitOK, "\ncpu-per-msg ratio 0.75\n"},
		{"300000,500000", exitFailure, "\ncpu-per-msg ratio at 500 000 msgs/s: -\ncpu-per-msg ratio -\n"},
	}
	for _, c := range cases {
		f := &fixedRuns{sums: sums}
		var out, errOut bytes.Buffer
		code := run([]string{"load", "-config", cfg, "-rates", c.rates, "-quiet"}, &env{stdout: &out, stderr: &errOut, newRunner: f.newRunner})
		if code != c.code || !strings.HasSuffix(out.String(), c.tail) {
			t.Errorf("-rates %s: exit %d, want %d; output ends\n%s\nwant the end\n%s", c.rates, code, c.code, out.String(), c.tail)
		}
		if c.code == exitFailure && !strings.Contains(errOut.String(), "no cpu-per-msg ratio") {
			t.Errorf("-rates %s: stderr %q", c.rates, errOut.String())
		}
		if n := strings.Count(out.String(), "| agentloop |"); n != strings.Count(c.rates, ",")+1 {
			t.Errorf("-rates %s: %d agentloop rows", c.rates, n)
		}
	}
	// A cell of a system that processed nothing.
	var out bytes.Buffer
	f := &fixedRuns{sums: sums}
	run([]string{"load", "-config", cfg, "-rates", "300000", "-quiet"}, &env{stdout: &out, stderr: &out, newRunner: f.newRunner})
	if !regexp.MustCompile(`(?m)^\| 300 000 +\| agentloop \| +0 \| +- \| +- \| +- \| +- \| +0 \|$`).MatchString(out.String()) {
		t.Errorf("the idle run's row:\n%s", out.String())
	}
}

// TestLoadFixedRunError checks that a failing run ends the comparison
// with its error, and prints no table.
func TestLoadFixedRunError(t *testing.T) {
	cfg := writeLoadConfig(t, loadConfig)
	boom := errors.New("the baseline broke")
	f := &fixedRuns{err: boom, sums: map[bool]map[int]gateway.Summary{false: {1000: fixedSum(1000, 1, us, us, us, 0)}}}
	var out, errOut bytes.Buffer
	code := run([]string{"load", "-config", cfg, "-rates", "1000,1000", "-quiet"}, &env{stdout: &out, stderr: &errOut, newRunner: f.newRunner})
	if code != exitFailure || !strings.Contains(errOut.String(), boom.Error()) || strings.Contains(out.String(), "cpu-per-msg") {
		t.Errorf("exit %d, stderr %q, stdout\n%s", code, errOut.String(), out.String())
	}
	// agentloop's second run still comes after the baseline's failed one:
	// the turns go on without it.
	if got, want := strings.Join(f.runs, ", "), "agentloop 1000, baseline 1000, agentloop 1000"; got != want {
		t.Errorf("runs %s, want %s", got, want)
	}
}

func TestLoadFixedBadInput(t *testing.T) {
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"load", "-rates", "0"}, "-rates: 0 is out of range 1..100000000"},
		{[]string{"load", "-rates", "1000,200000000"}, "-rates: 200000000 is out of range 1..100000000"},
		{[]string{"load", "-rates", "1000,x"}, `rate "x" is not an integer`},
		{[]string{"load", "-rates", ""}, `rate "" is not an integer`},
		{[]string{"load", "-rates", "1000,"}, `rate "" is not an integer`},
		{[]string{"load", "-rates", "1000", "-start", "10", "-baseline"}, "-rates runs fixed rates on both systems; -baseline, -start apply to the search only"},
		{[]string{"load", "-rates", "1000", "-p99", "0s"}, "-p99 0s and -achieved 0.95"},
		{[]string{"load", "-rates", "1000", "-achieved", "2"}, "-p99 1ms and -achieved 2"},
	}
	for _, c := range cases {
		f := &fixedRuns{}
		var out, errOut bytes.Buffer
		code := run(c.args, &env{stdout: &out, stderr: &errOut, newRunner: f.newRunner})
		if code != exitUsage || !strings.Contains(errOut.String(), c.msg) || len(f.runs) > 0 {
			t.Errorf("%q: exit %d, %d runs, stderr %q; want exit %d and %q", c.args, code, len(f.runs), errOut.String(), exitUsage, c.msg)
		}
	}
}

// TestLoadFixedSmoke runs a real, short comparison: two runs of each
// system, alternating, a well-formed table, and a ratio line last.
func TestLoadFixedSmoke(t *testing.T) {
	cfg := writeLoadConfig(t, loadConfig)
	code, stdout, stderr := runCLI("load", "-config", cfg, "-duration", "200ms", "-rates", "1000,2000", "-p99", "1s", "-achieved", "0.5")
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	runLine := regexp.MustCompile(`(?m)^  (agentloop|baseline) +fixed +(\d+) msgs/s  (pass|FAIL) `)
	var order []string
	for _, m := range runLine.FindAllStringSubmatch(stdout, -1) {
		order = append(order, m[1]+" "+m[2])
	}
	if got, want := strings.Join(order, ", "), "agentloop 1000, baseline 1000, agentloop 2000, baseline 2000"; got != want {
		t.Errorf("runs %s, want %s:\n%s", got, want, stdout)
	}
	row := `(?m)^\| %s +\| %-9s \| +[\d ]+ \| +\d+\.\d\d \| +\S+ \| +\S+ \| +\S+ \| +[\d ]+ \|$`
	for _, r := range []string{"1 000", "2 000"} {
		for _, sys := range []string{"agentloop", "baseline"} {
			if !regexp.MustCompile(fmt.Sprintf(row, r, sys)).MatchString(stdout) {
				t.Errorf("no row for %s at %s:\n%s", sys, r, stdout)
			}
		}
	}
	if !regexp.MustCompile(`\ncpu-per-msg ratio at 2 000 msgs/s: \d+\.\d\d\ncpu-per-msg ratio \d+\.\d\d\n$`).MatchString(stdout) {
		t.Errorf("the output does not end with the ratios:\n%s", stdout)
	}
}
