package profiler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/felixge/fgprof"
	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/internal/labels"
)

// Profiler profiles the process in short windows and writes merged profiles
// to a directory. Create one with Start; Stop ends it. All methods are safe
// to call from any goroutine.
type Profiler struct {
	opts Options // validated, with defaults
	stop chan struct{}
	done chan struct{} // closed when run returns
	once sync.Once

	// err is the error of writing the last window's files. run writes it
	// before closing done; Stop reads it after done is closed.
	err error
}

// Start validates opts, prepares opts.Dir, opens the first window and starts
// the goroutine that opens the next ones; Stop ends it. Labels are switched on
// (the engine's loops tag samples with LabelAgentType) until Stop.
//
// Start fails with ErrInvalidOptions when opts are invalid or Dir is not
// writable, and with ErrCPUProfileActive when opts.Kinds includes CPU and
// another CPU profile is running.
func Start(opts Options) (*Profiler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	if err := prepareDir(o.Dir); err != nil {
		return nil, err
	}
	p := &Profiler{opts: o, stop: make(chan struct{}), done: make(chan struct{})}
	labels.Enable() // before the first window, so that its samples are labelled
	w, err := p.openWindow(true)
	if err != nil {
		labels.Disable()
		return nil, err
	}
	go p.run(w)
	return p, nil
}

// Stop closes the current window, writes its files, waits for the profiler's
// goroutine to end and switches labels off. It returns the error of writing
// the last window's files, if any. Stop is idempotent: later calls wait for
// the first and return the same error.
func (p *Profiler) Stop() error {
	if p == nil {
		return nil
	}
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		labels.Disable()
	})
	<-p.done
	return p.err
}

// cpuSlot guards the process's single CPU profiler among the users in this
// package (profiler windows, /debug/pprof/profile, /debug/flamegraph), so
// that they take turns instead of failing inside runtime/pprof. It is global
// because the CPU profiler is. Users outside this package are detected by
// pprof.StartCPUProfile's error.
var cpuSlot = make(chan struct{}, 1)

// startCPU starts the CPU profile into w without waiting for the slot.
// On success the caller must call stopCPU.
func startCPU(w io.Writer) error {
	select {
	case cpuSlot <- struct{}{}:
	default:
		return fmt.Errorf("%w (a profiler window or a /debug capture holds it)", ErrCPUProfileActive)
	}
	if err := pprof.StartCPUProfile(w); err != nil {
		<-cpuSlot
		return fmt.Errorf("%w: %w", ErrCPUProfileActive, err)
	}
	return nil
}

// stopCPU stops the CPU profile started by startCPU and frees the slot.
func stopCPU() {
	pprof.StopCPUProfile()
	<-cpuSlot
}

// window is one profiling window in progress.
type window struct {
	start    time.Time
	cpu      bytes.Buffer
	cpuOn    bool
	wall     bytes.Buffer
	stopWall func() error // nil if no wall profile runs
	errs     []error      // errors met while opening
}

// windowReport tells tests what one window did.
type windowReport struct {
	start, end time.Time
	taken      Kind           // the kinds whose profile this window produced
	durations  map[Kind]int64 // the DurationNanos of each profile taken
	files      []string       // the files written
	errs       []error
}

// openWindow starts the profiles of a window. If strict, failing to start the
// CPU profile is an error; otherwise the window goes on without it and
// records the error.
func (p *Profiler) openWindow(strict bool) (*window, error) {
	w := &window{start: p.opts.clock.Now()}
	if p.opts.Kinds&CPU != 0 {
		if err := startCPU(&w.cpu); err != nil {
			if strict {
				return nil, err
			}
			w.errs = append(w.errs, fmt.Errorf("profiler: window at %v skipped its CPU profile: %w", w.start.Format(time.RFC3339), err))
		} else {
			w.cpuOn = true
		}
	}
	if p.opts.Kinds&Wall != 0 {
		w.stopWall = fgprof.Start(&w.wall, fgprof.FormatPprof)
	}
	return w, nil
}

