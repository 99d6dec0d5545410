package main

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
)

// confidence is the level of the spread printed beside each median, the
// same as benchstat's.
const confidence = 0.95

// data is every benchmark read, in order of first appearance.
type data struct {
	benches map[string]*bench
	order   []string
	// file configuration lines (goos, goarch, cpu, pkg), distinct values
	// in order of appearance
	config map[string][]string
	procs  []string // distinct GOMAXPROCS suffixes
}

func newData() *data {
	return &data{benches: map[string]*bench{}, config: map[string][]string{}}
}

// A bench is one benchmark and its samples per unit.
type bench struct {
	name     string // without "Benchmark" and the GOMAXPROCS suffix
	workload int    // n of W<n>
	peers    bool   // from the peers suite (its name has an impl= part)
	impl     string // the impl= value (peers) or the subject (library)
	baseline bool   // a library baseline, or a peer that is not agentloop
	config   string // the sub-benchmark parameters other than impl
	units    []string
	samples  map[string][]float64
}

var workloadName = regexp.MustCompile(`^W(\d+)(?:[_/]|$)`)

// read adds the results of one go test -bench output.
func (d *data) read(r io.Reader, fileName string) error {
	br := benchfmt.NewReader(r, fileName)
	for br.Scan() {
		res, ok := br.Result().(*benchfmt.Result)
		if !ok {
			continue // unit metadata, or a line that is not a result
		}
		for _, c := range res.Config {
			if c.File {
				d.addConfig(c.Key, string(c.Value))
			}
		}
		full, procs := splitProcs(res.Name.String())
		if procs != "" && !slices.Contains(d.procs, procs) {
			d.procs = append(d.procs, procs)
		}
		m := workloadName.FindStringSubmatch(full)
		if m == nil {
			continue
		}
		b := d.benches[full]
		if b == nil {
			n, _ := strconv.Atoi(m[1])
			b = newBench(full, n)
			d.benches[full] = b
			d.order = append(d.order, full)
		}
		for _, v := range res.Values {
			unit, val := v.Unit, v.Value
			if v.OrigUnit != "" {
				unit, val = v.OrigUnit, v.OrigValue
			}
			if _, ok := b.samples[unit]; !ok {
				b.units = append(b.units, unit)
			}
			b.samples[unit] = append(b.samples[unit], val)
		}
	}
	if err := br.Err(); err != nil {
		return fmt.Errorf("%s: %w", fileName, err)
	}
	return nil
}

func (d *data) addConfig(key, value string) {
	if !slices.Contains(d.config[key], value) {
		d.config[key] = append(d.config[key], value)
	}
}

// splitProcs splits "W2_RefSend-2" into "W2_RefSend" and "2".
func splitProcs(name string) (string, string) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || i == len(name)-1 {
		return name, ""
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name, ""
	}
	return name[:i], name[i+1:]
}

func newBench(name string, workload int) *bench {
	b := &bench{name: name, workload: workload, samples: map[string][]float64{}}
	parts := strings.Split(name, "/")
	var config []string
	for _, p := range parts[1:] {
		if v, ok := strings.CutPrefix(p, "impl="); ok {
			b.peers, b.impl = true, v
			continue
		}
		config = append(config, p)
	}
	b.config = strings.Join(config, "/")
	if b.peers {
		b.baseline = b.impl != "agentloop"
		return b
	}
	_, subject, _ := strings.Cut(parts[0], "_")
	b.impl = subject
	b.baseline = strings.HasPrefix(subject, "Baseline")
	return b
}

// A summary is a median and its confidence interval.
type summary struct {
	center, lo, hi float64
	n              int
}

// summary returns the median of unit's samples; ok is false when the
// benchmark did not report unit.
func (b *bench) summary(unit string) (summary, bool) {
	vals := b.samples[unit]
	if len(vals) == 0 {
		return summary{}, false
	}
	s := benchmath.NewSample(slices.Clone(vals), &benchmath.DefaultThresholds)
	sum := benchmath.AssumeNothing.Summary(s, confidence)
	return summary{center: sum.Center, lo: sum.Lo, hi: sum.Hi, n: len(vals)}, true
}

