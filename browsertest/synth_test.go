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

// Functions of the synthetic profile with long names: a handler run by the
// engine's loop, a generic function it calls, the loop's own frames.
const (
	handlerName = "github.com/agentloop/agentloop/gateway.(*deviceAgent).Receive"
	genericName = "example.com/m/pool.(*Pool[go.shape.int,go.shape.string]).Get"
	runAgent    = "github.com/agentloop/agentloop/engine.(*loop).runAgent"
	turn        = "github.com/agentloop/agentloop/engine.(*loop).turn"
	park        = "github.com/agentloop/agentloop/engine.(*loop).park"
)

// synthSamples is a small call tree with two agent types, unlabelled
// samples, an inlined frame, a hostile name, and the stacks of an engine
// loop: a handler under the loop's frames, and the loop parking with no
// handler.
var synthSamples = []synthSample{
	{[]string{handlerName, runAgent, turn, "runtime.goexit"}, "hot", 8},
	{[]string{genericName, handlerName, runAgent, turn, "runtime.goexit"}, "hot", 3},
	{[]string{"runtime.futex", park, turn, "runtime.goexit"}, "cold", 2},
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

// engineFrame is the box that holds, in the view of one agent type, the
// samples that ran no handler.
const engineFrame = "[engine loop]"

// machinery reports whether a frame of synthSamples is the runtime's or the
// engine loop's.
func machinery(name string) bool {
	return strings.HasPrefix(name, "runtime.") || strings.HasPrefix(name, "github.com/agentloop/agentloop/engine.")
}

// synthLeanNodes counts the nodes, root included, of the view of one agent
// type with the engine's frames hidden: each stack starts at its first
// frame from the root that is not machinery, or is one engineFrame box.
func synthLeanNodes(agent string) int {
	prefixes := map[string]bool{}
	for _, s := range synthSamples {
		if s.agent != agent {
			continue
		}
		i := len(s.stack) - 1
		for i >= 0 && machinery(s.stack[i]) {
			i--
		}
		if i < 0 {
			prefixes["\x00"+engineFrame] = true
			continue
		}
		key := ""
		for ; i >= 0; i-- {
			key += "\x00" + s.stack[i]
			prefixes[key] = true
		}
	}
	return len(prefixes) + 1
}

// synthTotal returns the samples of an agent type ("" for the unlabelled
// ones, "*" for all).
func synthTotal(agent string) int64 {
	var n int64
	for _, s := range synthSamples {
		if agent == "*" || s.agent == agent {
			n += s.count
		}
	}
	return n
}

// synthTop returns the function with the most self samples of an agent
// type, from the handlers up, and their count.
func synthTop(agent string) (string, int64) {
	self := map[string]int64{}
	for _, s := range synthSamples {
		if s.agent != agent {
			continue
		}
		leaf := engineFrame
		for _, f := range s.stack {
			if !machinery(f) {
				leaf = s.stack[0]
				break
			}
		}
		self[leaf] += s.count
	}
	var top string
	for f, n := range self {
		if n > self[top] || n == self[top] && f < top {
			top = f
		}
	}
	return top, self[top]
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
