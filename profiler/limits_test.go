package profiler_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/profiler"
)

// allocated returns the bytes f allocates on the heap. The test's own
// goroutine is the only one allocating meanwhile, so the figure does not
// depend on timing.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// writeFile writes data to a file in a fresh directory and returns its path.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// encode returns p as a gzipped profile, as profile.Write makes it.
func encode(t *testing.T, p *profile.Profile) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gz returns data gzipped.
func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFlameGraphDeepStack renders a profile of a few kilobytes whose one
// sample has three million frames: it used to overflow the goroutine stack
// (a fatal error, not a panic) in a recursive walk, and a million frames
// took 1.3 GB. The stack is cut at MaxStackDepth, under a TruncatedFrame
// box that keeps the sample's values.
func TestFlameGraphDeepStack(t *testing.T) {
	// A small stack limit makes a recursion over the frames fail at once,
	// instead of after a gigabyte of stack.
	defer debug.SetMaxStack(debug.SetMaxStack(32 << 20))

	for _, depth := range []int{1_000_000, 3_000_000} {
		t.Run(strconv.Itoa(depth), func(t *testing.T) {
			data := encode(t, deepProfile(depth, 1))
			if len(data) > 16<<10 {
				t.Fatalf("the profile takes %d bytes, want a few KB", len(data))
			}
			p, err := profiler.ReadProfile(writeFile(t, "deep.pb.gz", data))
			if err != nil {
				t.Fatal(err)
			}
			var page bytes.Buffer
			if n := allocated(func() { err = profiler.WriteFlameGraph(&page, p, profiler.FlameOptions{}) }); n > 16<<20 {
				t.Errorf("WriteFlameGraph allocated %d MB for one sample of %d frames, want at most 16 MB", n>>20, depth)
			}
			if err != nil {
				t.Fatal(err)
			}
			d := readPage(t, page.String())
			// The root, MaxStackDepth frames, then the marker.
			if got, want := len(d.Parent), profiler.MaxStackDepth+2; got != want {
				t.Fatalf("%d nodes, want %d", got, want)
			}
			leaf := len(d.Parent) - 1
			if got := d.depth(leaf); got != profiler.MaxStackDepth+1 {
				t.Errorf("the deepest node is at depth %d, want %d", got, profiler.MaxStackDepth+1)
			}
			if got := d.Names[d.Name[leaf]]; got != profiler.TruncatedFrame {
				t.Errorf("the deepest node is %q, want %q", got, profiler.TruncatedFrame)
			}
			if got := d.self(leaf, 0); got != 7 {
				t.Errorf("the truncated box holds %d, want the sample's value 7", got)
			}
		})
	}
}

// deepProfile returns a profile of samples, each of depth frames of
// main.recurse under main.main, with the value 7.
func deepProfile(depth, samples int) *profile.Profile {
	fnMain := &profile.Function{ID: 1, Name: "main.main"}
	fnRec := &profile.Function{ID: 2, Name: "main.recurse"}
	locMain := &profile.Location{ID: 1, Address: 0x1000, Line: []profile.Line{{Function: fnMain}}}
	locRec := &profile.Location{ID: 2, Address: 0x2000, Line: []profile.Line{{Function: fnRec}}}
	stack := make([]*profile.Location, depth)
	for i := range stack {
		stack[i] = locRec
	}
	stack[depth-1] = locMain
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}},
		Function:   []*profile.Function{fnMain, fnRec},
		Location:   []*profile.Location{locMain, locRec},
	}
	for range samples {
		p.Sample = append(p.Sample, &profile.Sample{Location: stack, Value: []int64{7}})
	}
	return p
}

// TestFlameGraphNodeLimit checks that a call tree of more than
// MaxFlameNodes nodes is refused, and one of at most that many drawn.
func TestFlameGraphNodeLimit(t *testing.T) {
	// roots distinct roots, each with a chain of 1023 frames: 1 + roots*1024
	// nodes.
	build := func(roots int) *profile.Profile {
		p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}}}
		chainFn := &profile.Function{ID: 1, Name: "main.chain"}
		chain := &profile.Location{ID: 1, Line: []profile.Line{{Function: chainFn}}}
		p.Function, p.Location = []*profile.Function{chainFn}, []*profile.Location{chain}
		for i := range roots {
			fn := &profile.Function{ID: uint64(i + 2), Name: "main.root" + strconv.Itoa(i)}
			loc := &profile.Location{ID: uint64(i + 2), Line: []profile.Line{{Function: fn}}}
			p.Function, p.Location = append(p.Function, fn), append(p.Location, loc)
			stack := make([]*profile.Location, 1024)
			for j := range stack {
				stack[j] = chain
			}
			stack[1023] = loc
			p.Sample = append(p.Sample, &profile.Sample{Location: stack, Value: []int64{1}})
		}
		return p
	}
	over := (profiler.MaxFlameNodes-1)/1024 + 1
	err := profiler.WriteFlameGraph(io.Discard, build(over), profiler.FlameOptions{})
	if !errors.Is(err, profiler.ErrProfileTooLarge) || !strings.Contains(err.Error(), strconv.Itoa(profiler.MaxFlameNodes)) {
		t.Errorf("WriteFlameGraph of %d nodes: %v, want ErrProfileTooLarge naming MaxFlameNodes", 1+over*1024, err)
	}
	if err := profiler.WriteFlameGraph(io.Discard, build(over-1), profiler.FlameOptions{}); err != nil {
		t.Errorf("WriteFlameGraph of %d nodes: %v", 1+(over-1)*1024, err)
	}
}

