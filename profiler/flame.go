package profiler

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

// Orientation is the direction in which a flame graph grows.
type Orientation int

const (
	// Flame puts the root at the bottom and callees above their callers.
	Flame Orientation = iota
	// Icicle puts the root at the top and callees below their callers.
	Icicle
)

// String returns "flame" or "icicle".
func (o Orientation) String() string {
	switch o {
	case Flame:
		return "flame"
	case Icicle:
		return "icicle"
	}
	return "Orientation(" + strconv.Itoa(int(o)) + ")"
}

// FlameOptions configure WriteFlameGraph. The zero value is ready to use.
type FlameOptions struct {
	// Title is shown at the top of the page; "Flame graph" if empty.
	Title string

	// SampleType selects the sample type shown first, by its name in the
	// profile ("cpu", "samples", "alloc_space"...). "wall" also names the
	// "time" type of a wall-clock (fgprof) profile. If empty, the profile's
	// default sample type is shown, or else its last one (cpu for a CPU
	// profile, time for a wall-clock one). The page can switch to the others.
	SampleType string

	// Orientation is the initial orientation; the page can flip it.
	Orientation Orientation
}

// WriteFlameGraph writes p as a self-contained HTML flame graph to w.
//
// The page needs no network: its script and style are inline (a
// Content-Security-Policy forbids fetching anything), and the profile is
// embedded as HTML-safe JSON, so function names are never interpreted as
// markup. It has one box per node of the call tree (a distinct stack prefix),
// as wide as the samples under it; boxes narrower than 1/10000 of the view
// are left out until you zoom in. It offers click-to-zoom, search by regular
// expression with the matched share of samples, a choice of sample type, a
// choice of agent type (from the LabelAgentType label values of the samples)
// and a flame/icicle toggle.
//
// It fails with ErrEmptyProfile if p is nil or has no samples, with
// ErrBadProfile if p is inconsistent, and with ErrUnknownSampleType if
// opts.SampleType is not in p.
func WriteFlameGraph(w io.Writer, p *profile.Profile, opts FlameOptions) error {
	data, err := buildFlame(p, opts)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(pageHead)
	// json.Encoder escapes <, > and & (and U+2028, U+2029) so the data
	// cannot close the script element or be read as markup.
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(data); err != nil {
		return fmt.Errorf("profiler: flame graph: %w", err)
	}
	bw.WriteString(pageTail)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("profiler: flame graph: %w", err)
	}
	return nil
}

// flameData is the page's data. The call tree is stored in preorder with
// each node's children sorted by name, so parents come before children.
type flameData struct {
	Title       string       `json:"title"`
	SampleTypes []sampleType `json:"sampleTypes"`
	DefaultType int          `json:"defaultType"`
	Icicle      bool         `json:"icicle"`
	LabelKey    string       `json:"labelKey"`
	// Groups are the LabelAgentType values; "" stands for samples without it.
	Groups []string `json:"groups"`
	Names  []string `json:"names"`
	// Parent[i] and Name[i] (an index in Names) describe node i; node 0 is
	// the root, whose parent is -1.
	Parent []int32 `json:"parent"`
	Name   []int32 `json:"name"`
	// Self holds the values of the samples ending at a node, flattened as
	// node, group, then one value per sample type.
	Self []int64 `json:"self"`
}

type sampleType struct {
	Type string `json:"type"`
	Unit string `json:"unit"`
}

// flameNode is a node of the call tree while it is built.
type flameNode struct {
	name     int32
	children map[int32]int // name -> index in nodes
	self     map[int][]int64
}

