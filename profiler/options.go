package profiler

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// Defaults and limits of Options.
const (
	// DefaultWindow is the length of a profiling window when Options.Window is 0.
	DefaultWindow = 100 * time.Millisecond
	// MinWindow is the shortest window accepted: the CPU profiler samples at
	// 100 Hz and fgprof at 99 Hz, so a shorter window would hold at most one
	// sample of each.
	MinWindow = 20 * time.Millisecond
	// MaxPeriod bounds Window/Sampling, the time between two windows.
	MaxPeriod = 24 * time.Hour
	// DefaultSpan is how much wall time one file covers when Options.Span is 0.
	DefaultSpan = 10 * time.Minute
	// DefaultKeep is the number of files kept per kind when Options.Keep is 0.
	DefaultKeep = 24
)

// Kind is a set of profile kinds.
type Kind uint8

// The kinds of profile a Profiler takes.
const (
	// CPU samples on-CPU time with runtime/pprof; samples carry agent_type labels.
	CPU Kind = 1 << iota
	// Wall samples every goroutine, running or waiting, with fgprof.
	Wall
	// Heap snapshots the heap profile (live and allocated objects and bytes).
	Heap

	// AllKinds is CPU, Wall and Heap.
	AllKinds = CPU | Wall | Heap
)

// kinds lists the single kinds in file-name order.
var kinds = [...]Kind{CPU, Wall, Heap}

// String returns the kind's file-name prefix ("cpu", "wall", "heap"), or the
// names of a set joined by "+".
func (k Kind) String() string {
	var names []string
	for _, one := range kinds {
		if k&one != 0 {
			switch one {
			case CPU:
				names = append(names, "cpu")
			case Wall:
				names = append(names, "wall")
			case Heap:
				names = append(names, "heap")
			}
		}
	}
	if rest := k &^ AllKinds; rest != 0 {
		names = append(names, fmt.Sprintf("Kind(%#x)", uint8(rest)))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

// Options configure a Profiler. Only Sampling and Dir are required; every
// other zero field takes its default.
type Options struct {
	// Sampling is the fraction of wall time profiled, in (0, 1]: one Window
	// is opened in every period of Window/Sampling. 1 opens windows back to
	// back (closing a CPU window still takes up to 100 ms, unprofiled).
	Sampling float64

	// Window is the length of one profiling window: DefaultWindow if 0, at
	// least MinWindow otherwise.
	Window time.Duration

	// Dir receives the profiles. It is created if missing and must be
	// writable.
	Dir string

	// Keep is the number of files kept per kind (DefaultKeep if 0); the
	// oldest are deleted, including those of earlier runs in Dir. Files
	// whose names the profiler did not make are never touched.
	Keep int

	// Span is how much wall time one file covers (DefaultSpan if 0): the
	// windows opened within one span are merged into one file per kind.
	Span time.Duration

	// Kinds selects the profiles taken; 0 means AllKinds.
	Kinds Kind

	// OnError, if set, receives the errors of single windows, which do not
	// stop the profiler: a CPU window skipped because another CPU profile
	// was running, a profile that failed to parse, merge or write. It is
	// called on the profiler's goroutine and must not block.
	OnError func(error)

	// Test hooks, settable only from this package's tests.
	clock    clock                // time source; realClock if nil
	offset   func(n int64) int64  // window offset in [0, n); random if nil
	onWindow func(w windowReport) // called after each window's files are written
}

// Validate reports every problem of the options, joined, each wrapping
// ErrInvalidOptions. It does not touch the file system: Start also checks
// that Dir is writable.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if !(o.Sampling > 0 && o.Sampling <= 1) { // also refuses NaN
		bad("Sampling %v is outside (0, 1]", o.Sampling)
	}
	switch {
	case o.Window < 0:
		bad("Window %v is negative", o.Window)
	case o.Window > 0 && o.Window < MinWindow:
		bad("Window %v is shorter than %v", o.Window, MinWindow)
	}
	if o.Sampling > 0 && o.Window >= 0 {
		w := o.Window
		if w == 0 {
			w = DefaultWindow
		}
		if period := float64(w) / o.Sampling; period > float64(MaxPeriod) || math.IsInf(period, 0) {
			bad("Sampling %v with Window %v opens a window less often than every %v", o.Sampling, w, MaxPeriod)
		}
	}
	if o.Dir == "" {
		bad("Dir is empty")
	}
	if o.Keep < 0 {
		bad("Keep %d is negative", o.Keep)
	}
	if o.Span < 0 {
		bad("Span %v is negative", o.Span)
	}
	if o.Kinds&^AllKinds != 0 {
		bad("Kinds %v has unknown bits", o.Kinds)
	}
	return errors.Join(errs...)
}

// withDefaults returns o with every zero field set to its default. o must be
// valid.
func (o Options) withDefaults() Options {
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Keep == 0 {
		o.Keep = DefaultKeep
	}
	if o.Span == 0 {
		o.Span = DefaultSpan
	}
	if o.Kinds == 0 {
		o.Kinds = AllKinds
	}
	if o.clock == nil {
		o.clock = realClock{}
	}
	return o
}

// period is the time between the starts of two periods, each holding one
// window. o must be valid and have its defaults.
func (o Options) period() time.Duration {
	return time.Duration(math.Round(float64(o.Window) / o.Sampling))
}

// prepareDir creates dir if needed and checks that a file can be written in it.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: Dir %q: %w", ErrInvalidOptions, dir, err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("%w: Dir %q is not writable: %w", ErrInvalidOptions, dir, err)
	}
	name := f.Name()
	err = f.Close()
	if rmErr := os.Remove(name); err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("%w: Dir %q is not writable: %w", ErrInvalidOptions, dir, err)
	}
	return nil
}
