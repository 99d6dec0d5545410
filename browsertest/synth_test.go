package browsertest_test

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/profiler"
)

// synthSample is one sample of the synthetic profile: a stack from the leaf
// to the root, an agent type ("" for none) and a sample count.
type synthSample struct {
	stack []string
	agent string
	count int64
}

// evilName is a function name that would run script if it reached the page
// as markup.
const evilName = `evil</script><img src=x onerror="alert(1)">&amp;'`

// synthSamples is a small call tree with two agent types, unlabelled
// samples, an inlined frame and a hostile name.
var synthSamples = []synthSample{
	{[]string{"main.work", "main.main", "runtime.main"}, "hot", 50},
	{[]string{"main.parse", "main.work", "main.main", "runtime.main"}, "hot", 20},
	{[]string{"main.inlined", "main.work", "main.main", "runtime.main"}, "hot", 5},
	{[]string{"main.wait", "main.main", "runtime.main"}, "cold", 20},
	{[]string{"main.parse", "main.wait", "main.main", "runtime.main"}, "cold", 4},
	{[]string{evilName, "main.main", "runtime.main"}, "cold", 10},
	{[]string{"runtime.gcBgMarkWorker"}, "", 10},
}

// synthProfile builds a CPU-like profile (samples/count, cpu/nanoseconds)
// from synthSamples. main.inlined is inlined into main.work: one location
// with two lines.
func synthProfile() *profile.Profile {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
	}
	funcs := map[string]*profile.Function{}
	fn := func(name string) *profile.Function {
		f, ok := funcs[name]
		if !ok {
			f = &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name, Filename: "main.go"}
			funcs[name] = f
			p.Function = append(p.Function, f)
		}
		return f
	}
	locs := map[string]*profile.Location{}
	loc := func(names ...string) *profile.Location { // innermost first
		key := strings.Join(names, "|")
		l, ok := locs[key]
		if !ok {
			l = &profile.Location{ID: uint64(len(p.Location) + 1), Address: uint64(0x1000 + 16*len(p.Location))}
			for i, n := range names {
				l.Line = append(l.Line, profile.Line{Function: fn(n), Line: int64(10 + i)})
			}
			locs[key] = l
			p.Location = append(p.Location, l)
		}
		return l
	}
	for _, s := range synthSamples {
		smp := &profile.Sample{Value: []int64{s.count, s.count * 10_000_000}}
		for i := 0; i < len(s.stack); i++ {
			if s.stack[i] == "main.inlined" {
				smp.Location = append(smp.Location, loc("main.inlined", "main.work"))
				i++ // main.work is the same location
				continue
			}
			smp.Location = append(smp.Location, loc(s.stack[i]))
		}
		if s.agent != "" {
			smp.Label = map[string][]string{profiler.LabelAgentType: {s.agent}}
		}
		p.Sample = append(p.Sample, smp)
	}
	return p
}

// synthNodes counts the nodes of the call tree of synthSamples, root
// included, that hold samples of the given agent type ("" for all).
func synthNodes(agent string) int {
	prefixes := map[string]bool{}
	for _, s := range synthSamples {
		if agent != "" && s.agent != agent {
			continue
		}
		key := ""
		for i := len(s.stack) - 1; i >= 0; i-- {
			key += "\x00" + s.stack[i]
			prefixes[key] = true
		}
	}
	return len(prefixes) + 1
}

// synthMatch returns the share of samples (all agent types) with a frame
// matching re, formatted as the page shows it.
func synthMatch(re string) string {
	rx := regexp.MustCompile("(?i)" + re)
	var total, matched int64
	for _, s := range synthSamples {
		total += s.count
		for _, f := range s.stack {
			if rx.MatchString(f) {
				matched += s.count
				break
			}
		}
	}
	return fmt.Sprintf("%.2f%%", 100*float64(matched)/float64(total))
}

// synthZoom counts the boxes shown when zoomed on the node at path (from
// the root down): its ancestors, root included, and its subtree.
func synthZoom(path ...string) int {
	zoom := "\x00" + strings.Join(path, "\x00")
	prefixes := map[string]bool{}
	for _, s := range synthSamples {
		key := ""
		for i := len(s.stack) - 1; i >= 0; i-- {
			key += "\x00" + s.stack[i]
			if key == zoom || strings.HasPrefix(key, zoom+"\x00") {
				prefixes[key] = true
			}
		}
	}
	return len(prefixes) + len(path)
}

// stackSample is a sample of buildProfile: a stack from the root down, one
// value per sample type and an agent type ("" for none).
type stackSample struct {
	stack  []string
	agent  string
	values []int64
}

// countType is the sample type of a profile that counts samples.
var countType = []*profile.ValueType{{Type: "samples", Unit: "count"}}

// buildProfile returns a valid profile of the given sample types and
// samples, one location per function name.
func buildProfile(types []*profile.ValueType, samples ...stackSample) *profile.Profile {
	p := &profile.Profile{SampleType: types}
	locs := map[string]*profile.Location{}
	for _, s := range samples {
		ps := &profile.Sample{Value: s.values}
		for i := len(s.stack) - 1; i >= 0; i-- { // leaf first
			loc, ok := locs[s.stack[i]]
			if !ok {
				fn := &profile.Function{ID: uint64(len(p.Function) + 1), Name: s.stack[i]}
				loc = &profile.Location{ID: uint64(len(p.Location) + 1), Address: uint64(0x1000 * (len(p.Location) + 1)), Line: []profile.Line{{Function: fn}}}
				locs[s.stack[i]] = loc
				p.Function, p.Location = append(p.Function, fn), append(p.Location, loc)
			}
			ps.Location = append(ps.Location, loc)
		}
		if s.agent != "" {
			ps.Label = map[string][]string{profiler.LabelAgentType: {s.agent}}
		}
		p.Sample = append(p.Sample, ps)
	}
	return p
}