// closeWindow stops the window's profiles, takes the heap snapshot and
// returns the parsed profiles by kind.
func (p *Profiler) closeWindow(w *window) (map[Kind]*profile.Profile, []error) {
	profs := make(map[Kind]*profile.Profile, len(kinds))
	errs := w.errs
	add := func(k Kind, data []byte) {
		prof, err := parseProfile(data, k.String()+" window")
		if err != nil {
			errs = append(errs, err)
			return
		}
		profs[k] = prof
	}
	// Wall first: stopping it is immediate, while StopCPUProfile waits for
	// the profile writer to flush (up to 100 ms) after sampling has ended.
	if w.stopWall != nil {
		switch err := stopWall(w.stopWall); {
		case errors.Is(err, errNoWallSamples):
			// The window closed (by Stop) before fgprof's first tick: there
			// is nothing to add.
		case err != nil:
			errs = append(errs, fmt.Errorf("profiler: wall window: %w", err))
		default:
			add(Wall, w.wall.Bytes())
		}
	}
	if w.cpuOn {
		stopCPU()
		add(CPU, w.cpu.Bytes())
	}
	if p.opts.Kinds&Heap != 0 {
		var buf bytes.Buffer
		if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
			errs = append(errs, fmt.Errorf("profiler: heap snapshot: %w", err))
		} else {
			add(Heap, buf.Bytes())
		}
	}
	return profs, errs
}

// errNoWallSamples reports a wall window without a single fgprof tick.
var errNoWallSamples = errors.New("profiler: no wall-clock sample in the window")

// stopWall calls the stop function of fgprof.Start. fgprof v0.9.5 divides by
// its measured sample rate, and so panics (integer divide by zero) when it is
// stopped before its first tick (1/99 s) or the rate rounds to 0; its
// sampling goroutine has ended by then, so the panic is turned into
// errNoWallSamples.
func stopWall(stop func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (fgprof: %v)", errNoWallSamples, r)
		}
	}()
	return stop()
}

// run closes the window w and opens the next ones until Stop. Each period of
// Window/Sampling holds one window at a random offset.
func (p *Profiler) run(w *window) {
	defer close(p.done)
	o := p.opts
	period := o.period()
	periodStart := w.start
	spanStart := w.start
	agg := make(map[Kind]*profile.Profile, len(kinds))
	for {
		stopped := p.wait(w.start.Add(o.Window).Sub(o.clock.Now()))
		rep := windowReport{start: w.start, end: o.clock.Now()}
		profs, errs := p.closeWindow(w)
		rep.durations = make(map[Kind]int64, len(profs))
		for k, prof := range profs {
			rep.taken |= k
			rep.durations[k] = prof.DurationNanos
			if err := fold(agg, k, prof); err != nil {
				errs = append(errs, err)
			}
		}
		var writeErrs []error
		for _, k := range kinds {
			if rep.taken&k == 0 {
				continue
			}
			name, err := p.writeProfile(k, spanStart, agg[k])
			if err == nil {
				rep.files = append(rep.files, name)
				err = p.prune(k)
			}
			if err != nil {
				writeErrs = append(writeErrs, err)
			}
		}
		p.err = errors.Join(writeErrs...)
		rep.errs = append(errs, writeErrs...)
		if o.OnError != nil {
			for _, err := range rep.errs {
				o.OnError(err)
			}
		}
		if o.onWindow != nil {
			o.onWindow(rep)
		}
		if stopped {
			return
		}

		// Schedule the next window in the next period.
		periodStart = periodStart.Add(period)
		now := o.clock.Now()
		if now.Sub(periodStart) > period {
			// Closing took longer than a period (or the process was
			// suspended): resynchronise instead of opening windows in a burst.
			periodStart = now
		}
		next := periodStart
		if slack := int64(period - o.Window); slack > 0 {
			next = next.Add(time.Duration(p.offset(slack)))
		}
		if p.wait(next.Sub(now)) {
			return
		}
		w, _ = p.openWindow(false) // not strict: never fails
		if w.start.Sub(spanStart) >= o.Span {
			spanStart = w.start
			clear(agg)
		}
	}
}

