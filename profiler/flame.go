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
// are left out until you zoom in. A box shows the function's ShortName; its
// title (the tooltip, and the line under the graph on hover) holds the full
// name and the samples. It offers click-to-zoom, search by regular
// expression (over full and short names) with the matched share of
// samples, a choice of sample type, a choice of agent type (from the
// LabelAgentType label values of the samples) and a flame/icicle toggle.
//
// The view of one agent type starts each stack at its handler: the
// runtime's and the engine's loop frames below it are hidden, and the
// samples of the type that ran no handler are one EngineFrame box; the
// "Show engine frames" checkbox shows the whole stacks. Beside the graph a
// table lists every agent type with its samples of the sample type shown,
// its share of all samples and its three frames with the most self samples
// (from the handlers up unless the engine's frames are shown); clicking a
// row shows that agent type.
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

// flameData is the page's data. Each call tree is stored in preorder with
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
	// Short[i] is the index in Names of the short form of Names[i] (see
	// ShortName); i itself when the name is already short.
	Short []int32 `json:"short"`
	// Parent[i] and Name[i] (an index in Names) describe node i; node 0 is
	// the root, whose parent is -1.
	Parent []int32 `json:"parent"`
	Name   []int32 `json:"name"`
	// Self holds the values of the samples ending at a node, flattened as
	// node, group, then one value per sample type.
	Self []int64 `json:"self"`
	// Lean is the call tree of the labelled samples alone, each stack cut
	// to start at its handler (see EngineFrame).
	Lean leanTree `json:"lean"`
}

// leanTree is a call tree in the layout of flameData's.
type leanTree struct {
	Parent []int32 `json:"parent"`
	Name   []int32 `json:"name"`
	Self   []int64 `json:"self"`
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

	// MaxFlameNodes bounds the number of nodes of the page's call trees
	// (distinct stack prefixes, plus the root, of the whole profile and of
	// its labelled samples cut at their handlers): a profile with more is
	// refused with ErrProfileTooLarge. A busy process's ten-minute CPU
	// profile has some tens of thousands.
	MaxFlameNodes = 1 << 20

	// MaxFlameFrames bounds the frames walked over all samples (each sample
	// counting at most MaxStackDepth+1): a profile with more is refused
	// with ErrProfileTooLarge. It bounds the time WriteFlameGraph takes.
	MaxFlameFrames = 1 << 24
)

// TruncatedFrame is the name of the box that stands for the frames of a
// stack beyond MaxStackDepth.
const TruncatedFrame = "[deeper frames truncated]"

// EngineFrame is the name of the box that, in the view of one agent type
// with the engine's frames hidden, holds the samples of that type that ran
// no handler: the loop's own work (draining its inbox, picking the next
// agent, parking) while the type's label was still set.
//
// In that view each labelled stack starts at its handler, the first frame
// from the root that belongs neither to the runtime nor to the engine's
// loop and dispatch: packages runtime, runtime/pprof, and engine, internal,
// scheduler, lifecycle, messaging and pool of this module, and the ants
// worker pool. The engine's frames a handler calls (Context.Send,
// Publish...) stay above it.
const EngineFrame = "[engine loop]"

// machineryPrefixes are the packages whose frames come before an agent's
// handler on a loop's stack: the runtime's scheduling and the engine's
// loop and dispatch.
var machineryPrefixes = []string{
	"runtime.",
	"runtime/pprof.",
	"github.com/agentloop/agentloop/engine.",
	"github.com/agentloop/agentloop/internal/",
	"github.com/agentloop/agentloop/scheduler.",
	"github.com/agentloop/agentloop/lifecycle.",
	"github.com/agentloop/agentloop/messaging.",
	"github.com/agentloop/agentloop/pool.",
	"github.com/panjf2000/ants/",
}

