package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentloop/agentloop/gateway"
)

// loadHelp is the text of `agentloop help load`.
const loadHelp = `Load is the open-loop load generator of the IoT gateway mix (W10 in
bench/README.md), on the same code as cmd/gateway (package gateway). It searches for
the highest offered rate the gateway sustains: a run passes when its p99
end-to-end latency (stamped when a producer hands a telemetry message over,
measured when an inference agent scores the aggregate it led to) is at most
-p99 and the achieved rate (telemetry processed per second, drain included)
is at least -achieved times the offered rate.

The search steps up from -start, multiplying the rate by -step (the last
step clamped to -max), until a rate fails or -max passes; if -start already
fails it steps down by the same factor (at most four times). It then bisects
between the highest pass and the lowest failure, at their geometric
midpoint, for -rounds rounds. A failing rate is run again -retries times
and passes if any run passes. Each run lasts -duration plus its drain.

With -baseline the same search runs on the goroutine-per-device baseline at
the same time, the two searches taking turns run by run so that a shared
machine's drift weighs on both alike, and the final table sets the two side
by side at their max passing rates.

With -rates R1,R2,… the tool compares the two systems at fixed offered
rates instead of searching for the max rate: at each rate, in the order
given, agentloop and then the goroutine-per-device baseline run once, the
runs taking turns as the searches' do (list a rate twice to run it twice).
The table gives, for each rate and system, the throughput, the CPU per
message (process CPU time over the run, from the first message to the end
of the drain, set-up and stop left out, divided by the telemetry messages
processed in that time, in µs), the p50, p99 and p999 latency and the
messages dropped. The last line is "cpu-per-msg ratio R": agentloop's CPU
per message divided by the baseline's; with several rates each rate's ratio
is printed above it, and R is their median (the mean of the two middle ones
for an even count). A rate at which either system processed nothing has no
ratio; when no rate has one the last line is "cpu-per-msg ratio -" and the
tool fails. -p99 and -achieved still mark each run pass or FAIL; the
search's flags (-start, -max, -step, -rounds, -retries, -baseline) are
refused.

With -ingress route the producers hand telemetry to the device agents
through a topic → agent table, as the baseline does with its channels,
instead of publishing it on the engine's bus.

The header shows the loops each run has (-loops 0 resolved to
GOMAXPROCS). Every latency is in ms with three decimals, and a table
column keeps one unit, named in its header. Without -baseline the table
has agentloop's column alone. SIGINT (Ctrl-C) or SIGTERM ends the tool
during a run: it exits 1 with "interrupted by SIGTERM" (or SIGINT).`

// loadCmd is `agentloop load`.
type loadCmd struct {
	config          string
	duration        time.Duration
	start, max      int
	step, achieved  float64
	p99             time.Duration
	rounds, retries int
	baseline, quiet bool
	// Overrides of the configuration, applied only when given.
	devices, loops, producers          int
	devicesSet, loopsSet, producersSet bool
	ingress                            gateway.Ingress
	ingressSet                         bool
	// rates, when given, are run at fixed instead of searched (-rates).
	rates []int
	fs    *flag.FlagSet // to tell which flags were given
}