// buildFlame turns p into the page's data.
func buildFlame(p *profile.Profile, opts FlameOptions) (*flameData, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil profile", ErrEmptyProfile)
	}
	if len(p.Sample) == 0 {
		return nil, fmt.Errorf("%w: the profile has no samples", ErrEmptyProfile)
	}
	if len(p.SampleType) == 0 {
		return nil, fmt.Errorf("%w: the profile has no sample types", ErrBadProfile)
	}
	if err := p.CheckValid(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadProfile, err)
	}
	def, err := pickSampleType(p, opts.SampleType)
	if err != nil {
		return nil, err
	}

	d := &flameData{
		Title:       opts.Title,
		DefaultType: def,
		Icicle:      opts.Orientation == Icicle,
		LabelKey:    LabelAgentType,
	}
	if d.Title == "" {
		d.Title = "Flame graph"
	}
	for _, st := range p.SampleType {
		d.SampleTypes = append(d.SampleTypes, sampleType{Type: st.Type, Unit: st.Unit})
	}

	// Groups: the label values, sorted, with "" (unlabelled) last.
	groupOf := map[string]int{}
	for _, s := range p.Sample {
		groupOf[agentType(s)] = 0
	}
	for g := range groupOf {
		d.Groups = append(d.Groups, g)
	}
	slices.SortFunc(d.Groups, func(a, b string) int {
		if (a == "") != (b == "") {
			if a == "" {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	for i, g := range d.Groups {
		groupOf[g] = i
	}

	// Build the tree, interning names.
	nameIdx := map[string]int32{}
	intern := func(s string) int32 {
		i, ok := nameIdx[s]
		if !ok {
			i = int32(len(d.Names))
			nameIdx[s] = i
			d.Names = append(d.Names, s)
		}
		return i
	}
	nodes := []*flameNode{{name: intern("all")}}
	child := func(parent int, name int32) int {
		n := nodes[parent]
		if i, ok := n.children[name]; ok {
			return i
		}
		if n.children == nil {
			n.children = map[int32]int{}
		}
		nodes = append(nodes, &flameNode{name: name})
		n.children[name] = len(nodes) - 1
		return len(nodes) - 1
	}
	for _, s := range p.Sample {
		cur := 0
		// Locations run from the leaf to the root; the lines of a location
		// from the innermost inlined function to its caller.
		for i := len(s.Location) - 1; i >= 0; i-- {
			loc := s.Location[i]
			if len(loc.Line) == 0 {
				cur = child(cur, intern(fmt.Sprintf("0x%x", loc.Address)))
				continue
			}
			for j := len(loc.Line) - 1; j >= 0; j-- {
				cur = child(cur, intern(frameName(loc, loc.Line[j])))
			}
		}
		n := nodes[cur]
		if n.self == nil {
			n.self = map[int][]int64{}
		}
		g := groupOf[agentType(s)]
		vals := n.self[g]
		if vals == nil {
			vals = make([]int64, len(p.SampleType))
			n.self[g] = vals
		}
		for t, v := range s.Value {
			if v > 0 { // negative values (diff profiles) cannot be drawn as widths
				vals[t] += v
			}
		}
	}

	// Emit the nodes in preorder, children sorted by name.
	var emit func(n, parent int)
	emit = func(n, parent int) {
		id := int32(len(d.Parent))
		node := nodes[n]
		d.Parent = append(d.Parent, int32(parent))
		d.Name = append(d.Name, node.name)
		groups := make([]int, 0, len(node.self))
		for g := range node.self {
			groups = append(groups, g)
		}
		slices.Sort(groups)
		for _, g := range groups {
			d.Self = append(d.Self, int64(id), int64(g))
			d.Self = append(d.Self, node.self[g]...)
		}
		kids := make([]int, 0, len(node.children))
		for _, k := range node.children {
			kids = append(kids, k)
		}
		slices.SortFunc(kids, func(a, b int) int {
			return strings.Compare(d.Names[nodes[a].name], d.Names[nodes[b].name])
		})
		for _, k := range kids {
			emit(k, int(id))
		}
	}
	emit(0, -1)
	return d, nil
}

// frameName names the function of a line, or its address if it has none.
func frameName(loc *profile.Location, ln profile.Line) string {
	if f := ln.Function; f != nil {
		if f.Name != "" {
			return f.Name
		}
		if f.SystemName != "" {
			return f.SystemName
		}
	}
	return fmt.Sprintf("0x%x", loc.Address)
}

// agentType returns the sample's LabelAgentType value, or "".
func agentType(s *profile.Sample) string {
	if v := s.Label[LabelAgentType]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// pickSampleType returns the index of the sample type to show first.
func pickSampleType(p *profile.Profile, name string) (int, error) {
	find := func(name string) int {
		return slices.IndexFunc(p.SampleType, func(st *profile.ValueType) bool { return st.Type == name })
	}
	if name == "" {
		if i := find(p.DefaultSampleType); p.DefaultSampleType != "" && i >= 0 {
			return i, nil
		}
		return len(p.SampleType) - 1, nil
	}
	if i := find(name); i >= 0 {
		return i, nil
	}
	if name == "wall" && p.PeriodType != nil && p.PeriodType.Type == "wallclock" {
		if i := find("time"); i >= 0 {
			return i, nil
		}
	}
	var have []string
	for _, st := range p.SampleType {
		have = append(have, st.Type)
	}
	return 0, fmt.Errorf("%w %q: the profile has %s", ErrUnknownSampleType, name, strings.Join(have, ", "))
}