// spread is the half-width of the confidence interval relative to the
// median, as benchstat prints it: "±3%", "±∞" when there are too few
// samples for the interval, "" for a single sample.
func (s summary) spread() string {
	switch {
	case s.n < 2:
		return ""
	case math.IsInf(s.lo, 0) || math.IsInf(s.hi, 0):
		return "±∞"
	case s.center == 0:
		if s.lo == 0 && s.hi == 0 {
			return "±0%"
		}
		return "±?"
	}
	v := math.Max(s.hi/s.center-1, 1-s.lo/s.center)
	return fmt.Sprintf("±%.0f%%", 100*v)
}

// benchesOf returns the benchmarks of workload w, library suite first,
// each in order of appearance.
func (d *data) benchesOf(w int) (library, peers []*bench) {
	for _, name := range d.order {
		b := d.benches[name]
		if b.workload != w {
			continue
		}
		if b.peers {
			peers = append(peers, b)
		} else {
			library = append(library, b)
		}
	}
	return library, peers
}

// A headline is a unit a speedup is computed from, and whether more of
// it is better.
type headline struct {
	unit   string
	higher bool
}

// primaryUnits is, per workload, the units a speedup is computed from, in
// order of preference. ns/op (lower is better) is the fallback.
var primaryUnits = map[int][]headline{
	1:  {{unit: "ns/msg"}},
	2:  {{unit: "ns/msg"}},
	3:  {{unit: "ns/msg"}},
	4:  {{unit: "ns/rt"}},
	5:  {{unit: "ns/rt"}},
	6:  {{unit: "ns/delivery"}},
	7:  {{unit: "ns/pair"}, {unit: "late-p99-µs"}, {unit: "cpu-%"}},
	8:  {{unit: "ns/spawn"}},
	9:  {{unit: "ns/cycle"}},
	10: {{unit: "maxrate-msgs/s", higher: true}, {unit: "cpu-µs/msg"}},
}

// primary returns the unit b's speedup is computed from.
func primary(b *bench) (unit string, higher bool) {
	for _, h := range primaryUnits[b.workload] {
		if _, ok := b.samples[h.unit]; ok {
			return h.unit, h.higher
		}
	}
	return "ns/op", false
}

// libraryReferences are the library benchmarks bench/README.md compares
// a workload's baselines with, where it names one: W2's channel against
// the default mailbox policy (W2_RefSendDrop), not Block.
var libraryReferences = map[int]string{2: "W2_RefSendDrop"}

// reference returns the agentloop benchmark that b, a baseline or peer,
// is compared with: for the peers suite the impl=agentloop benchmark with
// the same parameters; for the library suite the benchmark of
// libraryReferences when the input has it, else the first non-baseline
// benchmark of the workload with the same parameters (or parameters that
// extend b's, as W6's subs=100/exact extends subs=100) that reports the
// same primary unit.
func (d *data) reference(b *bench) *bench {
	if !b.baseline {
		return nil
	}
	unit, _ := primary(b)
	library, peers := d.benchesOf(b.workload)
	if b.peers {
		for _, c := range peers {
			if c.impl == "agentloop" && c.config == b.config {
				return c
			}
		}
		return nil
	}
	if c := d.benches[libraryReferences[b.workload]]; c != nil && c.config == b.config {
		if u, _ := primary(c); u == unit {
			return c
		}
	}
	for _, exact := range []bool{true, false} {
		for _, c := range library {
			if c.baseline {
				continue
			}
			if u, _ := primary(c); u != unit {
				continue
			}
			if exact && c.config == b.config || !exact && strings.HasPrefix(c.config, b.config+"/") {
				return c
			}
		}
	}
	return nil
}

// speedup is how many times better the reference agentloop benchmark is
// than b on b's primary unit (> 1: agentloop is faster).
func (d *data) speedup(b *bench) (float64, bool) {
	ref := d.reference(b)
	if ref == nil {
		return 0, false
	}
	unit, higher := primary(b)
	sb, ok1 := b.summary(unit)
	sr, ok2 := ref.summary(unit)
	if !ok1 || !ok2 || sb.center == 0 || sr.center == 0 {
		return 0, false
	}
	if higher {
		return sr.center / sb.center, true
	}
	return sb.center / sr.center, true
}