func (c *loadCmd) flags(fs *flag.FlagSet) {
	d := gateway.DefaultSearch
	c.fs = fs
	fs.StringVar(&c.config, "config", "", "YAML configuration `file` of the mix (default: the embedded "+gateway.DefaultFile+")")
	fs.DurationVar(&c.duration, "duration", 2*time.Second, "how long each run offers its rate")
	fs.IntVar(&c.start, "start", d.Start, "first offered `rate`, msgs/s")
	fs.IntVar(&c.max, "max", d.Max, "highest offered `rate` tried, msgs/s")
	fs.Float64Var(&c.step, "step", d.Factor, "step-up `factor` between runs (> 1)")
	fs.DurationVar(&c.p99, "p99", d.P99, "p99 latency target of a passing run")
	fs.Float64Var(&c.achieved, "achieved", d.MinRatio, "`ratio` of the offered rate a passing run must achieve")
	fs.IntVar(&c.rounds, "rounds", d.Rounds, "bisection rounds after the first failure")
	fs.IntVar(&c.retries, "retries", d.Retries, "extra runs of a failing rate before it counts as failed")
	fs.BoolVar(&c.baseline, "baseline", false, "also search on the goroutine-per-device baseline and compare")
	fs.Func("rates", "comma-separated fixed offered `rates`, msgs/s: run both systems at each, taking turns, and compare their CPU per message instead of searching",
		func(s string) error {
			rates, err := parseRates(s)
			c.rates = rates
			return err
		})
	fs.BoolVar(&c.quiet, "quiet", false, "print one line per run, without the live lines")
	fs.Func("devices", "number of devices (default: the configuration's)", intFlag(&c.devices, &c.devicesSet))
	fs.Func("loops", "event loops, 0 for GOMAXPROCS (default: the configuration's)", intFlag(&c.loops, &c.loopsSet))
	fs.Func("producers", "goroutines emitting telemetry (default: the configuration's)", intFlag(&c.producers, &c.producersSet))
	fs.Func("ingress", "how telemetry enters the engine: publish or route (default: the configuration's)", func(s string) error {
		in, ok := gateway.ParseIngress(s)
		if !ok {
			return fmt.Errorf("%q: want publish or route", s)
		}
		c.ingress, c.ingressSet = in, true
		return nil
	})
}

func intFlag(dst *int, set *bool) func(string) error {
	return func(s string) error {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		*dst, *set = n, true
		return nil
	}
}

func (c *loadCmd) run(e *env, args []string) error {
	if len(args) > 0 {
		return usagef("load takes no arguments, got %q", args)
	}
	cfg := gateway.Default()
	if c.config != "" {
		var err error
		if cfg, err = gateway.LoadFile(c.config); err != nil {
			return err
		}
	}
	cfg.Load.Duration = c.duration
	cfg.SetBy("load.duration", "-duration")
	if c.devicesSet {
		cfg.SetDevices(c.devices, "-devices")
	}
	if c.loopsSet {
		cfg.Load.Loops = c.loops
		cfg.SetBy("load.loops", "-loops")
	}
	if c.producersSet {
		cfg.Load.Producers = c.producers
		cfg.SetBy("load.producers", "-producers")
	}
	if c.ingressSet {
		cfg.Load.Ingress = c.ingress
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	if len(c.rates) > 0 {
		for _, r := range c.rates {
			rc := cfg.Clone()
			rc.Load.Rate = r
			rc.SetBy("load.rate", "-rates")
			if err := rc.Validate(); err != nil {
				return usageError{err}
			}
		}
		var searchOnly []string
		c.fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "start", "max", "step", "rounds", "retries", "baseline":
				searchOnly = append(searchOnly, "-"+f.Name)
			}
		})
		if len(searchOnly) > 0 {
			return usagef("-rates runs fixed rates on both systems; %s apply to the search only", strings.Join(searchOnly, ", "))
		}
		if !(c.achieved > 0 && c.achieved <= 1) || c.p99 <= 0 {
			return usagef("-p99 %v and -achieved %v: want a p99 > 0 and a ratio in (0, 1]", c.p99, c.achieved)
		}
	}
	o := gateway.SearchOptions{
		Start: c.start, Max: c.max, Factor: c.step, P99: c.p99, MinRatio: c.achieved,
		Rounds: c.rounds, Retries: c.retries,
	}
	if err := o.Validate(); err != nil { // before the first run: a bad flag costs nothing
		return usageError{err}
	}

	ctx, stop := signalContext(notify)
	defer stop()
	loops := fmt.Sprintf("%d loops", cfg.Load.EventLoops())
	if cfg.Load.Loops == 0 {
		loops += " (GOMAXPROCS)"
	}
	fmt.Fprintf(e.stdout, "load: %d devices, %s, %d producers, ingress %v, %v per run; pass: p99 ≤ %v and ≥ %.0f%% of the offered rate achieved\n",
		cfg.Devices(), loops, cfg.Load.Producers, cfg.Load.Ingress, cfg.Load.Duration, c.p99, 100*c.achieved)

	newRunner := e.newRunner
	if newRunner == nil {
		newRunner = gateway.RunnerFor
	}
	if len(c.rates) > 0 {
		return interrupted(ctx, c.runFixed(ctx, e, cfg, newRunner))
	}
	systems := []bool{false}
	if c.baseline {
		// The two searches run side by side, their runs alternating, so
		// that drift in a shared machine's speed over the minutes of a
		// search weighs on both alike and their ratio means something.
		systems = []bool{false, true}
		fmt.Fprintf(e.stdout, "searching both systems, their runs alternating\n")
	}
	var (
		mu      sync.Mutex // serialises output and results
		results = make(map[bool]gateway.SearchResult)
		wg      sync.WaitGroup
		errs    = make([]error, len(systems))
		turn    = newTurns(len(systems)) // one run at a time, the searches in rotation
	)
	out := &lockedWriter{mu: &mu, w: e.stdout}
	for i, baseline := range systems {
		name := "agentloop"
		if baseline {
			name = "baseline"
		}
		opts := gateway.Options{Prefix: fmt.Sprintf("  %-9s   ", name)}
		if !c.quiet {
			opts.Live = out
		}
		run := newRunner(cfg, baseline, opts)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer turn.done(i)
			res, err := gateway.Search(ctx, turn.runner(i, run), o, func(s gateway.Step) {
				mu.Lock()
				writeStep(e.stdout, name, s)
				mu.Unlock()
			})
			mu.Lock()
			results[baseline], errs[i] = res, err
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return interrupted(ctx, err)
	}
	fmt.Fprintln(e.stdout)
	var base *gateway.SearchResult
	if r, ok := results[true]; ok {
		base = &r
	}
	al := results[false]
	writeTable(e.stdout, base, &al, c.p99)
	return nil
}

