package profiler

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	httppprof "net/http/pprof"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/felixge/fgprof"
	"github.com/google/pprof/profile"
)

// encodeProfile returns p gzipped (compressed) or not.
func encodeProfile(t testing.TB, p *profile.Profile, compressed bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	write := p.WriteUncompressed
	if compressed {
		write = p.Write
	}
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzWriteFlameGraph feeds any bytes, as a file would hold them, to the
// reader and the flame graph: each input gives a sentinel error or a page,
// never a panic, within the package's limits.
func FuzzWriteFlameGraph(f *testing.F) {
	f.Add(encodeProfile(f, synthProfile(), true))
	f.Add(encodeProfile(f, synthProfile(), false))
	deep := synthProfile()
	for range 12 {
		deep.Sample[0].Location = append(deep.Sample[0].Location, deep.Sample[0].Location...)
	}
	f.Add(encodeProfile(f, deep, true))
	f.Add([]byte("heap profile: 1: 2 [3: 4] @ heap/1048576\n1: 2 [3: 4] @ 0x1 0x2 0x3\n"))
	f.Add([]byte("--- contention:\ncycles/second=1000\n10 20 @ 0x1 0x2\n"))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte{})
	f.Add([]byte("not a profile"))
	var nested bytes.Buffer
	zw := gzip.NewWriter(&nested)
	zw.Write(encodeProfile(f, synthProfile(), true))
	zw.Close()
	f.Add(nested.Bytes())

	sentinels := []error{ErrEmptyProfile, ErrBadProfile, ErrProfileTooLarge}
	isSentinel := func(err error) bool {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return true
			}
		}
		return false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseProfile(data, "input")
		if err != nil {
			if !isSentinel(err) || !strings.Contains(err.Error(), "input") {
				t.Fatalf("parseProfile: %v, want a sentinel error naming the input", err)
			}
			return
		}
		raw := len(data)
		if bytes.HasPrefix(data, gzipMagic) {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("parseProfile accepted a gzip stream that does not open: %v", err)
			}
			n, _ := io.Copy(io.Discard, io.LimitReader(zr, MaxProfileBytes+1))
			raw = int(n)
		}
		if raw > MaxProfileBytes {
			t.Fatalf("parseProfile accepted %d bytes, more than MaxProfileBytes", raw)
		}
		for _, opts := range []FlameOptions{{}, {SampleType: "wall", Orientation: Icicle}} {
			var page bytes.Buffer
			err := WriteFlameGraph(&page, p, opts)
			if err != nil {
				if !isSentinel(err) && !errors.Is(err, ErrUnknownSampleType) {
					t.Fatalf("WriteFlameGraph: %v, want a sentinel error", err)
				}
				if page.Len() != 0 {
					t.Fatalf("WriteFlameGraph wrote %d bytes and failed", page.Len())
				}
				continue
			}
			d := flameJSON(t, page.String())
			if len(d.Parent) > MaxFlameNodes || len(d.Parent) != len(d.Name) {
				t.Fatalf("%d nodes and %d names, want as many, at most %d", len(d.Parent), len(d.Name), MaxFlameNodes)
			}
			for n, par := range d.Parent {
				if n > 0 && (par < 0 || int(par) >= n) || int(d.Name[n]) >= len(d.Names) {
					t.Fatalf("node %d: parent %d, name %d of %d: not a tree in preorder", n, par, d.Name[n], len(d.Names))
				}
			}
			// Every string on the page comes from the input at most once
			// (escaped, at most 6 bytes a byte), every number from some
			// bytes of it; addresses get a name of up to 18 bytes.
			if limit := len(pageHead) + len(pageTail) + 1024 + 128*raw + 32*len(d.Parent); page.Len() > limit {
				t.Fatalf("a page of %d bytes from %d bytes of profile, want at most %d", page.Len(), raw, limit)
			}
		}
	})
}

