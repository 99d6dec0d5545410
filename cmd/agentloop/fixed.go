package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentloop/agentloop/gateway"
)

// errNoRatio is a fixed-rate comparison in which no rate has a CPU per
// message on both systems.
var errNoRatio = errors.New("no rate has a CPU per message on both systems: no cpu-per-msg ratio")

// parseRates reads the list of -rates: positive integers separated by
// commas. The range of each is the configuration's (load.rate), checked
// with the rest of the mix.
func parseRates(s string) ([]int, error) {
	var rates []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		r, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("rate %q is not an integer", f)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// fixedSystems are the two systems of a fixed-rate comparison, in the
// order they take turns: false is agentloop, true the baseline.
var fixedSystems = []bool{false, true}

func systemName(baseline bool) string {
	if baseline {
		return "baseline"
	}
	return "agentloop"
}

// runFixed runs both systems at each of c.rates, one run at a time,
// agentloop then the baseline at each rate, and prints their comparison.
func (c *loadCmd) runFixed(ctx context.Context, e *env, cfg *gateway.Config, newRunner func(*gateway.Config, bool, gateway.Options) gateway.Runner) error {
	rates := make([]string, len(c.rates))
	for i, r := range c.rates {
		rates[i] = group(int64(r))
	}
	fmt.Fprintf(e.stdout, "fixed rates %s msgs/s on both systems, their runs alternating\n", strings.Join(rates, ", "))
	var (
		mu      sync.Mutex // serialises output and results
		results = make([][]gateway.Summary, len(fixedSystems))
		errs    = make([]error, len(fixedSystems))
		wg      sync.WaitGroup
		turn    = newTurns(len(fixedSystems))
	)
	out := &lockedWriter{mu: &mu, w: e.stdout}
	for i, baseline := range fixedSystems {
		name := systemName(baseline)
		opts := gateway.Options{Prefix: fmt.Sprintf("  %-9s   ", name)}
		if !c.quiet {
			opts.Live = out
		}
		run := turn.runner(i, newRunner(cfg, baseline, opts))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer turn.done(i)
			for _, rate := range c.rates {
				sum, err := run(ctx, rate)
				mu.Lock()
				if err != nil {
					errs[i] = err
					mu.Unlock()
					return
				}
				results[i] = append(results[i], sum)
				writeStep(e.stdout, name, gateway.Step{Phase: "fixed", Rate: rate, Pass: sum.Pass(c.p99, c.achieved), Summary: sum})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	return writeFixedTable(e.stdout, c.rates, results[0], results[1])
}

// writeFixedTable prints the comparison at fixed rates: a row per rate
// and system, each rate's CPU-per-message ratio (agentloop ÷ baseline)
// when there are several, and last the median of those ratios. al[i] and
// base[i] are the runs at rates[i]. It returns errNoRatio when no rate
// has a ratio (the last line then reads "cpu-per-msg ratio -").
func writeFixedTable(w io.Writer, rates []int, al, base []gateway.Summary) error {
	cells := [][]string{{"offered (msg/s)", "system", "throughput (msg/s)", "CPU/msg (µs)", "p50 (ms)", "p99 (ms)", "p999 (ms)", "dropped"}}
	var ratios []float64
	perRate := make([]string, len(rates))
	for i, rate := range rates {
		for _, s := range []struct {
			name string
			sum  gateway.Summary
		}{{"agentloop", al[i]}, {"baseline", base[i]}} {
			cells = append(cells, []string{
				group(int64(rate)), s.name, group(int64(s.sum.Achieved + 0.5)), fmtCPUPerMsg(s.sum.CPUPerMessage()),
				msCell(s.sum.Latency.P50, s.sum.Latency.Count), msCell(s.sum.Latency.P99, s.sum.Latency.Count),
				msCell(s.sum.Latency.P999, s.sum.Latency.Count), group(int64(s.sum.Dropped)),
			})
		}
		perRate[i] = "-"
		if a, b := al[i].CPUPerMessage(), base[i].CPUPerMessage(); a > 0 && b > 0 {
			r := float64(a) / float64(b)
			ratios = append(ratios, r)
			perRate[i] = fmt.Sprintf("%.2f", r)
		}
	}
	fmt.Fprintf(w, "at fixed offered rates (CPU per message: process CPU time over the run ÷ messages processed):\n\n")
	writeCells(w, cells, 2)
	fmt.Fprintln(w)
	if len(rates) > 1 {
		for i, rate := range rates {
			fmt.Fprintf(w, "cpu-per-msg ratio at %s msgs/s: %s\n", group(int64(rate)), perRate[i])
		}
	}
	if len(ratios) == 0 {
		fmt.Fprintf(w, "cpu-per-msg ratio -\n")
		return errNoRatio
	}
	fmt.Fprintf(w, "cpu-per-msg ratio %.2f\n", medianOf(ratios))
	return nil
}

// fmtCPUPerMsg writes a CPU time per message in µs, "-" when there is
// none.
func fmtCPUPerMsg(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Microsecond))
}

// medianOf is the median of xs (not empty): the middle value, or the mean
// of the two middle ones.
func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}

// writeCells prints a Markdown table: the header, its rule, the rows; the
// first left columns are left-aligned, the others right-aligned.
func writeCells(w io.Writer, cells [][]string, left int) {
	widths := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for i, row := range cells {
		line := make([]string, len(row))
		for j, c := range row {
			pad := strings.Repeat(" ", widths[j]-len([]rune(c)))
			if j < left {
				line[j] = c + pad
			} else {
				line[j] = pad + c
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(line, " | "))
		if i == 0 {
			dashes := make([]string, len(row))
			for j := range row {
				dashes[j] = strings.Repeat("-", widths[j])
			}
			fmt.Fprintf(w, "|-%s-|\n", strings.Join(dashes, "-|-"))
		}
	}
}