// notify starts the delivery of the signals that end a load early and
// returns their channel and the function that stops it; tests replace it.
var notify = notifySignals

// notifySignals delivers SIGINT (Ctrl-C) and SIGTERM (what Docker,
// systemd and kill send).
func notifySignals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}

// signalContext is a context that the first signal of notify cancels,
// with an errSignal as its cause, and its stop.
func signalContext(notify func() (<-chan os.Signal, func())) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs, stopNotify := notify()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case sig := <-sigs:
			cancel(errSignal{sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		stopNotify()
		cancel(nil)
		<-watched
	}
}

// errSignal is the cause of a command ended by a signal.
type errSignal struct{ sig os.Signal }

func (e errSignal) Error() string {
	switch e.sig {
	case os.Interrupt:
		return "interrupted by SIGINT"
	case syscall.SIGTERM:
		return "interrupted by SIGTERM"
	}
	return "interrupted by " + e.sig.String()
}

// interrupted replaces err by the signal that ended ctx, if one did.
func interrupted(ctx context.Context, err error) error {
	var sig errSignal
	if err != nil && errors.As(context.Cause(ctx), &sig) {
		return sig
	}
	return err
}

// turns makes searches run one at a time and in strict rotation, search
// 0 first: a search runs when it holds the token, and keeps it after its
// run, while it reports the run, until it asks for its next run or ends;
// then the token goes to the next search still going. The order is the
// token's, not the Go scheduler's: a search slow to come back for its
// turn (on a busy machine) is waited for, not overtaken, and the lines
// the searches print of their runs come in the order of the runs.
type turns struct {
	mu    sync.Mutex      // guards live, held and every hand-over of the token
	live  []bool          // searches not yet finished
	held  []bool          // search i holds the token, since its last run
	token []chan struct{} // capacity 1: holds the token when search i is to run next
}

func newTurns(n int) *turns {
	t := &turns{live: make([]bool, n), held: make([]bool, n), token: make([]chan struct{}, n)}
	for i := range t.token {
		t.live[i], t.token[i] = true, make(chan struct{}, 1)
	}
	t.token[0] <- struct{}{}
	return t
}

