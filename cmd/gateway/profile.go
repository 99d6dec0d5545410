package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/agentloop/agentloop/profiler"
	"github.com/google/pprof/profile"
)

// profileWindow is the length of the profiler's windows in a gateway run.
// Closing a CPU window leaves up to 100 ms unprofiled (runtime/pprof flushes
// its last samples), so with the profiler's default 100 ms windows even
// -sampling 1 left a third of the run or more unprofiled; with 1 s windows
// the gaps are a tenth of a window at most. The rare agent types of the mix
// take a few samples a minute (see the Makefile's profile target): every
// profiled second counts.
const profileWindow = time.Second

// startProfiling starts the duty-cycled profiler writing into dir, in
// windows of profileWindow; the returned stop function stops it and renders
// the newest CPU profile as dir/flame.html (see renderNewest).
func startProfiling(dir string, sampling float64) (stop func() (string, error), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p, err := profiler.Start(profiler.Options{Sampling: sampling, Window: profileWindow, Dir: dir})
	if err != nil {
		return nil, err
	}
	return func() (string, error) {
		if err := p.Stop(); err != nil {
			return "", err
		}
		return renderNewest(dir)
	}, nil
}

// renderNewest writes the flame graph of the newest CPU profile in dir as
// dir/flame.html, atomically: a reader sees the old page or the new one,
// and whatever was at that name (a symlink included) is replaced, never
// written through. A CPU profile with no samples (a short run on a busy
// machine may take none) gives way to the newest wall-clock profile, which
// samples elapsed time whatever share of the CPU the process got; the
// page's title says which it shows.
func renderNewest(dir string) (string, error) {
	prof, name, err := newestWithSamples(dir, "cpu")
	if errors.Is(err, profiler.ErrEmptyProfile) || errors.Is(err, errNoProfile) {
		prof, name, err = newestWithSamples(dir, "wall")
	}
	if err != nil {
		return "", err
	}
	title := "gateway " + strings.TrimSuffix(filepath.Base(name), ".pb.gz")
	out := filepath.Join(dir, "flame.html")
	err = writeFileAtomic(out, func(w io.Writer) error {
		return profiler.WriteFlameGraph(w, prof, profiler.FlameOptions{Title: title})
	})
	if err != nil {
		return "", err
	}
	return out, nil
}

// writeFileAtomic writes name, mode 0644, through a new temporary file in
// the same directory that it syncs and renames over name. Whatever was at
// name is replaced, never written through: a symlink planted there is
// replaced by the file, and its target is left alone. On failure name is
// untouched and the temporary file removed.
func writeFileAtomic(name string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*") // O_EXCL: a fresh file
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", name, err)
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	// Make the rename itself durable; not every file system can sync a
	// directory, and the page is written by then.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

var errNoProfile = errors.New("no profile written")

// newestWithSamples reads the newest profile of kind in dir (the files
// are named kind-<UTC timestamp>.pb.gz) that has samples.
func newestWithSamples(dir, kind string) (*profile.Profile, string, error) {
	names, err := filepath.Glob(filepath.Join(dir, kind+"-*.pb.gz"))
	if err != nil {
		return nil, "", err
	}
	if len(names) == 0 {
		return nil, "", fmt.Errorf("%w: no %s profile in %s", errNoProfile, kind, dir)
	}
	sort.Strings(names)
	for i := len(names) - 1; i >= 0; i-- {
		prof, err := profiler.ReadProfile(names[i])
		if err != nil {
			return nil, "", err
		}
		if len(prof.Sample) > 0 {
			return prof, names[i], nil
		}
	}
	return nil, "", fmt.Errorf("%w: no %s samples in %s", profiler.ErrEmptyProfile, kind, dir)
}
