package profiler

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

func TestBuildFlameTree(t *testing.T) {
	d, err := buildFlame(synthProfile(), FlameOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(d.Parent), synthNodes(""); got != want {
		t.Errorf("%d nodes, want %d (one per stack prefix, plus the root)", got, want)
	}
	if d.Parent[0] != -1 {
		t.Errorf("root parent %d, want -1", d.Parent[0])
	}
	for i := 1; i < len(d.Parent); i++ {
		if p := d.Parent[i]; p < 0 || int(p) >= i {
			t.Fatalf("node %d has parent %d: not in preorder", i, p)
		}
	}
	if want := []string{"cold", "hot", ""}; !slices.Equal(d.Groups, want) {
		t.Errorf("groups %q, want %q", d.Groups, want)
	}
	if d.DefaultType != 1 || d.Title != "Flame graph" || d.Icicle {
		t.Errorf("default type %d, title %q, icicle %v; want 1 (cpu), Flame graph, false", d.DefaultType, d.Title, d.Icicle)
	}
	// The self values add up to the profile's totals, per type.
	var sum [2]int64
	for k := 0; k < len(d.Self); k += 4 {
		sum[0] += d.Self[k+2]
		sum[1] += d.Self[k+3]
	}
	var want int64
	for _, s := range synthSamples {
		want += s.count
	}
	if sum[0] != want || sum[1] != want*10_000_000 {
		t.Errorf("self values sum to %v, want [%d %d]", sum, want, want*10_000_000)
	}
	// The inlined frame sits under main.work.
	var inlined int
	for i, n := range d.Name {
		if d.Names[n] == "main.inlined" {
			inlined = i
		}
	}
	if inlined == 0 || d.Names[d.Name[d.Parent[inlined]]] != "main.work" {
		t.Errorf("main.inlined is not a child of main.work")
	}
}

func TestPickSampleType(t *testing.T) {
	vt := func(types ...string) []*profile.ValueType {
		var out []*profile.ValueType
		for _, s := range types {
			out = append(out, &profile.ValueType{Type: s, Unit: "count"})
		}
		return out
	}
	wall := &profile.ValueType{Type: "wallclock", Unit: "nanoseconds"}
	cases := []struct {
		name   string
		p      *profile.Profile
		choose string
		want   int
		err    error
	}{
		{"last by default", &profile.Profile{SampleType: vt("samples", "cpu")}, "", 1, nil},
		{"profile default", &profile.Profile{SampleType: vt("alloc_space", "inuse_space"), DefaultSampleType: "alloc_space"}, "", 0, nil},
		{"by name", &profile.Profile{SampleType: vt("samples", "cpu")}, "samples", 0, nil},
		{"wall alias", &profile.Profile{SampleType: vt("samples", "time"), PeriodType: wall}, "wall", 1, nil},
		{"wall alias needs wallclock", &profile.Profile{SampleType: vt("samples", "time")}, "wall", 0, ErrUnknownSampleType},
		{"unknown", &profile.Profile{SampleType: vt("samples", "cpu")}, "bogus", 0, ErrUnknownSampleType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pickSampleType(c.p, c.choose)
			if !errors.Is(err, c.err) || (err == nil && got != c.want) {
				t.Errorf("pickSampleType(%q) = %d, %v; want %d, %v", c.choose, got, err, c.want, c.err)
			}
		})
	}
}

// flameJSON extracts the data block of a page.
func flameJSON(t *testing.T, page string) *flameData {
	t.Helper()
	start := strings.Index(page, `<script type="application/json" id="flamedata">`)
	end := strings.Index(page, "</script>")
	if start < 0 || end < start {
		t.Fatal("no data block in the page")
	}
	var d flameData
	if err := json.Unmarshal([]byte(page[start+len(`<script type="application/json" id="flamedata">`):end]), &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func TestWriteFlameGraphEscapesNames(t *testing.T) {
	var buf bytes.Buffer
	title := `<b>"title"</b>`
	if err := WriteFlameGraph(&buf, synthProfile(), FlameOptions{Title: title, Orientation: Icicle}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{evilName, "<img", "<b>", "onerror=\""} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q unescaped", bad)
		}
	}
	if n := strings.Count(page, "</script>"); n != 2 {
		t.Errorf("%d </script> in the page, want 2 (data and code)", n)
	}
	for _, remote := range []string{"http://", "https://", "@import", "url("} {
		if strings.Contains(page, remote) {
			t.Errorf("the page refers to %q: it must not fetch anything", remote)
		}
	}
	d := flameJSON(t, page)
	if !slices.Contains(d.Names, evilName) || d.Title != title || !d.Icicle {
		t.Errorf("the data lost the name, title %q or orientation %v", d.Title, d.Icicle)
	}
}

func TestWriteFlameGraphRefuses(t *testing.T) {
	mismatched := synthProfile()
	mismatched.Sample[0].Value = []int64{1}
	noTypes := synthProfile()
	noTypes.SampleType = nil
	cases := []struct {
		name string
		p    *profile.Profile
		opts FlameOptions
		want error
		msg  string
	}{
		{"nil", nil, FlameOptions{}, ErrEmptyProfile, "nil profile"},
		{"no samples", &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu"}}}, FlameOptions{}, ErrEmptyProfile, "no samples"},
		{"no sample types", noTypes, FlameOptions{}, ErrBadProfile, "no sample types"},
		{"inconsistent", mismatched, FlameOptions{}, ErrBadProfile, "sample"},
		{"unknown type", synthProfile(), FlameOptions{SampleType: "alloc_space"}, ErrUnknownSampleType, "samples, cpu"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteFlameGraph(&buf, c.p, c.opts)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("WriteFlameGraph: %v, want %v mentioning %q", err, c.want, c.msg)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes on error", buf.Len())
			}
		})
	}
}