// isMachinery reports whether the frame named name is the runtime's or the
// engine's loop machinery.
func isMachinery(name string) bool {
	for _, p := range machineryPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// ShortName returns the name a flame graph box shows for the function
// named name: the import path before the package name is dropped and the
// type arguments of generic code are abbreviated, so that
//
//	github.com/agentloop/agentloop/engine.(*loop).run  becomes  engine.(*loop).run
//	example.com/m/pool.(*Pool[go.shape.int]).Get         becomes  pool.(*Pool[…]).Get
//
// A name that is not a Go symbol (an address, a name holding spaces or
// markup) is returned as it is. The full name is the box's title.
func ShortName(name string) string {
	s := abbreviateTypeArgs(name)
	// The import path ends at the last '/' before the name proper, which
	// starts at the first '(' or '[' (a method or type arguments).
	end := strings.IndexAny(s, "([")
	if end < 0 {
		end = len(s)
	}
	slash := strings.LastIndexByte(s[:end], '/')
	if slash < 0 || !isImportPath(s[:slash]) {
		return s
	}
	return s[slash+1:]
}

// isImportPath reports whether s could be an import path: letters, digits
// and ._~-/ only.
func isImportPath(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case r == '.', r == '_', r == '~', r == '-', r == '/':
		default:
			return false
		}
	}
	return true
}

// abbreviateTypeArgs replaces the contents of each outermost pair of
// brackets that follows an identifier and holds more than digits (type
// arguments, not an array length) with "…". Unbalanced brackets leave s as
// it is.
func abbreviateTypeArgs(s string) string {
	if !strings.Contains(s, "[") {
		return s
	}
	var b strings.Builder
	depth, open := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			if depth == 0 {
				open = i
			}
			depth++
			continue
		case ']':
			if depth == 0 {
				return s
			}
			if depth--; depth == 0 {
				inner := s[open+1 : i]
				if open == 0 || !isIdentByte(s[open-1]) || strings.Trim(inner, "0123456789") == "" {
					b.WriteString(s[open : i+1])
				} else {
					b.WriteString("[…]")
				}
			}
			continue
		}
		if depth == 0 {
			b.WriteByte(s[i])
		}
	}
	if depth != 0 {
		return s
	}
	return b.String()
}

// isIdentByte reports whether c can end a Go identifier.
func isIdentByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c >= 0x80
}

// edge names a node of the call tree by its parent and its name.
type edge struct{ parent, name int32 }

// selfKey names the values of one agent type (group) at one node.
type selfKey struct{ node, group int32 }

// selfEntry locates the values of a selfKey.
type selfEntry struct {
	selfKey
	at int // offset in the values
}

// treeBuilder builds a call tree: node i has parent[i] and name[i]; node 0
// is the root. nodes counts the nodes of every tree of the page, against
// MaxFlameNodes.
type treeBuilder struct {
	parent, name []int32
	index        map[edge]int32
	selfAt       map[selfKey]int // -> the entry's offset in vals
	selves       []selfEntry
	vals         []int64 // types values per entry
	types        int
	nodes        *int
}

func newTreeBuilder(root int32, types int, nodes *int) *treeBuilder {
	*nodes++
	return &treeBuilder{parent: []int32{-1}, name: []int32{root}, index: map[edge]int32{},
		selfAt: map[selfKey]int{}, types: types, nodes: nodes}
}

// child returns the node named name under parent, adding it if needed.
func (t *treeBuilder) child(parent, name int32) (int32, error) {
	e := edge{parent, name}
	if c, ok := t.index[e]; ok {
		return c, nil
	}
	if *t.nodes >= MaxFlameNodes {
		return 0, fmt.Errorf("%w: the call tree has more than %d nodes (MaxFlameNodes)", ErrProfileTooLarge, MaxFlameNodes)
	}
	*t.nodes++
	c := int32(len(t.parent))
	t.parent = append(t.parent, parent)
	t.name = append(t.name, name)
	t.index[e] = c
	return c, nil
}

// add adds a sample of group with values along path, from the root down.
func (t *treeBuilder) add(path []int32, group int32, values []int64) error {
	cur := int32(0)
	for _, name := range path {
		var err error
		if cur, err = t.child(cur, name); err != nil {
			return err
		}
	}
	key := selfKey{cur, group}
	at, ok := t.selfAt[key]
	if !ok {
		at = len(t.vals)
		t.selfAt[key] = at
		t.selves = append(t.selves, selfEntry{key, at})
		t.vals = append(t.vals, make([]int64, t.types)...)
	}
	for k, v := range values {
		if v > 0 { // negative values (diff profiles) cannot be drawn as widths
			t.vals[at+k] = addSaturating(t.vals[at+k], v)
		}
	}
	return nil
}

