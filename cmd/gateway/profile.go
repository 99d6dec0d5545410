package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agentloop/agentloop/profiler"
)

// startProfiling starts the duty-cycled profiler writing into dir; the
// returned stop function stops it and renders the newest CPU profile as
// dir/flame.html.
func startProfiling(dir string, sampling float64) (stop func() (string, error), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p, err := profiler.Start(profiler.Options{Sampling: sampling, Dir: dir})
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

// renderNewest writes the flame graph of the newest CPU profile in dir.
func renderNewest(dir string) (string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "cpu-*.pb.gz"))
	if err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", fmt.Errorf("no CPU profile written in %s", dir)
	}
	sort.Strings(names) // names carry a UTC timestamp
	prof, err := profiler.ReadProfile(names[len(names)-1])
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "flame.html")
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	title := "gateway " + strings.TrimSuffix(filepath.Base(names[len(names)-1]), ".pb.gz")
	if err := profiler.WriteFlameGraph(f, prof, profiler.FlameOptions{Title: title}); err != nil {
		f.Close()
		return "", err
	}
	return out, f.Close()
}
