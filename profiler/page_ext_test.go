package profiler_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/profiler"
)

// page is the data a flame graph page embeds, as its script reads it.
type page struct {
	Title string `json:"title"`
	// SampleTypes name a type and its unit by index in Names.
	SampleTypes []struct {
		Type int32 `json:"type"`
		Unit int32 `json:"unit"`
	} `json:"sampleTypes"`
	DefaultType int      `json:"defaultType"`
	Icicle      bool     `json:"icicle"`
	LabelKey    string   `json:"labelKey"`
	Groups      []string `json:"groups"`
	Names       []string `json:"names"`
	Short       []int32  `json:"short"`
	Parent      []int32  `json:"parent"`
	Name        []int32  `json:"name"`
	Self        []int64  `json:"self"`
	// Lean is the tree of the labelled samples from their handlers up.
	Lean struct {
		Parent []int32 `json:"parent"`
		Name   []int32 `json:"name"`
		Self   []int64 `json:"self"`
	} `json:"lean"`
}

// lean returns the tree of the labelled samples from their handlers up,
// as a page of its own.
func (d *page) lean() *page {
	l := *d
	l.Parent, l.Name, l.Self = d.Lean.Parent, d.Lean.Name, d.Lean.Self
	return &l
}

const dataOpen = `<script type="application/json" id="flamedata">`

// readPage returns the data block of a flame graph page.
func readPage(t *testing.T, html string) *page {
	t.Helper()
	start := strings.Index(html, dataOpen)
	end := strings.Index(html, "</script>")
	if start < 0 || end < start {
		t.Fatal("no data block in the page")
	}
	var d page
	if err := json.Unmarshal([]byte(html[start+len(dataOpen):end]), &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

// depth returns the depth of node n, the root's being 0.
func (d *page) depth(n int) int {
	k := 0
	for ; d.Parent[n] >= 0; n = int(d.Parent[n]) {
		k++
	}
	return k
}

// self returns the value of sample type typ of the samples that end at node
// n, all groups together.
func (d *page) self(n, typ int) int64 {
	stride := 2 + len(d.SampleTypes)
	var sum int64
	for k := 0; k+stride <= len(d.Self); k += stride {
		if d.Self[k] == int64(n) {
			sum += d.Self[k+2+typ]
		}
	}
	return sum
}

// total returns the value of sample type typ of the samples under node n,
// n included, for the agent type group (-1 for all).
func (d *page) total(n, typ, group int) int64 {
	stride := 2 + len(d.SampleTypes)
	var sum int64
	for k := 0; k+stride <= len(d.Self); k += stride {
		if group >= 0 && d.Self[k+1] != int64(group) {
			continue
		}
		for a := int(d.Self[k]); a >= 0; a = int(d.Parent[a]) {
			if a == n {
				sum += d.Self[k+2+typ]
				break
			}
		}
	}
	return sum
}

// path returns the names from the root's child down to node n.
func (d *page) path(n int) []string {
	var names []string
	for ; n > 0; n = int(d.Parent[n]) {
		names = append([]string{d.Names[d.Name[n]]}, names...)
	}
	return names
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
