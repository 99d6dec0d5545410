package profiler

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/internal/labels"
)

// burnHot burns CPU until stop is closed. The tests look for its name.
//
//go:noinline
func burnHot(stop <-chan struct{}) uint64 {
	var x uint64
	for {
		select {
		case <-stop:
			return x
		default:
		}
		for i := uint64(0); i < 100_000; i++ {
			x = x*31 + i
		}
	}
}

const burnHotName = "github.com/agentloop/agentloop/profiler.burnHot"

// startBurner runs burnHot under the label agent_type=hot until the
// returned function is called; that function waits for it to end.
func startBurner() (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		pprof.Do(context.Background(), pprof.Labels(LabelAgentType, "hot"), func(context.Context) {
			burnHot(quit)
		})
	}()
	return func() {
		close(quit)
		<-done
	}
}

// files returns the profile files of kind k in dir, oldest first.
func files(t *testing.T, dir string, k Kind) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if isFileOf(k, e.Name()) {
			names = append(names, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(names)
	return names
}

// hasFrame reports whether a sample of p has a frame named fn and, if agent
// is not "", the label agent_type=agent.
func hasFrame(p *profile.Profile, fn, agent string) bool {
	for _, s := range p.Sample {
		if agent != "" && !s.HasLabel(LabelAgentType, agent) {
			continue
		}
		for _, loc := range s.Location {
			for _, ln := range loc.Line {
				if ln.Function != nil && ln.Function.Name == fn {
					return true
				}
			}
		}
	}
	return false
}

// TestProfilerFindsHotFunction runs the profiler while a labelled goroutine
// burns CPU and checks the merged files: the CPU profile has the function
// under its label, the wall profile has it too, and every file is valid for
// `go tool pprof`.
func TestProfilerFindsHotFunction(t *testing.T) {
	if !cpuProfilerFree(t) {
		return
	}
	dir := t.TempDir()
	reports := make(chan windowReport, 100)
	var windowErrs []error
	p, err := Start(Options{
		Sampling: 1,
		Window:   150 * time.Millisecond,
		Dir:      dir,
		OnError:  func(err error) { windowErrs = append(windowErrs, err) },
		onWindow: func(r windowReport) { reports <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !labels.Enabled() {
		t.Error("labels are off while the profiler runs")
	}
	stopBurner := startBurner()
	// Burn through two windows with a CPU profile (about 300 ms of CPU).
	// The file of the span merges all the windows' profiles: its duration
	// is the sum of theirs.
	var cpuWindows int
	var cpuDuration int64
	for cpuWindows < 2 {
		select {
		case r := <-reports:
			if r.taken&CPU != 0 {
				cpuWindows++
				cpuDuration += r.durations[CPU]
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no window closed within 20s")
		}
	}
	stopBurner()
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for len(reports) > 0 { // the windows closed since, Stop's included
		if r := <-reports; r.taken&CPU != 0 {
			cpuWindows++
			cpuDuration += r.durations[CPU]
		}
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if labels.Enabled() {
		t.Error("labels are still on after Stop")
	}
	if len(windowErrs) > 0 {
		t.Errorf("window errors: %v", windowErrs)
	}

	for _, k := range kinds {
		names := files(t, dir, k)
		if len(names) != 1 {
			t.Fatalf("%v files: %q, want one (one span)", k, names)
		}
		prof, err := ReadProfile(names[0])
		if err != nil {
			t.Fatal(err)
		}
		switch k {
		case CPU:
			if !hasFrame(prof, burnHotName, "hot") {
				t.Errorf("the CPU profile has no sample of %s labelled %s=hot", burnHotName, LabelAgentType)
			}
			if prof.DurationNanos != cpuDuration || cpuDuration <= 0 {
				t.Errorf("the CPU profile covers %v, want the %d windows' %v merged", time.Duration(prof.DurationNanos), cpuWindows, time.Duration(cpuDuration))
			}
		case Wall:
			if !hasFrame(prof, burnHotName, "") {
				t.Errorf("the wall profile has no sample of %s", burnHotName)
			}
		}
		t.Run("go tool pprof "+k.String(), func(t *testing.T) {
			goTool, err := exec.LookPath("go")
			if err != nil {
				t.Fatalf("go is not on PATH: %v", err)
			}
			cmd := exec.Command(goTool, "tool", "pprof", "-top", names[0])
			cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "PPROF_TMPDIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go tool pprof -top %s: %v\n%s", names[0], err, out)
			}
			if !strings.Contains(string(out), "flat%") {
				t.Errorf("go tool pprof -top printed no table:\n%s", out)
			}
			if k != Heap && !strings.Contains(string(out), "burnHot") {
				t.Errorf("go tool pprof -top does not list burnHot:\n%s", out)
			}
		})
	}
}

// TestWindowSchedule drives the scheduler with a fake clock: every window
// lasts Window, opens inside its own period at the offset chosen, and the
// profiled share of time is Sampling.
func TestWindowSchedule(t *testing.T) {
	clk := newFakeClock()
	t0 := clk.Now()
	reports := make(chan windowReport, 100)
	offsets := []int64{0, 1, 2} // thirds of the slack, in turn
	var slacks []int64
	const window, sampling = 100 * time.Millisecond, 0.25
	p, err := Start(Options{
		Sampling: sampling,
		Window:   window,
		Dir:      t.TempDir(),
		Kinds:    Heap, // no CPU or wall profile: nothing takes real time
		clock:    clk,
		offset: func(n int64) int64 {
			slacks = append(slacks, n)
			return offsets[(len(slacks)-1)%len(offsets)] * n / 3
		},
		onWindow: func(r windowReport) { reports <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()

	const windows = 9
	period := time.Duration(float64(window) / sampling)
	var profiled time.Duration
	for i := 0; i < windows; i++ {
		if i > 0 {
			clk.fire(t) // the gap before window i
		}
		if d := clk.fire(t); d != window {
			t.Fatalf("window %d: timer of %v, want %v", i, d, window)
		}
		r := <-reports
		if len(r.errs) > 0 {
			t.Fatalf("window %d: %v", i, r.errs)
		}
		periodStart := t0.Add(time.Duration(i) * period)
		want := periodStart // the first window opens at Start
		if i > 0 {
			want = want.Add(time.Duration(offsets[(i-1)%len(offsets)]) * (period - window) / 3)
		}
		if !r.start.Equal(want) {
			t.Errorf("window %d opened at +%v, want +%v", i, r.start.Sub(t0), want.Sub(t0))
		}
		if r.end.Sub(r.start) != window {
			t.Errorf("window %d lasted %v, want %v", i, r.end.Sub(r.start), window)
		}
		if r.start.Before(periodStart) || r.end.After(periodStart.Add(period)) {
			t.Errorf("window %d [+%v, +%v] leaves its period [+%v, +%v]", i,
				r.start.Sub(t0), r.end.Sub(t0), periodStart.Sub(t0), periodStart.Add(period).Sub(t0))
		}
		profiled += r.end.Sub(r.start)
	}
	// Over whole periods, the profiled share is Sampling.
	if got := float64(profiled) / float64(time.Duration(windows)*period); got != sampling {
		t.Errorf("profiled share %v, want %v", got, sampling)
	}
	if err := p.Stop(); err != nil { // slacks is the profiler's until then
		t.Fatal(err)
	}
	for _, n := range slacks {
		if n != int64(period-window) {
			t.Errorf("offset drawn in [0, %v), want [0, %v)", time.Duration(n), period-window)
		}
	}
}

// TestKeepBoundsHistory checks span rotation and pruning: with Span of one
// period, each window gets its own file and only Keep remain; files that are
// not the profiler's are left alone.
func TestKeepBoundsHistory(t *testing.T) {
	clk := newFakeClock()
	dir := t.TempDir()
	foreign := []string{"heap-notes.pb.gz", "notes.txt", "heap-20000101T000000.000Z.txt"}
	for _, name := range foreign {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reports := make(chan windowReport, 100)
	p, err := Start(Options{
		Sampling: 0.5, Window: 100 * time.Millisecond, Span: 200 * time.Millisecond, Keep: 3,
		Dir: dir, Kinds: Heap, clock: clk,
		offset:   func(int64) int64 { return 0 }, // window i opens at i*Span
		onWindow: func(r windowReport) { reports <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	for i := 0; i < 7; i++ {
		if i > 0 {
			clk.fire(t)
		}
		clk.fire(t)
		r := <-reports
		if len(r.errs) > 0 || len(r.files) != 1 {
			t.Fatalf("window %d: files %q, errors %v", i, r.files, r.errs)
		}
		written = append(written, r.files[0])
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := files(t, dir, Heap), written[len(written)-3:]; !slices.Equal(got, want) {
		t.Errorf("heap files %q, want the last three written %q", got, want)
	}
	for _, name := range foreign {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("a file that is not the profiler's was touched: %v", err)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
}

// TestSpanMergesWindows checks that windows of one span end in one file
// whose profile merges them. fgprof samples in real time, so this test uses
// the real clock with short windows.
func TestSpanMergesWindows(t *testing.T) {
	dir := t.TempDir()
	reports := make(chan windowReport, 100)
	const window = 30 * time.Millisecond
	p, err := Start(Options{
		Sampling: 1, Window: window, Dir: dir, Kinds: Wall,
		onWindow: func(r windowReport) { reports <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	var windows int
	var sum int64 // of the windows' durations
	for windows < 3 {
		select {
		case r := <-reports:
			if r.taken != Wall || len(r.errs) > 0 {
				t.Fatalf("window %d took %v, errors %v", windows, r.taken, r.errs)
			}
			windows++
			sum += r.durations[Wall]
		case <-time.After(10 * time.Second):
			t.Fatal("no window closed within 10s")
		}
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	for len(reports) > 0 { // the windows closed since, Stop's included
		r := <-reports
		windows++
		sum += r.durations[Wall]
	}
	names := files(t, dir, Wall)
	if len(names) != 1 {
		t.Fatalf("wall files %q, want one", names)
	}
	prof, err := ReadProfile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	// Merging sums the windows' durations.
	if prof.DurationNanos != sum || prof.PeriodType == nil || prof.PeriodType.Type != "wallclock" {
		t.Errorf("merged wall profile: duration %v, period type %v; want the %d windows' %v of wallclock",
			time.Duration(prof.DurationNanos), prof.PeriodType, windows, time.Duration(sum))
	}
}

// TestCPUProfileConflict checks that Start refuses to run beside another CPU
// profile and that a later window skips its CPU part and says so.
func TestCPUProfileConflict(t *testing.T) {
	if !cpuProfilerFree(t) {
		return
	}
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatal(err)
	}
	p, err := Start(Options{Sampling: 0.01, Dir: t.TempDir()})
	pprof.StopCPUProfile()
	if !errors.Is(err, ErrCPUProfileActive) {
		p.Stop()
		t.Fatalf("Start beside a CPU profile: %v, want ErrCPUProfileActive", err)
	}
	if p != nil || labels.Enabled() {
		t.Errorf("failed Start returned %v and left labels on: %v", p, labels.Enabled())
	}

	// A window that meets another CPU profile goes on without it.
	clk := newFakeClock()
	reports := make(chan windowReport, 10)
	var onErr []error
	p, err = Start(Options{
		Sampling: 0.5, Window: 100 * time.Millisecond, Dir: t.TempDir(), Kinds: CPU | Heap, clock: clk,
		OnError:  func(err error) { onErr = append(onErr, err) },
		onWindow: func(r windowReport) { reports <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	clk.fire(t) // first window ends
	if r := <-reports; r.taken != CPU|Heap {
		t.Fatalf("first window took %v, want cpu+heap", r.taken)
	}
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatal(err)
	}
	clk.fire(t) // second window opens while another CPU profile runs
	clk.fire(t) // and ends
	r := <-reports
	pprof.StopCPUProfile()
	if r.taken != Heap {
		t.Errorf("second window took %v, want heap only", r.taken)
	}
	if len(onErr) != 1 || !errors.Is(onErr[0], ErrCPUProfileActive) {
		t.Errorf("OnError got %v, want one ErrCPUProfileActive", onErr)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestStartRefusesBadOptions checks that Start returns ErrInvalidOptions
// without panicking or starting anything.
func TestStartRefusesBadOptions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"zero sampling", Options{Dir: dir}, "Sampling 0 is outside (0, 1]"},
		{"sampling above one", Options{Sampling: 1.5, Dir: dir}, "Sampling 1.5"},
		{"negative sampling", Options{Sampling: -0.1, Dir: dir}, "Sampling -0.1"},
		{"tiny sampling", Options{Sampling: 1e-9, Dir: dir}, "less often than every 24h0m0s"},
		{"no dir", Options{Sampling: 0.01}, "Dir is empty"},
		{"dir is a file", Options{Sampling: 0.01, Dir: file}, "Dir"},
		{"dir under a file", Options{Sampling: 0.01, Dir: filepath.Join(file, "sub")}, "Dir"},
		{"short window", Options{Sampling: 0.01, Dir: dir, Window: time.Millisecond}, "shorter than 20ms"},
		{"negative window", Options{Sampling: 0.01, Dir: dir, Window: -time.Second}, "Window -1s is negative"},
		{"negative keep", Options{Sampling: 0.01, Dir: dir, Keep: -1}, "Keep -1"},
		{"negative span", Options{Sampling: 0.01, Dir: dir, Span: -time.Minute}, "Span -1m0s"},
		{"unknown kind", Options{Sampling: 0.01, Dir: dir, Kinds: 0x80}, "unknown bits"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Start(c.opts)
			if err == nil {
				p.Stop()
				t.Fatal("Start accepted the options")
			}
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Start: %v, want ErrInvalidOptions mentioning %q", err, c.want)
			}
			if labels.Enabled() {
				t.Error("labels left on")
			}
		})
	}
}