// TestFlameGraphFrameLimit checks that samples holding more than
// MaxFlameFrames frames in all are refused, even on a small call tree, so
// that the time WriteFlameGraph takes is bounded too.
func TestFlameGraphFrameLimit(t *testing.T) {
	samples := profiler.MaxFlameFrames/profiler.MaxStackDepth + 1
	err := profiler.WriteFlameGraph(io.Discard, deepProfile(profiler.MaxStackDepth, samples), profiler.FlameOptions{})
	if !errors.Is(err, profiler.ErrProfileTooLarge) || !strings.Contains(err.Error(), strconv.Itoa(profiler.MaxFlameFrames)) {
		t.Errorf("WriteFlameGraph of %d samples of %d frames: %v, want ErrProfileTooLarge naming MaxFlameFrames", samples, profiler.MaxStackDepth, err)
	}
}

// TestReadProfileSizeLimit checks MaxProfileBytes on both sides, stored
// and decompressed: a gzip bomb of 1 MB that inflates to 1 GiB used to be
// read whole (a 4.7 MB one reached 2.7 GB of memory).
func TestReadProfileSizeLimit(t *testing.T) {
	// A valid profile of exactly MaxProfileBytes uncompressed, padded by a
	// comment, and the same with one byte more.
	exact := func(extra int) []byte {
		p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}}}
		size := func(n int) int {
			p.Comments = []string{strings.Repeat("x", n)}
			var buf bytes.Buffer
			if err := p.WriteUncompressed(&buf); err != nil {
				t.Fatal(err)
			}
			return buf.Len()
		}
		pad := profiler.MaxProfileBytes - (size(profiler.MaxProfileBytes-100) - (profiler.MaxProfileBytes - 100))
		if size(pad) != profiler.MaxProfileBytes {
			t.Fatalf("padding by %d makes %d bytes, want %d", pad, size(pad), profiler.MaxProfileBytes)
		}
		size(pad + extra)
		var buf bytes.Buffer
		if err := p.WriteUncompressed(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	atLimit, overLimit := exact(0), exact(1)
	if len(overLimit) != profiler.MaxProfileBytes+1 {
		t.Fatalf("the oversized profile has %d bytes", len(overLimit))
	}
	// 1024 gzip members of 1 MiB of zeros each: 1 GiB from about 1 MB.
	member := gz(t, make([]byte, 1<<20))
	bomb := bytes.Repeat(member, 1024)

	for _, c := range []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"at the limit.pprof", atLimit, nil, ""},
		{"at the limit.pb.gz", gz(t, atLimit), nil, ""},
		{"over the limit.pprof", overLimit, profiler.ErrProfileTooLarge, strconv.Itoa(profiler.MaxProfileBytes+1) + " bytes, more than " + strconv.Itoa(profiler.MaxProfileBytes)},
		{"over the limit.pb.gz", gz(t, overLimit), profiler.ErrProfileTooLarge, "decompress to more than " + strconv.Itoa(profiler.MaxProfileBytes)},
		{"bomb.pb.gz", bomb, profiler.ErrProfileTooLarge, strconv.Itoa(len(bomb)) + " bytes of gzip decompress to more than " + strconv.Itoa(profiler.MaxProfileBytes)},
		{"bomb in gzip.pb.gz", gz(t, bomb), profiler.ErrBadProfile, "gzip inside gzip"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, c.name, c.data)
			var p *profile.Profile
			var err error
			n := allocated(func() { p, err = profiler.ReadProfile(path) })
			if c.want == nil {
				if err != nil || len(p.Comments) != 1 {
					t.Fatalf("ReadProfile: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("ReadProfile: %v, want %v naming the file and saying %q", err, c.want, c.msg)
			}
			if n > 3*profiler.MaxProfileBytes {
				t.Errorf("ReadProfile allocated %d MB before refusing, want at most %d", n>>20, 3*profiler.MaxProfileBytes>>20)
			}
		})
	}
}

// TestFlameGraphRepeatedStrings checks that the page holds each string of
// the profile once: a profile naming its many sample types with one long
// string must not make the page grow with their product.
func TestFlameGraphRepeatedStrings(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	const types = 10_000
	p := deepProfile(2, 1)
	p.SampleType = nil
	p.Sample[0].Value = nil
	for range types {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: long, Unit: long})
		p.Sample[0].Value = append(p.Sample[0].Value, 1)
	}
	var page bytes.Buffer
	if err := profiler.WriteFlameGraph(&page, p, profiler.FlameOptions{}); err != nil {
		t.Fatal(err)
	}
	if page.Len() > 1<<20 {
		t.Errorf("the page takes %d MB for %d sample types named by one %d-byte string, want under 1 MB", page.Len()>>20, types, len(long))
	}
	if d := readPage(t, page.String()); len(d.SampleTypes) != types || d.Names[d.SampleTypes[types-1].Type] != long {
		t.Errorf("the page lost the sample types")
	}
}
