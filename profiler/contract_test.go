package profiler_test

// The promises of the package documentation and the README, checked
// through the exported API only.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/profiler"
)

// cpuProfileBusy reports whether the test binary runs under `go test
// -cpuprofile`, which holds the process's only CPU profiler: the tests
// then check the documented refusal instead.
func cpuProfileBusy(t *testing.T) bool {
	t.Helper()
	if f := flag.Lookup("test.cpuprofile"); f == nil || f.Value.String() == "" {
		return false
	}
	p, err := profiler.Start(profiler.Options{Sampling: 0.5, Dir: t.TempDir()})
	if err == nil {
		p.Stop()
		t.Fatal("Start took the CPU profiler while go test -cpuprofile holds it")
	}
	if !errors.Is(err, profiler.ErrCPUProfileActive) {
		t.Fatalf("Start under go test -cpuprofile = %v, want ErrCPUProfileActive", err)
	}
	return true
}

// burnCPU burns CPU until stop is closed; profiles look for its name.
//
//go:noinline
func burnCPU(stop <-chan struct{}) uint64 {
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

const burnCPUName = "github.com/agentloop/agentloop/profiler_test.burnCPU"

// burn runs burnCPU, labelled agent_type=agent unless agent is "", until
// the returned function is called; that function waits for it to end.
func burn(agent string) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		if agent == "" {
			burnCPU(quit)
			return
		}
		pprof.Do(context.Background(), pprof.Labels(profiler.LabelAgentType, agent), func(context.Context) { burnCPU(quit) })
	}()
	return func() { close(quit); <-done }
}

