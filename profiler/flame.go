package profiler

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
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
// Its memory, time and page stay bounded whatever p holds: a stack deeper
// than MaxStackDepth frames is cut under one TruncatedFrame box, and a
// profile whose call tree exceeds MaxFlameNodes or whose samples exceed
// MaxFlameFrames is refused.
//
// It fails with ErrEmptyProfile if p is nil or has no samples, with
// ErrBadProfile if p is inconsistent, with ErrProfileTooLarge beyond the
// limits, and with ErrUnknownSampleType if opts.SampleType is not in p.
// Nothing is written to w when it fails.
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

// sampleType names a sample type and its unit by their indexes in Names, so
// that a profile repeating a long string in many sample types cannot make
// the page grow with their product.
type sampleType struct {
	Type int32 `json:"type"`
	Unit int32 `json:"unit"`
}

// Limits of WriteFlameGraph. They bound the memory and time it takes, and
// the size of the page, whatever the profile.
const (
	// MaxStackDepth is the number of frames of a stack, counted from the
	// root, that the flame graph shows. A deeper stack is truncated, not
	// refused: its first MaxStackDepth frames are kept and the rest are
	// folded into one TruncatedFrame box, which holds the sample's values.
	// The runtime's own profiles record at most 128 frames by default (and
	// at most 1024 with GODEBUG=profstackdepth), so only a recursion
	// profiled with a larger limit, or a crafted profile, reaches it.
	MaxStackDepth = 1024

	// MaxFlameNodes bounds the number of nodes of the call tree (distinct
	// stack prefixes, plus the root): a profile with more is refused with
	// ErrProfileTooLarge. A busy process's ten-minute CPU profile has some
	// tens of thousands.
	MaxFlameNodes = 1 << 20

	// MaxFlameFrames bounds the frames walked over all samples (each sample
	// counting at most MaxStackDepth+1): a profile with more is refused
	// with ErrProfileTooLarge. It bounds the time WriteFlameGraph takes.
	MaxFlameFrames = 1 << 24
)

// TruncatedFrame is the name of the box that stands for the frames of a
// stack beyond MaxStackDepth.
const TruncatedFrame = "[deeper frames truncated]"

// edge names a node of the call tree by its parent and its name.
type edge struct{ parent, name int32 }

// selfKey names the values of one agent type (group) at one node.
type selfKey struct{ node, group int32 }

// selfEntry locates the values of a selfKey.
type selfEntry struct {
	selfKey
	at int // offset in the values
}

// flameTree is the call tree while it is built: node i has parent[i] and
// name[i]; node 0 is the root.
type flameTree struct {
	parent, name []int32
	index        map[edge]int32
}

// child returns the node named name under parent, adding it if needed.
func (t *flameTree) child(parent, name int32) (int32, error) {
	e := edge{parent, name}
	if c, ok := t.index[e]; ok {
		return c, nil
	}
	if len(t.parent) >= MaxFlameNodes {
		return 0, fmt.Errorf("%w: the call tree has more than %d nodes (MaxFlameNodes)", ErrProfileTooLarge, MaxFlameNodes)
	}
	c := int32(len(t.parent))
	t.parent = append(t.parent, parent)
	t.name = append(t.name, name)
	t.index[e] = c
	return c, nil
}