// fold adds a window's profile of kind k to the span's aggregate. CPU and
// wall samples add up; a heap profile is a snapshot (its alloc_* values are
// totals since the process started, its inuse_* values a point in time), so
// the latest one replaces the previous.
func fold(agg map[Kind]*profile.Profile, k Kind, prof *profile.Profile) error {
	if k == Heap || agg[k] == nil {
		agg[k] = prof
		return nil
	}
	merged, err := profile.Merge([]*profile.Profile{agg[k], prof})
	if err != nil {
		// Keep the span so far and drop this window.
		return fmt.Errorf("profiler: merge %v window: %w", k, err)
	}
	agg[k] = merged
	return nil
}

// offset returns the offset of a window in [0, n).
func (p *Profiler) offset(n int64) int64 {
	if p.opts.offset != nil {
		return p.opts.offset(n)
	}
	return rand.Int64N(n)
}

// wait blocks for d or until Stop, and reports whether Stop was called.
func (p *Profiler) wait(d time.Duration) (stopped bool) {
	if d <= 0 {
		select {
		case <-p.stop:
			return true
		default:
			return false
		}
	}
	c, stopTimer := p.opts.clock.Timer(d)
	defer stopTimer()
	select {
	case <-c:
		return false
	case <-p.stop:
		return true
	}
}

// fileTime is the layout of the span start in file names: UTC, sortable.
const fileTime = "20060102T150405.000Z"

// fileName returns the file name of kind k for the span starting at t.
func fileName(k Kind, t time.Time) string {
	return k.String() + "-" + t.UTC().Format(fileTime) + ".pb.gz"
}

// isFileOf reports whether name is a file name of kind k made by fileName.
func isFileOf(k Kind, name string) bool {
	stamp, ok := strings.CutPrefix(name, k.String()+"-")
	if !ok {
		return false
	}
	stamp, ok = strings.CutSuffix(stamp, ".pb.gz")
	if !ok {
		return false
	}
	_, err := time.Parse(fileTime, stamp)
	return err == nil
}

// writeProfile writes prof as the file of kind k for the span starting at
// spanStart, replacing it atomically, and returns its path.
func (p *Profiler) writeProfile(k Kind, spanStart time.Time, prof *profile.Profile) (string, error) {
	name := filepath.Join(p.opts.Dir, fileName(k, spanStart))
	f, err := os.CreateTemp(p.opts.Dir, ".tmp-"+k.String()+"-*")
	if err != nil {
		return "", fmt.Errorf("profiler: write %s: %w", name, err)
	}
	tmp := f.Name()
	err = prof.Write(f)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("profiler: write %s: %w", name, err)
	}
	return name, nil
}

// prune deletes the oldest files of kind k beyond Options.Keep. It touches
// only names that fileName makes.
func (p *Profiler) prune(k Kind) error {
	entries, err := os.ReadDir(p.opts.Dir)
	if err != nil {
		return fmt.Errorf("profiler: prune %s: %w", p.opts.Dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && isFileOf(k, e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) <= p.opts.Keep {
		return nil
	}
	slices.Sort(names) // the timestamps sort as strings
	var errs []error
	for _, name := range names[:len(names)-p.opts.Keep] {
		if err := os.Remove(filepath.Join(p.opts.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("profiler: prune: %w", err))
		}
	}
	return errors.Join(errs...)
}

// clock is the time source of the window scheduler; tests replace it.
type clock interface {
	Now() time.Time
	// Timer returns a channel that receives once d has passed, and a
	// function that stops the timer.
	Timer(d time.Duration) (<-chan time.Time, func() bool)
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