// runner makes run of search i hand on the token it still holds from its
// last run, if any, then wait for the token to come back.
func (t *turns) runner(i int, run gateway.Runner) gateway.Runner {
	return func(ctx context.Context, rate int) (gateway.Summary, error) {
		t.release(i)
		select {
		case <-t.token[i]:
		case <-ctx.Done():
			return gateway.Summary{}, ctx.Err()
		}
		t.mu.Lock()
		t.held[i] = true
		t.mu.Unlock()
		return run(ctx, rate)
	}
}

// release hands on the token search i holds, if it does.
func (t *turns) release(i int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held[i] {
		t.held[i] = false
		t.give(i)
	}
}

// give hands the token to the first search still going after i (i itself
// when no other is). The caller holds mu; there is one token, so the send
// never blocks.
func (t *turns) give(i int) {
	for k := 1; k <= len(t.token); k++ {
		if j := (i + k) % len(t.token); t.live[j] {
			t.token[j] <- struct{}{}
			return
		}
	}
}

// done marks search i finished; the token it holds, or one already
// handed to it, goes on.
func (t *turns) done(i int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.live[i] = false
	if t.held[i] {
		t.held[i] = false
		t.give(i)
		return
	}
	select {
	case <-t.token[i]:
		t.give(i)
	default:
	}
}

// lockedWriter serialises the live lines of the two searches with their
// step lines.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func writeStep(w io.Writer, system string, s gateway.Step) {
	verdict := "FAIL"
	if s.Pass {
		verdict = "pass"
	}
	retry := ""
	if s.Attempt > 0 {
		retry = fmt.Sprintf(" (retry %d)", s.Attempt)
	}
	sum := s.Summary
	fmt.Fprintf(w, "  %-9s %-6s %9d msgs/s  %s  achieved %9.0f  p99 %10s  cpu %5.1f%%  dropped %d%s\n",
		system, s.Phase, s.Rate, verdict, sum.Achieved, gateway.FormatLatency(sum.Latency.P99, sum.Latency.Count), sum.CPU, sum.Dropped, retry)
}

// msCell writes a latency for a table column headed "(ms)": milliseconds
// with three decimals, "-" when nothing was measured.
func msCell(d time.Duration, n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond))
}

// writeTable prints the comparison at each system's max passing rate.
func writeTable(w io.Writer, base, al *gateway.SearchResult, target time.Duration) {
	col := func(r *gateway.SearchResult, f func(gateway.Summary) string) string {
		if r.MaxRate == 0 {
			return "no rate passed"
		}
		return f(r.Best)
	}
	rows := []struct {
		name string
		f    func(gateway.Summary) string
	}{
		{"max offered rate (msg/s)", func(s gateway.Summary) string { return group(int64(s.Offered)) }},
		{"throughput (msg/s)", func(s gateway.Summary) string { return group(int64(s.Achieved + 0.5)) }},
		{"p50 latency (ms)", func(s gateway.Summary) string { return msCell(s.Latency.P50, s.Latency.Count) }},
		{"p99 latency (ms)", func(s gateway.Summary) string { return msCell(s.Latency.P99, s.Latency.Count) }},
		{"p999 latency (ms)", func(s gateway.Summary) string { return msCell(s.Latency.P999, s.Latency.Count) }},
		{"CPU (% of a core)", func(s gateway.Summary) string { return fmt.Sprintf("%.0f", s.CPU) }},
		{"dropped", func(s gateway.Summary) string { return group(int64(s.Dropped)) }},
	}
	// Without the baseline (no -baseline) its column is left out.
	header := []string{"metric", "goroutine-per-device baseline", "agentloop"}
	if base == nil {
		header = []string{"metric", "agentloop"}
	}
	cells := [][]string{header}
	for _, r := range rows {
		row := []string{r.name, col(al, r.f)}
		if base != nil {
			row = []string{r.name, col(base, r.f), col(al, r.f)}
		}
		cells = append(cells, row)
	}
	fmt.Fprintf(w, "max rate with p99 ≤ %v:\n\n", target)
	writeCells(w, cells, 1)
	if base != nil && base.MaxRate > 0 && al.MaxRate > 0 {
		fmt.Fprintf(w, "\nagentloop / baseline max rate: %.2f×\n", float64(al.MaxRate)/float64(base.MaxRate))
	}
}

// group writes n with thin groups of three digits: 1 210 000.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
