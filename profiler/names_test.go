package profiler_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/profiler"
)

func TestShortName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"github.com/agentloop/agentloop/engine.(*loop).run", "engine.(*loop).run"},
		{"github.com/agentloop/agentloop/gateway.(*deviceAgent).Receive", "gateway.(*deviceAgent).Receive"},
		{"github.com/agentloop/agentloop/engine.(*Engine).Publish.func1", "engine.(*Engine).Publish.func1"},
		{"example.com/m/pool.(*Pool[go.shape.int,go.shape.string]).Get", "pool.(*Pool[…]).Get"},
		{"example.com/m/pool.Map[go.shape.*uint8,go.shape.struct { A int; B []string }]", "pool.Map[…]"},
		{"example.com/m/x.F[go.shape.*example.com/m/y.T]", "x.F[…]"},
		{"example.com/m/x.F[...]", "x.F[…]"},
		{"gopkg.in/yaml.v3.(*parser).parse", "yaml.v3.(*parser).parse"},
		{"golang.org/x/sync/errgroup.(*Group).Go.func1", "errgroup.(*Group).Go.func1"},
		{"runtime.gopark", "runtime.gopark"},
		{"runtime/pprof.Do", "pprof.Do"},
		{"main.main", "main.main"},
		{"type:.eq.[8]int", "type:.eq.[8]int"}, // an array length, not type arguments
		{"0x4a0b00", "0x4a0b00"},
		{profiler.TruncatedFrame, profiler.TruncatedFrame},
		{profiler.EngineFrame, profiler.EngineFrame},
		{"x.F[unbalanced", "x.F[unbalanced"},
		{"a b/c.F", "a b/c.F"}, // not an import path
		{profiler.EvilName, profiler.EvilName},
		{"", ""},
	} {
		if got := profiler.ShortName(c.in); got != c.want {
			t.Errorf("ShortName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Engine frames of a loop, as the runtime names them.
const (
	goexit   = "runtime.goexit"
	loopRun  = "github.com/agentloop/agentloop/engine.(*loop).run"
	runAgent = "github.com/agentloop/agentloop/engine.(*loop).runAgent"
	park     = "github.com/agentloop/agentloop/engine.(*loop).park"
	pop      = "github.com/agentloop/agentloop/scheduler.(*Queue).Pop"
	receive  = "github.com/agentloop/agentloop/gateway.(*deviceAgent).Receive"
	publish  = "github.com/agentloop/agentloop/engine.(*Context).Publish"
	score    = "github.com/agentloop/agentloop/gateway.(*inferenceAgent).ReceiveBatch"
)

// TestFlameGraphPerTypeFromHandlers checks the page's second tree: the
// labelled samples alone, each stack cut at its handler, the samples that
// ran no handler under one EngineFrame box, the engine's frames a handler
// calls kept; and the short name of every name.
func TestFlameGraphPerTypeFromHandlers(t *testing.T) {
	p := buildProfile(countType,
		stackSample{[]string{goexit, loopRun, runAgent, receive}, "device", []int64{5}},
		stackSample{[]string{goexit, loopRun, runAgent, receive, publish}, "device", []int64{2}},
		stackSample{[]string{goexit, loopRun, receive}, "device", []int64{1}}, // another way to the handler
		stackSample{[]string{goexit, loopRun, park}, "device", []int64{3}},
		stackSample{[]string{goexit, loopRun, pop}, "inference", []int64{1}},
		stackSample{[]string{goexit, loopRun, runAgent, score}, "inference", []int64{4}},
		stackSample{[]string{"runtime.main", "main.main"}, "", []int64{6}},
	)
	var buf bytes.Buffer
	if err := profiler.WriteFlameGraph(&buf, p, profiler.FlameOptions{}); err != nil {
		t.Fatal(err)
	}
	d := readPage(t, buf.String())
	if len(d.Short) != len(d.Names) {
		t.Fatalf("%d short names for %d names", len(d.Short), len(d.Names))
	}
	for i, name := range d.Names {
		if got := d.Names[d.Short[i]]; got != profiler.ShortName(name) {
			t.Errorf("the short name of %q is %q, want %q", name, got, profiler.ShortName(name))
		}
	}
	// The whole tree is unchanged: every stack from its root.
	if got := d.total(0, 0, -1); got != 22 || len(d.Parent) != 12 {
		t.Errorf("the whole tree holds %d samples in %d nodes, want 22 in 12", got, len(d.Parent))
	}
	l := d.lean()
	want := map[string]int64{ // stack prefix -> samples, all types
		"":                      16,
		receive:                 8,
		receive + "/" + publish: 2,
		profiler.EngineFrame:    4,
		score:                   4,
	}
	if len(l.Parent) != len(want) {
		t.Errorf("the per-type tree has %d nodes, want %d", len(l.Parent), len(want))
	}
	for n := range l.Parent {
		key := strings.Join(l.path(n), "/")
		if tot, ok := want[key]; !ok || l.total(n, 0, -1) != tot {
			t.Errorf("per-type node %q: %d samples, want %d (known %v)", key, l.total(n, 0, -1), tot, ok)
		}
	}
	device, inference := slices.Index(d.Groups, "device"), slices.Index(d.Groups, "inference")
	for n := range l.Parent {
		if key := strings.Join(l.path(n), "/"); key == profiler.EngineFrame {
			if l.total(n, 0, device) != 3 || l.total(n, 0, inference) != 1 {
				t.Errorf("the engine box holds %d device and %d inference samples, want 3 and 1", l.total(n, 0, device), l.total(n, 0, inference))
			}
		}
	}

	// Without labels there is no per-type tree.
	buf.Reset()
	if err := profiler.WriteFlameGraph(&buf, buildProfile(countType, stackSample{[]string{goexit, loopRun, receive}, "", []int64{1}}), profiler.FlameOptions{}); err != nil {
		t.Fatal(err)
	}
	if l := readPage(t, buf.String()).lean(); len(l.Parent) != 0 {
		t.Errorf("an unlabelled profile has a per-type tree of %d nodes", len(l.Parent))
	}
}

// TestFlameGraphPerTypeNodeLimit checks that MaxFlameNodes counts the
// nodes of both trees: a labelled profile whose whole tree alone fits is
// refused when the per-type tree takes it over the limit.
func TestFlameGraphPerTypeNodeLimit(t *testing.T) {
	// roots distinct roots under runtime.goexit, each with a chain of 1023
	// frames: 2 + roots*1024 nodes in the whole tree, 1 + roots*1024 in
	// the per-type one (goexit is the engine's, cut).
	const roots = 512
	if whole := 2 + roots*1024; whole > profiler.MaxFlameNodes || 2*whole-1 <= profiler.MaxFlameNodes {
		t.Fatalf("%d roots: the whole tree has %d nodes, MaxFlameNodes is %d: the test needs one tree under it, both over", roots, whole, profiler.MaxFlameNodes)
	}
	p := &profile.Profile{SampleType: countType}
	exitFn := &profile.Function{ID: 1, Name: goexit}
	chainFn := &profile.Function{ID: 2, Name: "main.chain"}
	exit := &profile.Location{ID: 1, Line: []profile.Line{{Function: exitFn}}}
	chain := &profile.Location{ID: 2, Line: []profile.Line{{Function: chainFn}}}
	p.Function, p.Location = []*profile.Function{exitFn, chainFn}, []*profile.Location{exit, chain}
	labels := map[string][]string{profiler.LabelAgentType: {"device"}}
	for i := range roots {
		fn := &profile.Function{ID: uint64(i + 3), Name: "main.root" + strconv.Itoa(i)}
		loc := &profile.Location{ID: uint64(i + 3), Line: []profile.Line{{Function: fn}}}
		p.Function, p.Location = append(p.Function, fn), append(p.Location, loc)
		stack := make([]*profile.Location, 1025) // leaf first
		for j := range stack {
			stack[j] = chain
		}
		stack[1023], stack[1024] = loc, exit
		p.Sample = append(p.Sample, &profile.Sample{Location: stack, Value: []int64{1}, Label: labels})
	}
	err := profiler.WriteFlameGraph(io.Discard, p, profiler.FlameOptions{})
	if !errors.Is(err, profiler.ErrProfileTooLarge) || !strings.Contains(err.Error(), "MaxFlameNodes") {
		t.Errorf("%d labelled roots: %v, want ErrProfileTooLarge naming MaxFlameNodes", roots, err)
	}
}