// fakeServer returns a server whose captures take no time: they record the
// durations asked for and write canned data. Its stand-ins for
// net/http/pprof's capturing handlers read the request as those do
// (r.FormValue, whole seconds for the CPU and delta profiles, defaults for
// a missing or bad value) and fail the test if the request holds more than
// the checked parameters or a body to parse.
func fakeServer(t *testing.T, asked *[]time.Duration) server {
	cpu := encodeProfile(t, synthProfile(), true)
	checked := func(r *http.Request) {
		if r.Form == nil || len(r.PostForm) != 0 || r.Body != http.NoBody {
			t.Errorf("%s reached net/http/pprof with form %v, post form %v, body %v", r.URL, r.Form, r.PostForm, r.Body)
		}
	}
	return server{
		cpu: func(_ context.Context, w io.Writer, d time.Duration) error {
			*asked = append(*asked, d)
			_, err := w.Write(cpu)
			return err
		},
		wall: func(_ context.Context, w io.Writer, d time.Duration, format fgprof.Format) error {
			*asked = append(*asked, d)
			if format != fgprof.FormatPprof && format != fgprof.FormatFolded {
				t.Errorf("wall capture in format %q", format)
			}
			_, err := w.Write(cpu)
			return err
		},
		profile: func(w http.ResponseWriter, r *http.Request) {
			checked(r)
			sec, err := strconv.ParseInt(r.FormValue("seconds"), 10, 64)
			if sec <= 0 || err != nil {
				sec = 30
			}
			*asked = append(*asked, time.Duration(sec)*time.Second)
			w.Write(cpu)
		},
		trace: func(w http.ResponseWriter, r *http.Request) {
			checked(r)
			sec, err := strconv.ParseFloat(r.FormValue("seconds"), 64)
			if sec <= 0 || err != nil {
				sec = 1
			}
			*asked = append(*asked, time.Duration(sec*float64(time.Second)))
			io.WriteString(w, "go 1.26 trace\x00\x00\x00")
		},
		named: func(name string) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				checked(r)
				if pprof.Lookup(name) == nil {
					http.Error(w, "Unknown profile", http.StatusNotFound)
					return
				}
				if sec := r.FormValue("seconds"); sec != "" {
					n, err := strconv.ParseInt(sec, 10, 64)
					if err != nil || n <= 0 {
						http.Error(w, `invalid value for "seconds" - must be a positive integer`, http.StatusBadRequest)
						return
					}
					*asked = append(*asked, time.Duration(n)*time.Second)
				}
				io.WriteString(w, name)
			})
		},
		index:   httppprof.Index,
		symbol:  httppprof.Symbol,
		cmdline: httppprof.Cmdline,
	}
}

// fuzzPaths are the endpoints FuzzHandlerQuery sends queries to.
var fuzzPaths = []string{
	"/debug/pprof/", "/debug/pprof/profile", "/debug/pprof/trace", "/debug/pprof/symbol",
	"/debug/pprof/cmdline", "/debug/pprof/heap", "/debug/pprof/goroutine", "/debug/pprof/allocs",
	"/debug/pprof/threadcreate", "/debug/pprof/block", "/debug/pprof/mutex", "/debug/pprof/nosuch",
	"/debug/fgprof", "/debug/flamegraph",
}

// FuzzHandlerQuery sends any query string to each endpoint of the handler,
// with captures that take no time: the answer is 2xx or 4xx, never a panic,
// a capture is never longer than the endpoint's maximum, and a request
// refused with 400 has captured nothing.
func FuzzHandlerQuery(f *testing.F) {
	for i, q := range []string{
		"", "seconds=1", "seconds=0.5&type=samples&orientation=icicle", "seconds=1e9", "seconds=1e300",
		"seconds=NaN", "seconds=-Inf", "seconds=%2BInf", "seconds=0x1p400", "seconds=1&seconds=2",
		"debug=1", "debug=2", "gc=1", "seconds=1&debug=1", "format=folded", "format=svg",
		"seconds=%zz", "0x4a0b00+0x4a0c00", "type=wall", "orientation=sideways", "seconds=300", "seconds=60.0001",
	} {
		f.Add(uint8(i), q)
	}
	f.Fuzz(func(t *testing.T, which uint8, query string) {
		path := fuzzPaths[int(which)%len(fuzzPaths)]
		var asked []time.Duration
		req := httptest.NewRequest("GET", path, nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		fakeServer(t, &asked).handler().ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code >= 500 || rec.Code >= 300 && rec.Code < 400 {
			t.Fatalf("%s?%s: status %d %q, want 2xx or 4xx", path, query, rec.Code, rec.Body.String())
		}
		limit := time.Duration(MaxCaptureSeconds) * time.Second
		if path == "/debug/flamegraph" {
			limit = MaxFlameSeconds * time.Second
		}
		for _, d := range asked {
			if d <= 0 || d > limit {
				t.Fatalf("%s?%s: a capture of %v, want one in (0, %v]", path, query, d, limit)
			}
		}
		if rec.Code == http.StatusBadRequest && (len(asked) > 0 || rec.Body.Len() == 0) {
			t.Fatalf("%s?%s: 400 %q after %d captures, want a message and none", path, query, rec.Body.String(), len(asked))
		}
	})
}

// FuzzShortName checks that ShortName takes any string without panicking,
// never adds more than "[…]" per bracket, and that a short name is its own
// short name.
func FuzzShortName(f *testing.F) {
	for _, s := range []string{
		"github.com/agentloop/agentloop/engine.(*loop).run",
		"example.com/m/pool.(*Pool[go.shape.int,go.shape.string]).Get",
		"x.F[go.shape.*example.com/m/y.T[go.shape.int]]", "type:.eq.[8]int", "[]", "a[", "]a", "/", "a/", "/.F",
		"gopkg.in/yaml.v3.(*parser).parse", evilName, "\xff/\xfe.F[\xfd]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s := ShortName(name)
		if len(s) > len(name)+2*strings.Count(name, "[") {
			t.Fatalf("ShortName(%q) = %q, longer than the name allows", name, s)
		}
		if again := ShortName(s); again != s {
			t.Fatalf("ShortName(%q) = %q, whose short name is %q", name, s, again)
		}
	})
}