// hasFrame reports whether a sample of p has a frame named fn and, unless
// agent is "", the label agent_type=agent.
func hasFrame(p *profile.Profile, fn, agent string) bool {
	for _, s := range p.Sample {
		if agent != "" && !s.HasLabel(profiler.LabelAgentType, agent) {
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

// filePattern is the name of a profiler file: kind, UTC start of the span.
var filePattern = regexp.MustCompile(`^(cpu|wall|heap)-(\d{8}T\d{6}\.\d{3}Z)\.pb\.gz$`)

// profileFiles returns the profiler's files of kind in dir, oldest first.
func profileFiles(t *testing.T, dir, kind string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if m := filePattern.FindStringSubmatch(e.Name()); m != nil && m[1] == kind {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// poll calls cond every few milliseconds until it returns true, and fails
// the test if that takes a minute: the profiler works in real time, so its
// files can only be watched.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestProfilerWritesReadableFiles checks the files of a run: Dir is
// created; the first window opens at Start; the windows of a span merge
// into one file per kind, named after the kind and the span's UTC start;
// the file is rewritten after every window, and readable whenever it is
// there; each file parses, renders and opens with `go tool pprof`.
func TestProfilerWritesReadableFiles(t *testing.T) {
	if cpuProfileBusy(t) {
		return
	}
	dir := filepath.Join(t.TempDir(), "not", "yet")
	const window = 50 * time.Millisecond
	stopBurn := burn("hot")
	defer stopBurn()
	var errs []error
	var mu sync.Mutex
	before := time.Now().UTC().Truncate(time.Millisecond)
	p, err := profiler.Start(profiler.Options{Sampling: 1, Window: window, Dir: dir, OnError: func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UTC()
	defer p.Stop()

	// Watch the files until the wall profile covers three windows and the
	// CPU profile has the burner: every read must succeed.
	poll(t, "merged windows", func() bool {
		wall, cpu := profileFiles(t, dir, "wall"), profileFiles(t, dir, "cpu")
		if len(wall) == 0 || len(cpu) == 0 {
			return false
		}
		w, err := profiler.ReadProfile(filepath.Join(dir, wall[0]))
		if err != nil {
			t.Fatalf("a file of the current span is unreadable: %v", err)
		}
		c, err := profiler.ReadProfile(filepath.Join(dir, cpu[0]))
		if err != nil {
			t.Fatalf("a file of the current span is unreadable: %v", err)
		}
		// Merged windows add up; one window alone lasts about one Window.
		return w.DurationNanos >= int64(3*window) && c.DurationNanos >= int64(3*window) && hasFrame(c, burnCPUName, "hot")
	})
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	mu.Lock()
	if len(errs) > 0 {
		t.Errorf("window errors: %v", errs)
	}
	mu.Unlock()

	for _, kind := range []string{"cpu", "wall", "heap"} {
		names := profileFiles(t, dir, kind)
		if len(names) != 1 {
			t.Fatalf("%s files %q, want one: one span", kind, names)
		}
		stamp, err := time.Parse("20060102T150405.000Z", filePattern.FindStringSubmatch(names[0])[2])
		if err != nil || stamp.Before(before) || stamp.After(after) {
			t.Errorf("%s is not named after the span's start, in [%v, %v]", names[0], before, after)
		}
		path := filepath.Join(dir, names[0])
		prof, err := profiler.ReadProfile(path)
		if err != nil {
			t.Fatal(err)
		}
		switch kind {
		case "cpu":
			if !hasFrame(prof, burnCPUName, "hot") {
				t.Errorf("the CPU profile has no labelled sample of %s", burnCPUName)
			}
		case "wall":
			if prof.PeriodType == nil || prof.PeriodType.Type != "wallclock" || !hasFrame(prof, burnCPUName, "") {
				t.Errorf("the wall profile has period type %v and the burner %v", prof.PeriodType, hasFrame(prof, burnCPUName, ""))
			}
		}
		if err := profiler.WriteFlameGraph(io.Discard, prof, profiler.FlameOptions{}); err != nil && !(kind == "heap" && errors.Is(err, profiler.ErrEmptyProfile)) {
			t.Errorf("%s does not render: %v", names[0], err)
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			t.Fatalf("go is not on PATH: %v", err)
		}
		cmd := exec.Command(goTool, "tool", "pprof", "-top", path)
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "PPROF_TMPDIR="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("flat%")) {
			t.Errorf("go tool pprof -top %s: %v\n%s", names[0], err, out)
		}
	}
}

// TestProfilerKeepsTheNewestFiles checks that, with Keep 0, the 24 newest files per kind are kept: older ones go,
// including an earlier run's, and files that are not the profiler's stay.
func TestProfilerKeepsTheNewestFiles(t *testing.T) {
	dir := t.TempDir()
	earlier := "heap-20000101T000000.000Z.pb.gz"
	foreign := []string{"notes.txt", "heap-notes.pb.gz", "heap-20000101T000000.000Z.txt", "Heap-20000101T000000.000Z.pb.gz"}
	for _, name := range append([]string{earlier}, foreign...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A span shorter than a window: each window gets its own file.
	p, err := profiler.Start(profiler.Options{Sampling: 1, Window: profiler.MinWindow, Span: time.Nanosecond, Dir: dir, Kinds: profiler.Heap})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	seen := map[string]bool{}
	poll(t, "26 heap files", func() bool {
		for _, name := range profileFiles(t, dir, "heap") {
			if name != earlier {
				seen[name] = true
			}
		}
		return len(seen) >= profiler.DefaultKeep+2
	})
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	left := profileFiles(t, dir, "heap")
	if len(left) != profiler.DefaultKeep {
		t.Fatalf("%d heap files left, want %d", len(left), profiler.DefaultKeep)
	}
	var all []string
	for name := range seen {
		all = append(all, name)
	}
	slices.Sort(all)
	if oldest := all[0]; left[0] <= oldest || slices.Contains(left, earlier) {
		t.Errorf("the oldest files were kept: %q (the first written was %s, the earlier run's %s)", left, oldest, earlier)
	}
	for _, name := range foreign {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("a file that is not the profiler's was touched: %v", err)
		}
	}
}

// TestDocumentedFigures checks the figures that the README and the package
// documentation state in words, against the constants that hold them.
func TestDocumentedFigures(t *testing.T) {
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"DefaultKeep (the newest 24 of each are kept)", profiler.DefaultKeep, 24},
		{"DefaultSpan (every 10 minutes)", profiler.DefaultSpan, 10 * time.Minute},
		{"DefaultWindow (0.01 opens one 100 ms window every 10 s)", profiler.DefaultWindow, 100 * time.Millisecond},
		{"MaxCaptureSeconds (?seconds goes up to 300)", profiler.MaxCaptureSeconds, 300},
		{"MaxFlameSeconds (60 for the flame graph)", profiler.MaxFlameSeconds, 60},
		{"DefaultFlameSeconds (/debug/flamegraph?seconds=5)", profiler.DefaultFlameSeconds, 5},
		{"MaxProfileBytes (profiles over 8 MiB are refused)", profiler.MaxProfileBytes, 8 << 20},
		{"MaxStackDepth (stacks deeper than 1024 frames are cut)", profiler.MaxStackDepth, 1024},
		{"TruncatedFrame (under one [deeper frames truncated] box)", profiler.TruncatedFrame, "[deeper frames truncated]"},
		{"MaxFlameNodes (call trees over 2^20 nodes are refused)", profiler.MaxFlameNodes, 1 << 20},
		{"LabelAgentType (the pprof label agent_type)", profiler.LabelAgentType, "agent_type"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, the documentation says %v", c.what, c.got, c.want)
		}
	}
}

// TestProfilerBesideAnotherCPUProfile checks that Start refuses to run
// beside another CPU profile, and that a later window that meets one goes on
// without its CPU part and tells OnError.
func TestProfilerBesideAnotherCPUProfile(t *testing.T) {
	if cpuProfileBusy(t) {
		return
	}
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatal(err)
	}
	p, err := profiler.Start(profiler.Options{Sampling: 0.01, Dir: t.TempDir()})
	pprof.StopCPUProfile()
	if !errors.Is(err, profiler.ErrCPUProfileActive) || p != nil {
		p.Stop()
		t.Fatalf("Start beside a CPU profile: %v, %v; want ErrCPUProfileActive and no profiler", p, err)
	}

	onErr := make(chan error, 100)
	dir := t.TempDir()
	p, err = profiler.Start(profiler.Options{Sampling: 0.5, Window: profiler.MinWindow, Dir: dir, Kinds: profiler.CPU | profiler.Heap,
		OnError: func(err error) {
			select {
			case onErr <- err:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	// Take the CPU profiler between two windows.
	poll(t, "gap between windows", func() bool { return pprof.StartCPUProfile(io.Discard) == nil })
	select {
	case err = <-onErr:
	case <-time.After(time.Minute):
		err = errors.New("no window within a minute")
	}
	pprof.StopCPUProfile()
	if !errors.Is(err, profiler.ErrCPUProfileActive) || !strings.Contains(err.Error(), "skipped its CPU profile") {
		t.Errorf("OnError got %v, want the window's ErrCPUProfileActive", err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if len(profileFiles(t, dir, "heap")) != 1 {
		t.Errorf("the windows without CPU wrote no heap file")
	}
}

// burner is an agent that burns CPU in each message and sends itself the
// next one until stop is set.
type burner struct {
	stop *atomic.Bool
	sum  uint64 // keeps the burning from being optimised away
}

func (b *burner) Receive(c *engine.Context, _ engine.Message) {
	b.sum += burnMessage()
	if !b.stop.Load() {
		_ = c.Send(c.Self(), nil)
	}
}

//go:noinline
func burnMessage() uint64 {
	var x uint64
	for i := uint64(0); i < 200_000; i++ {
		x = x*31 + i
	}
	return x
}

const burnerReceive = "github.com/agentloop/agentloop/profiler_test.(*burner).Receive"

// TestLabelsPerAgentType checks that while a Profiler runs the engine's
// loops label CPU samples with agent_type, that they stop after Stop, and
// that wall-clock samples carry no labels.
func TestLabelsPerAgentType(t *testing.T) {
	if cpuProfileBusy(t) {
		return
	}
	var stop atomic.Bool
	e, err := engine.New(engine.WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Register("burner", func() engine.Agent { return &burner{stop: &stop} }); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stop.Store(true)
		if err := e.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	ref, err := e.Spawn(engine.AgentID{Type: "burner", Key: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.Send(nil); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	p, err := profiler.Start(profiler.Options{Sampling: 1, Window: 50 * time.Millisecond, Dir: dir, Kinds: profiler.CPU | profiler.Wall})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	poll(t, "labelled CPU sample of the agent", func() bool {
		names := profileFiles(t, dir, "cpu")
		if len(names) == 0 {
			return false
		}
		prof, err := profiler.ReadProfile(filepath.Join(dir, names[0]))
		return err == nil && hasFrame(prof, burnerReceive, "burner")
	})
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if names := profileFiles(t, dir, "wall"); len(names) == 1 {
		prof, err := profiler.ReadProfile(filepath.Join(dir, names[0]))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range prof.Sample {
			if len(s.Label) > 0 {
				t.Fatalf("a wall-clock sample has labels %v", s.Label)
			}
		}
	}

	// After Stop, the loop drops the label at its next agent switch: CPU
	// profiles of the same agent come without it.
	poll(t, "unlabelled CPU samples of the agent after Stop", func() bool {
		var buf bytes.Buffer
		if err := pprof.StartCPUProfile(&buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // a sampling period, not a wait for anything
		pprof.StopCPUProfile()
		prof, err := profile.Parse(&buf)
		if err != nil {
			t.Fatal(err)
		}
		return hasFrame(prof, burnerReceive, "") && !hasFrame(prof, burnerReceive, "burner")
	})
}

// TestStopFromOutside checks Stop: it returns the error of writing the
// last window's files, every call returns the same one, from any goroutine,
// and a nil Profiler stops without error.
func TestStopFromOutside(t *testing.T) {
	if err := (*profiler.Profiler)(nil).Stop(); err != nil {
		t.Errorf("nil Profiler: Stop = %v", err)
	}
	dir := filepath.Join(t.TempDir(), "profiles")
	failed := make(chan error, 100)
	p, err := profiler.Start(profiler.Options{Sampling: 1, Window: profiler.MinWindow, Dir: dir, Kinds: profiler.Heap,
		OnError: func(err error) {
			select {
			case failed <- err:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	// Put a file where the directory was: the next window cannot write.
	// (RemoveAll fails if a window adds a file meanwhile.)
	poll(t, "Dir removed", func() bool { return os.RemoveAll(dir) == nil })
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-failed: // a window failed to write since
	case <-time.After(time.Minute):
		t.Fatal("no window failed within a minute")
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Stop()
		}()
	}
	wg.Wait()
	if errs[0] == nil || !strings.Contains(errs[0].Error(), dir) {
		t.Fatalf("Stop = %v, want the error of writing into %s", errs[0], dir)
	}
	for _, err := range append(errs[1:], p.Stop()) {
		if err != errs[0] {
			t.Errorf("Stop returned %v and %v, want the same error every time", errs[0], err)
		}
	}
}

// TestOptionsFromOutside checks Validate and Start's checks of Options.
func TestOptionsFromOutside(t *testing.T) {
	err := profiler.Options{Sampling: math.NaN(), Window: time.Millisecond, Keep: -1, Span: -time.Second, Kinds: 0x80}.Validate()
	if !errors.Is(err, profiler.ErrInvalidOptions) {
		t.Fatalf("Validate = %v, want ErrInvalidOptions", err)
	}
	for _, want := range []string{"Sampling NaN is outside (0, 1]", "Window 1ms is shorter than 20ms", "Dir is empty", "Keep -1 is negative", "Span -1s is negative", "Kinds Kind(0x80) has unknown bits"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to report %q", err, want)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 6 {
		t.Errorf("Validate = %v, want six errors joined", err)
	}
	for _, e := range joined.Unwrap() {
		if !errors.Is(e, profiler.ErrInvalidOptions) {
			t.Errorf("%v does not wrap ErrInvalidOptions", e)
		}
	}
	if err := (profiler.Options{Sampling: 1e-9, Dir: "x"}).Validate(); !errors.Is(err, profiler.ErrInvalidOptions) || !strings.Contains(err.Error(), profiler.MaxPeriod.String()) {
		t.Errorf("Sampling 1e-9: %v, want a refusal naming MaxPeriod", err)
	}

	// Validate does not touch the file system; Start does.
	missing := filepath.Join(t.TempDir(), "missing")
	if err := (profiler.Options{Sampling: 0.01, Dir: missing}).Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Validate touched Dir: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "sub")} {
		if p, err := profiler.Start(profiler.Options{Sampling: 0.01, Dir: dir, Kinds: profiler.Heap}); !errors.Is(err, profiler.ErrInvalidOptions) || !strings.Contains(err.Error(), dir) {
			p.Stop()
			t.Errorf("Start with Dir %s: %v, want ErrInvalidOptions naming it", dir, err)
		}
	}
	// Kinds selects the files.
	dir := t.TempDir()
	p, err := profiler.Start(profiler.Options{Sampling: 0.01, Dir: dir, Kinds: profiler.Heap})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "heap-") {
		t.Errorf("Kinds Heap wrote %v, want one heap file", entries)
	}
}

func TestStringers(t *testing.T) {
	for k, want := range map[profiler.Kind]string{
		profiler.CPU: "cpu", profiler.Wall: "wall", profiler.Heap: "heap", profiler.AllKinds: "cpu+wall+heap",
		0: "none", profiler.CPU | 0x40: "cpu+Kind(0x40)",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%#x).String() = %q, want %q", uint8(k), got, want)
		}
	}
	if profiler.Flame.String() != "flame" || profiler.Icicle.String() != "icicle" || profiler.Orientation(7).String() != "Orientation(7)" {
		t.Error("Orientation.String")
	}
}

// TestReadProfileFormats checks that ReadProfile reads what the
// documentation lists, gzipped or not, and how it refuses the rest.
func TestReadProfileFormats(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var heapProto, heapText bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&heapProto, 0); err != nil {
		t.Fatal(err)
	}
	if err := pprof.Lookup("heap").WriteTo(&heapText, 1); err != nil {
		t.Fatal(err)
	}
	download := serve(context.Background(), "/debug/pprof/goroutine")
	synth := profiler.SynthProfile()
	var uncompressed bytes.Buffer
	if err := synth.WriteUncompressed(&uncompressed); err != nil {
		t.Fatal(err)
	}
	noSamples := &profile.Profile{SampleType: countType}
	for name, data := range map[string][]byte{
		"runtime heap.pb.gz":      heapProto.Bytes(),
		"legacy heap text":        heapText.Bytes(),
		"download.pb.gz":          download.Body.Bytes(),
		"uncompressed.pb":         uncompressed.Bytes(),
		"gzipped.pb.gz":           encode(t, synth),
		"no samples, valid.pb.gz": encode(t, noSamples),
	} {
		p, err := profiler.ReadProfile(write(name, data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if name == "no samples, valid.pb.gz" {
			if err := profiler.WriteFlameGraph(io.Discard, p, profiler.FlameOptions{}); !errors.Is(err, profiler.ErrEmptyProfile) {
				t.Errorf("WriteFlameGraph of a profile without samples: %v, want ErrEmptyProfile", err)
			}
		}
	}
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, profiler.ErrEmptyProfile},
		{"text", []byte("no profile here\n"), profiler.ErrBadProfile},
		{"truncated.pb.gz", encode(t, synth)[:40], profiler.ErrBadProfile},
	} {
		path := write(c.name, c.data)
		_, err := profiler.ReadProfile(path)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want %v naming the file", c.name, err, c.want)
		}
		var wrapped interface{ Unwrap() []error }
		if c.want == profiler.ErrBadProfile && (!errors.As(err, &wrapped) || len(wrapped.Unwrap()) != 2) {
			t.Errorf("%s: %v does not also wrap the parser's error", c.name, err)
		}
	}
	if _, err := profiler.ReadProfile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
}

// TestWriteFlameGraphFromOutside checks WriteFlameGraph's page and options:
// one node per stack prefix with its totals, agent types, the sample type
// shown first, the title, the orientation, HTML-safe names and no fetch.
func TestWriteFlameGraphFromOutside(t *testing.T) {
	cpu := []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}}
	p := buildProfile(cpu,
		stackSample{[]string{"main.main", "main.work"}, "device", []int64{3, 30}},
		stackSample{[]string{"main.main", "main.work", "main.parse"}, "device", []int64{2, 20}},
		stackSample{[]string{"main.main", "main.wait"}, "alert", []int64{1, 10}},
		stackSample{[]string{"main.main"}, "", []int64{1, 10}},
		stackSample{[]string{profiler.EvilName}, "", []int64{1, 10}},
	)
	// main.work inlines main.inlined: one location, two lines, the
	// innermost first.
	inl := &profile.Function{ID: 100, Name: "main.inlined"}
	work := p.Sample[0].Location[0]
	work.Line = append([]profile.Line{{Function: inl}}, work.Line...)
	p.Function = append(p.Function, inl)

	var buf bytes.Buffer
	if err := profiler.WriteFlameGraph(&buf, p, profiler.FlameOptions{}); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	d := readPage(t, html)
	if d.Title != "Flame graph" || d.Icicle || d.Names[d.SampleTypes[d.DefaultType].Type] != "cpu" {
		t.Errorf("title %q, icicle %v, first type %q; want Flame graph, false, cpu (the last)", d.Title, d.Icicle, d.Names[d.SampleTypes[d.DefaultType].Type])
	}
	if want := []string{"alert", "device", ""}; !slices.Equal(d.Groups, want) || d.LabelKey != profiler.LabelAgentType {
		t.Errorf("agent types %q under %q, want %q under %q", d.Groups, d.LabelKey, want, profiler.LabelAgentType)
	}
	want := map[string]int64{ // stack prefix -> cpu total
		"":                                 80,
		"main.main":                        70,
		"main.main/main.work":              50,
		"main.main/main.work/main.inlined": 50,
		"main.main/main.work/main.inlined/main.parse": 20,
		"main.main/main.wait":                         10,
		profiler.EvilName:                             10,
	}
	if len(d.Parent) != len(want) {
		t.Errorf("%d nodes, want %d: one per stack prefix", len(d.Parent), len(want))
	}
	for n := range d.Parent {
		key := strings.Join(d.path(n), "/")
		if tot, ok := want[key]; !ok || d.total(n, 1, -1) != tot {
			t.Errorf("node %q: cpu %d, want %d (known %v)", key, d.total(n, 1, -1), tot, ok)
		}
		if key == "main.main/main.work" && d.total(n, 0, 1) != 5 {
			t.Errorf("main.work has %d samples of agent type device, want 5", d.total(n, 0, 1))
		}
	}
	// Names are data, never markup, and the page fetches nothing.
	if strings.Contains(html, profiler.EvilName) || strings.Contains(html, "<img") || !slices.Contains(d.Names, profiler.EvilName) {
		t.Error("the hostile name reached the page unescaped, or not at all")
	}
	if !strings.Contains(html, `content="default-src 'none'; script-src 'sha256-`) {
		t.Error("the page has no Content-Security-Policy forbidding fetches")
	}
	for _, remote := range []string{"http://", "https://", "@import", "url(", "<script src", "<link rel=\"stylesheet"} {
		if strings.Contains(html, remote) {
			t.Errorf("the page refers to %q", remote)
		}
	}

	// Options: title, orientation, sample type by name or the profile's
	// default, "wall" for the time of a wall-clock profile.
	buf.Reset()
	if err := profiler.WriteFlameGraph(&buf, p, profiler.FlameOptions{Title: "<t>", SampleType: "samples", Orientation: profiler.Icicle}); err != nil {
		t.Fatal(err)
	}
	if d := readPage(t, buf.String()); d.Title != "<t>" || !d.Icicle || d.DefaultType != 0 || strings.Contains(buf.String(), "<t>") {
		t.Errorf("title %q, icicle %v, first type %d; want <t> (escaped), true, 0", d.Title, d.Icicle, d.DefaultType)
	}
	p.DefaultSampleType = "samples"
	buf.Reset()
	if err := profiler.WriteFlameGraph(&buf, p, profiler.FlameOptions{}); err != nil || readPage(t, buf.String()).DefaultType != 0 {
		t.Errorf("the profile's default sample type is not shown first (%v)", err)
	}
	wall := buildProfile([]*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "time", Unit: "nanoseconds"}},
		stackSample{[]string{"main.main"}, "", []int64{1, 10}})
	if err := profiler.WriteFlameGraph(io.Discard, wall, profiler.FlameOptions{SampleType: "wall"}); !errors.Is(err, profiler.ErrUnknownSampleType) {
		t.Errorf("wall on a profile that is not wall-clock: %v, want ErrUnknownSampleType", err)
	}
	wall.PeriodType = &profile.ValueType{Type: "wallclock", Unit: "nanoseconds"}
	buf.Reset()
	if err := profiler.WriteFlameGraph(&buf, wall, profiler.FlameOptions{SampleType: "wall"}); err != nil || readPage(t, buf.String()).DefaultType != 1 {
		t.Errorf("wall does not pick time of a wall-clock profile (%v)", err)
	}

	// Refusals write nothing.
	mismatched := buildProfile(cpu, stackSample{[]string{"main.main"}, "", []int64{1}})
	noTypes := buildProfile(nil, stackSample{[]string{"main.main"}, "", nil})
	for _, c := range []struct {
		name string
		p    *profile.Profile
		opts profiler.FlameOptions
		want error
		msg  string
	}{
		{"nil", nil, profiler.FlameOptions{}, profiler.ErrEmptyProfile, "nil profile"},
		{"no samples", &profile.Profile{SampleType: cpu}, profiler.FlameOptions{}, profiler.ErrEmptyProfile, "no samples"},
		{"no sample types", noTypes, profiler.FlameOptions{}, profiler.ErrBadProfile, "no sample types"},
		{"inconsistent", mismatched, profiler.FlameOptions{}, profiler.ErrBadProfile, "1 values vs. 2 types"},
		{"unknown type", p, profiler.FlameOptions{SampleType: "alloc_space"}, profiler.ErrUnknownSampleType, `"alloc_space": the profile has samples, cpu`},
	} {
		buf.Reset()
		err := profiler.WriteFlameGraph(&buf, c.p, c.opts)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) || buf.Len() != 0 {
			t.Errorf("%s: %v after %d bytes, want %v saying %q and nothing written", c.name, err, buf.Len(), c.want, c.msg)
		}
	}
}
