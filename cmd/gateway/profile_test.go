package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/gateway"
	"github.com/agentloop/agentloop/profiler"
)

// writeCPUProfile writes a small CPU profile into dir under a name of the
// profiler's.
func writeCPUProfile(t *testing.T, dir string) {
	t.Helper()
	fn := &profile.Function{ID: 1, Name: "main.work"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Function:   []*profile.Function{fn},
		Location:   []*profile.Location{loc},
		Sample:     []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{1, 10_000_000}}},
	}
	f, err := os.Create(filepath.Join(dir, "cpu-20250102T150405.000Z.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRenderNewestReplacesSymlink plants a symlink at DIR/flame.html: the
// page used to be written through it, into whatever it pointed at (or a new
// file there). It must replace the link and leave the target alone.
func TestRenderNewestReplacesSymlink(t *testing.T) {
	for _, dangling := range []bool{false, true} {
		name := "to a file"
		if dangling {
			name = "dangling"
		}
		t.Run(name, func(t *testing.T) {
			dir, elsewhere := t.TempDir(), t.TempDir()
			writeCPUProfile(t, dir)
			target := filepath.Join(elsewhere, "precious")
			if !dangling {
				if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			page := filepath.Join(dir, "flame.html")
			if err := os.Symlink(target, page); err != nil {
				t.Fatal(err)
			}

			out, err := renderNewest(dir)
			if err != nil || out != page {
				t.Fatalf("renderNewest = %q, %v; want %q", out, err, page)
			}
			fi, err := os.Lstat(page)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
				t.Errorf("%s is %v, want a regular file of mode 0644", page, fi.Mode())
			}
			html, err := os.ReadFile(page)
			if err != nil || !strings.HasPrefix(string(html), "<!DOCTYPE html>") || !strings.Contains(string(html), "main.work") {
				t.Errorf("%s is not the flame graph (%v): %.80q", page, err, html)
			}
			got, err := os.ReadFile(target)
			switch {
			case dangling && !errors.Is(err, os.ErrNotExist):
				t.Errorf("the link's target was created (%v): %.80q", err, got)
			case !dangling && (err != nil || string(got) != "keep me"):
				t.Errorf("the link's target changed (%v): %.80q", err, got)
			}
			assertOnly(t, dir, "cpu-20250102T150405.000Z.pb.gz", "flame.html")
			if dangling {
				assertOnly(t, elsewhere)
			} else {
				assertOnly(t, elsewhere, "precious")
			}
		})
	}
}

// TestRenderNewestKeepsOldPageOnFailure checks that a page that cannot be
// rendered leaves the previous one in place and no temporary file.
func TestRenderNewestKeepsOldPageOnFailure(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cpu-20250102T150405.000Z.pb.gz"), []byte("not a profile"), 0o644); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, "flame.html")
	if err := os.WriteFile(page, []byte("old page"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := renderNewest(dir); !errors.Is(err, profiler.ErrBadProfile) {
		t.Fatalf("renderNewest of a bad profile: %v, want ErrBadProfile", err)
	}
	// A newer profile that parses but has no samples is passed over, for
	// the older one, which is corrupt: the render fails again.
	empty := &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}
	f, err := os.Create(filepath.Join(dir, "cpu-20250102T150406.000Z.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := empty.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := renderNewest(dir); !errors.Is(err, profiler.ErrBadProfile) {
		t.Fatalf("renderNewest past an empty profile to a bad one: %v, want ErrBadProfile", err)
	}
	if got, err := os.ReadFile(page); err != nil || string(got) != "old page" {
		t.Errorf("the old page changed: %q, %v", got, err)
	}
	assertOnly(t, dir, "cpu-20250102T150405.000Z.pb.gz", "cpu-20250102T150406.000Z.pb.gz", "flame.html")
}

// assertOnly checks that dir holds exactly the named entries.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// writeProfile writes a one-function profile named kind-stamp.pb.gz into
// dir, with samples or without.
func writeProfile(t *testing.T, dir, kind, stamp, fnName string, withSamples bool) {
	t.Helper()
	fn := &profile.Function{ID: 1, Name: fnName}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: kind, Unit: "nanoseconds"}},
		Function:   []*profile.Function{fn},
		Location:   []*profile.Location{loc},
	}
	if withSamples {
		p.Sample = []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{1, 10_000_000}}}
	}
	f, err := os.Create(filepath.Join(dir, kind+"-"+stamp+".pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// A run too short or too starved of CPU to take a CPU sample still gets a
// page: the newest CPU profile with samples, else the wall-clock one.
func TestRenderNewestFallsBack(t *testing.T) {
	cases := []struct {
		name     string
		write    func(t *testing.T, dir string)
		want     string // a function the page must show
		wantFail bool
	}{
		{"older CPU profile with samples", func(t *testing.T, dir string) {
			writeProfile(t, dir, "cpu", "20250102T150405.000Z", "main.older", true)
			writeProfile(t, dir, "cpu", "20250102T150406.000Z", "main.newer", false)
		}, "main.older", false},
		{"wall when no CPU sample", func(t *testing.T, dir string) {
			writeProfile(t, dir, "cpu", "20250102T150405.000Z", "main.cpu", false)
			writeProfile(t, dir, "wall", "20250102T150405.000Z", "main.waiting", true)
		}, "main.waiting", false},
		{"nothing sampled", func(t *testing.T, dir string) {
			writeProfile(t, dir, "cpu", "20250102T150405.000Z", "main.cpu", false)
			writeProfile(t, dir, "wall", "20250102T150405.000Z", "main.wall", false)
		}, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.write(t, dir)
			out, err := renderNewest(dir)
			if c.wantFail {
				if !errors.Is(err, profiler.ErrEmptyProfile) {
					t.Fatalf("renderNewest = %q, %v; want ErrEmptyProfile", out, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			page, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(page), c.want) {
				t.Errorf("the page does not show %s", c.want)
			}
		})
	}
}

// TestProfileSamplesEveryAgentType runs the gateway's profile path (run
// with -profile and -sampling 1, as make profile does) at a small scale and
// checks that the CPU profiles hold samples labelled with every agent type
// of the embedded mix, under the embedded names, the rare types included.
//
// A CPU profile samples CPU time, 100 times a second of it: a type shows
// once it has used some tens of milliseconds. In the embedded mix the alert
// type takes about a microsecond per alert, a few hundred alerts a second:
// a couple of samples a minute, which is why make profile runs for
// minutes. Here the mix is scaled down for a test: 20 devices sending a
// feature vector per reading keep inference busy and raise anomalies
// often, and 128 alert instances each see every alert, so that every type
// takes some samples a second. Runs of a second are repeated until every
// type has been sampled, at most 40 of them: the test depends on the CPU
// work done, not on the machine's speed or share.
func TestProfileSamplesEveryAgentType(t *testing.T) {
	def := gateway.Default()
	name := func(k gateway.Kind) string { return def.Type(k).Name }
	config := writeConfig(t, fmt.Sprintf(`load:
  rate: 20000
  duration: 1s
  loops: 2
agents:
  - {name: %s, kind: device, instances: 20, feature_every: 1, subscribe: ["telemetry.*.*"]}
  - {name: %s, kind: feature, instances: 2, subscribe: ["features.*"]}
  - {name: %s, kind: inference, instances: 2, batch: 8, subscribe: ["aggregates.*"]}
  - {name: %s, kind: alert, instances: 128, mailbox: 65536, subscribe: ["alerts.>"]}
`, name(gateway.Device), name(gateway.Feature), name(gateway.Inference), name(gateway.Alert)))
	var want []string
	for _, a := range def.Agents {
		want = append(want, a.Name)
	}

	samples := map[string]int64{} // agent type -> CPU samples, over the runs
	missing := func() []string {
		var m []string
		for _, typ := range want {
			if samples[typ] == 0 {
				m = append(m, typ)
			}
		}
		return m
	}
	for runs := 1; len(missing()) > 0; runs++ {
		if runs > 40 {
			t.Fatalf("after 40 runs no CPU sample of %q: samples per agent type %v", missing(), samples)
		}
		dir := t.TempDir()
		var out bytes.Buffer
		if err := run(context.Background(), []string{"-config", config, "-profile", dir, "-sampling", "1", "-http", ""}, sys{stdout: &out, stderr: &out}); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "flame graph: "+filepath.Join(dir, "flame.html")) {
			t.Fatalf("run %d wrote no flame graph:\n%s", runs, out.String())
		}
		names, err := filepath.Glob(filepath.Join(dir, "cpu-*.pb.gz"))
		if err != nil || len(names) != 1 {
			t.Fatalf("run %d: CPU profiles %q (%v), want one", runs, names, err)
		}
		prof, err := profiler.ReadProfile(names[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range prof.Sample {
			for _, typ := range s.Label[profiler.LabelAgentType] {
				samples[typ] += s.Value[0]
			}
		}
		t.Logf("run %d: CPU samples per agent type %v", runs, samples)
	}
	for typ := range samples {
		if !slices.Contains(want, typ) {
			t.Errorf("samples of agent type %q, which the mix does not have", typ)
		}
	}
}