// finish numbers the nodes in preorder, children sorted by name, without
// recursion, and returns the tree in the page's layout.
func (t *treeBuilder) finish(names []string) (parent, name []int32, self []int64) {
	t.index, t.selfAt = nil, nil
	// kids[first[n]:first[n+1]] are the children of n.
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
	byName := func(a, b int32) int { return strings.Compare(names[t.name[a]], names[t.name[b]]) }
	for i := 0; i < n; i++ {
		slices.SortFunc(kids[first[i]:first[i+1]], byName)
	}
	pre := make([]int32, n) // node -> preorder number
	parent = make([]int32, 0, n)
	name = make([]int32, 0, n)
	todo := []int32{0}
	for len(todo) > 0 {
		c := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		pre[c] = int32(len(parent))
		if c == 0 {
			parent = append(parent, -1)
		} else {
			parent = append(parent, pre[t.parent[c]])
		}
		name = append(name, t.name[c])
		// Push in reverse so that the first child by name comes out first.
		ks := kids[first[c]:first[c+1]]
		for i := len(ks) - 1; i >= 0; i-- {
			todo = append(todo, ks[i])
		}
	}

	// The values, by node in preorder, then by group.
	slices.SortFunc(t.selves, func(a, b selfEntry) int {
		if a.node != b.node {
			return cmp.Compare(pre[a.node], pre[b.node])
		}
		return cmp.Compare(a.group, b.group)
	})
	self = make([]int64, 0, len(t.selves)*(2+t.types))
	for _, e := range t.selves {
		self = append(self, int64(pre[e.node]), int64(e.group))
		self = append(self, t.vals[e.at:e.at+t.types]...)
	}
	return parent, name, self
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

	// Build the trees, interning names.
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
	T := len(p.SampleType)
	var nodes int
	full := newTreeBuilder(intern("all"), T, &nodes)
	var lean *treeBuilder // made at the first labelled sample
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
	machinery := map[int32]bool{} // by name index
	truncated, engine := int32(-1), int32(-1)
	walked := 0
	path := make([]int32, 0, 64)
	for _, s := range p.Sample {
		path = path[:0]
		deeper := false
	stack:
		// Locations run from the leaf to the root.
		for i := len(s.Location) - 1; i >= 0; i-- {
			for _, name := range framesOf(s.Location[i]) {
				if len(path) == MaxStackDepth {
					deeper = true
					break stack
				}
				path = append(path, name)
			}
		}
		if deeper {
			if truncated < 0 {
				truncated = intern(TruncatedFrame)
			}
			path = append(path, truncated)
		}
		if walked += len(path); walked > MaxFlameFrames {
			return nil, fmt.Errorf("%w: the samples hold more than %d frames (MaxFlameFrames)", ErrProfileTooLarge, MaxFlameFrames)
		}
		g := agentType(s)
		if err := full.add(path, groupOf[g], s.Value); err != nil {
			return nil, err
		}
		if g == "" {
			continue
		}
		// The labelled stack from its handler on.
		h := 0
		for h < len(path) {
			m, ok := machinery[path[h]]
			if !ok {
				m = isMachinery(d.Names[path[h]])
				machinery[path[h]] = m
			}
			if !m {
				break
			}
			h++
		}
		handler := path[h:]
		if len(handler) == 0 {
			if engine < 0 {
				engine = intern(EngineFrame)
			}
			handler = append(path[:0], engine)
		}
		if lean == nil {
			lean = newTreeBuilder(0, T, &nodes)
		}
		if err := lean.add(handler, groupOf[g], s.Value); err != nil {
			return nil, err
		}
	}
	d.Parent, d.Name, d.Self = full.finish(d.Names)
	if lean != nil {
		d.Lean.Parent, d.Lean.Name, d.Lean.Self = lean.finish(d.Names)
	} else {
		d.Lean = leanTree{Parent: []int32{}, Name: []int32{}, Self: []int64{}}
	}

	// The short form of each name; short forms are names too.
	n := len(d.Names)
	d.Short = make([]int32, n, n+n/2)
	for i := range n {
		d.Short[i] = intern(ShortName(d.Names[i]))
	}
	for i := n; i < len(d.Names); i++ {
		d.Short = append(d.Short, int32(i))
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