// buildFlame turns p into the page's data. It recurses nowhere and keeps
// memory proportional to the profile, within the limits above.
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

	// Groups: the label values, sorted, with "" (unlabelled) last.
	groupOf := map[string]int32{}
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
		groupOf[g] = int32(i)
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
	t := &flameTree{parent: []int32{-1}, name: []int32{intern("all")}, index: map[edge]int32{}}
	for _, st := range p.SampleType {
		d.SampleTypes = append(d.SampleTypes, sampleType{Type: intern(st.Type), Unit: intern(st.Unit)})
	}
	// The frames of each location, root first: the lines of a location run
	// from the innermost inlined function to its caller.
	locFrames := map[*profile.Location][]int32{}
	framesOf := func(loc *profile.Location) []int32 {
		if f, ok := locFrames[loc]; ok {
			return f
		}
		var f []int32
		if len(loc.Line) == 0 {
			f = []int32{intern(fmt.Sprintf("0x%x", loc.Address))}
		} else {
			f = make([]int32, len(loc.Line))
			for j := range loc.Line {
				f[len(f)-1-j] = intern(frameName(loc, loc.Line[j]))
			}
		}
		locFrames[loc] = f
		return f
	}
	truncated := int32(-1)      // the name index of TruncatedFrame, once used
	selfAt := map[selfKey]int{} // -> the entry's offset in vals
	var selves []selfEntry
	var vals []int64 // len(p.SampleType) values per entry
	T := len(p.SampleType)
	walked := 0
	for _, s := range p.Sample {
		cur, depth := int32(0), 0
		deeper := false
	stack:
		// Locations run from the leaf to the root.
		for i := len(s.Location) - 1; i >= 0; i-- {
			for _, name := range framesOf(s.Location[i]) {
				if depth == MaxStackDepth {
					deeper = true
					break stack
				}
				if cur, err = t.child(cur, name); err != nil {
					return nil, err
				}
				depth++
			}
		}
		if deeper {
			if truncated < 0 {
				truncated = intern(TruncatedFrame)
			}
			if cur, err = t.child(cur, truncated); err != nil {
				return nil, err
			}
			depth++
		}
		if walked += depth; walked > MaxFlameFrames {
			return nil, fmt.Errorf("%w: the samples hold more than %d frames (MaxFlameFrames)", ErrProfileTooLarge, MaxFlameFrames)
		}
		key := selfKey{cur, groupOf[agentType(s)]}
		at, ok := selfAt[key]
		if !ok {
			at = len(vals)
			selfAt[key] = at
			selves = append(selves, selfEntry{key, at})
			vals = append(vals, make([]int64, T)...)
		}
		for k, v := range s.Value {
			if v > 0 { // negative values (diff profiles) cannot be drawn as widths
				vals[at+k] = addSaturating(vals[at+k], v)
			}
		}
	}
	t.index, selfAt = nil, nil // not needed from here on

	// Number the nodes in preorder, children sorted by name, without
	// recursion: kids[first[n]:first[n+1]] are the children of n.
	n := len(t.parent)
	first := make([]int32, n+1)
	for _, par := range t.parent[1:] {
		first[par+1]++
	}
	for i := 1; i <= n; i++ {
		first[i] += first[i-1]
	}
	kids := make([]int32, n-1)
	fill := slices.Clone(first[:n])
	for c := 1; c < n; c++ {
		par := t.parent[c]
		kids[fill[par]] = int32(c)
		fill[par]++
	}
	fill = nil
	byName := func(a, b int32) int { return strings.Compare(d.Names[t.name[a]], d.Names[t.name[b]]) }
	for i := 0; i < n; i++ {
		slices.SortFunc(kids[first[i]:first[i+1]], byName)
	}
	pre := make([]int32, n) // node -> preorder number
	d.Parent = make([]int32, 0, n)
	d.Name = make([]int32, 0, n)
	todo := []int32{0}
	for len(todo) > 0 {
		c := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		pre[c] = int32(len(d.Parent))
		if c == 0 {
			d.Parent = append(d.Parent, -1)
		} else {
			d.Parent = append(d.Parent, pre[t.parent[c]])
		}
		d.Name = append(d.Name, t.name[c])
		// Push in reverse so that the first child by name comes out first.
		ks := kids[first[c]:first[c+1]]
		for i := len(ks) - 1; i >= 0; i-- {
			todo = append(todo, ks[i])
		}
	}

	// The values, by node in preorder, then by group.
	slices.SortFunc(selves, func(a, b selfEntry) int {
		if a.node != b.node {
			return cmp.Compare(pre[a.node], pre[b.node])
		}
		return cmp.Compare(a.group, b.group)
	})
	d.Self = make([]int64, 0, len(selves)*(2+T))
	for _, e := range selves {
		d.Self = append(d.Self, int64(pre[e.node]), int64(e.group))
		d.Self = append(d.Self, vals[e.at:e.at+T]...)
	}
	return d, nil
}

// addSaturating returns a+b for b > 0, or math.MaxInt64 if that overflows.
func addSaturating(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
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
