package profiler_test

import (
	"encoding/json"
	"strings"
	"testing"
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
	Parent      []int32  `json:"parent"`
	Name        []int32  `json:"name"`
	Self        []int64  `json:"self"`
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
