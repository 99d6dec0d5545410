package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentloop/agentloop/profiler"
)

// flameCmd is `agentloop flame IN.pprof [-o OUT.html] [-type T] [-icicle]`.
type flameCmd struct {
	out, sampleType, title string
	icicle                 bool
}

func (c *flameCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.out, "o", "", "write the page to `file` (default: IN with its extension replaced by .html; - for standard output)")
	fs.StringVar(&c.sampleType, "type", "", "sample `type` shown first: cpu, wall, samples, alloc_space, inuse_space... (default: the profile's default or last type)")
	fs.BoolVar(&c.icicle, "icicle", false, "start in icicle orientation (root at the top) instead of flame (root at the bottom)")
	fs.StringVar(&c.title, "title", "", "page `title` (default: \"Flame graph of\" and the input's name)")
}

func (c *flameCmd) run(e *env, args []string) error {
	if len(args) != 1 {
		return usagef("want one input profile, got %d arguments", len(args))
	}
	in := args[0]
	out := c.out
	if out == "" {
		out = defaultOutput(in)
	}
	if out != "-" && sameFile(in, out) {
		return usagef("the output %s would overwrite the input", out)
	}

	p, err := profiler.ReadProfile(in)
	if err != nil {
		return err
	}
	opts := profiler.FlameOptions{Title: c.title, SampleType: c.sampleType}
	if opts.Title == "" {
		opts.Title = "Flame graph of " + filepath.Base(in)
	}
	if c.icicle {
		opts.Orientation = profiler.Icicle
	}
	var page bytes.Buffer
	if err := profiler.WriteFlameGraph(&page, p, opts); err != nil {
		if errors.Is(err, profiler.ErrUnknownSampleType) {
			return usageError{fmt.Errorf("-type: %w", err)}
		}
		return fmt.Errorf("%s: %w", in, err)
	}

	if out == "-" {
		_, err := e.stdout.Write(page.Bytes())
		return err
	}
	if err := writeFileAtomic(out, page.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", out)
	return nil
}

// defaultOutput names the page after the input: cpu.pb.gz -> cpu.html.
func defaultOutput(in string) string {
	base := in
	for _, ext := range []string{".gz", ".pb", ".pprof", ".prof", ".out"} {
		base = strings.TrimSuffix(base, ext)
	}
	if base == "" || base == in && filepath.Ext(in) == ".html" {
		base = in + ".flame"
	}
	return base + ".html"
}

// sameFile reports whether a and b name the same existing file, or the same
// path.
func sameFile(a, b string) bool {
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(ia, ib)
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// writeFileAtomic writes data to name through a temporary file in the same
// directory, synced before it is renamed over name, so that a failure or a
// crash leaves no half-written page, and a symlink at name is replaced, not
// written through.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
