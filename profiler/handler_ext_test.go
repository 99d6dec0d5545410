package profiler_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/profiler"
)

// serve runs one GET of target (a path and a raw query, which may hold
// anything) through Handler with ctx and returns the recorder.
func serve(ctx context.Context, target string) *httptest.ResponseRecorder {
	path, query, _ := strings.Cut(target, "?")
	req := httptest.NewRequestWithContext(ctx, "GET", path, nil)
	req.URL.RawQuery = query
	rec := httptest.NewRecorder()
	profiler.Handler().ServeHTTP(rec, req)
	return rec
}

// cancelled returns a context that is already done: a request made with it
// is one whose client has left, so a capture it starts ends at once.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestHandlerRefusesBadParameters checks that every query parameter the
// handler reads is checked before anything is captured: a ?seconds of 1e9
// used to hold the CPU profiler (and so block every other capture) for 31
// years, and 1e300 overflowed time.Duration. Each request here is made by a
// client that has already left, so a handler that accepted the value would
// end its capture at once and answer something other than 400.
func TestHandlerRefusesBadParameters(t *testing.T) {
	captures := []struct {
		path string
		max  int
	}{
		{"/debug/pprof/profile", profiler.MaxCaptureSeconds},
		{"/debug/pprof/trace", profiler.MaxCaptureSeconds},
		{"/debug/pprof/heap", profiler.MaxCaptureSeconds},
		{"/debug/pprof/goroutine", profiler.MaxCaptureSeconds},
		{"/debug/fgprof", profiler.MaxCaptureSeconds},
		{"/debug/flamegraph", profiler.MaxFlameSeconds},
	}
	badSeconds := []string{
		"1e9", "1e300", "1e400", "0x1p400", "NaN", "nan", "Inf", "+Inf", "-Inf", "infinity",
		"-1", "0", "-0", "1e-30", "abc", "1s", "5,0", " 5",
	}
	type bad struct{ query, msg string }
	var cases []struct {
		path string
		bad
	}
	add := func(path string, bs ...bad) {
		for _, b := range bs {
			cases = append(cases, struct {
				path string
				bad
			}{path, b})
		}
	}
	for _, c := range captures {
		for _, s := range badSeconds {
			add(c.path, bad{"seconds=" + url.QueryEscape(s), fmt.Sprintf("invalid seconds %q", s)})
		}
		add(c.path,
			bad{fmt.Sprintf("seconds=%d.001", c.max), fmt.Sprintf("in (0, %d]", c.max)},
			bad{"seconds=1&seconds=2", "seconds is given 2 times"},
			bad{"seconds=%zz", "invalid query"},
		)
	}
	for _, name := range []string{"heap", "goroutine", "allocs"} {
		path := "/debug/pprof/" + name
		add(path,
			bad{"debug=3", `invalid debug "3": want 0 or 1 or 2`},
			bad{"debug=-1", `invalid debug "-1"`},
			bad{"debug=x", `invalid debug "x"`},
			bad{"debug=1&debug=1", "debug is given 2 times"},
			bad{"gc=2", `invalid gc "2": want 0 or 1`},
			bad{"gc=yes", `invalid gc "yes"`},
			bad{"seconds=1&debug=1", "incompatible"},
		)
	}
	add("/debug/flamegraph",
		bad{"type=wall", `invalid type "wall": want samples or cpu`},
		bad{"type=alloc_space", `invalid type "alloc_space"`},
		bad{"orientation=sideways", `invalid orientation "sideways": want flame or icicle`},
		bad{"orientation=icicle&orientation=flame", "orientation is given 2 times"},
	)
	add("/debug/fgprof", bad{"format=svg", `invalid format "svg": want pprof or folded`})
	add("/debug/pprof/threadcreate", bad{"seconds=1&debug=2", "incompatible"})

	for _, c := range cases {
		target := c.path + "?" + c.query
		rec := serve(cancelled(), target)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.msg) {
			t.Errorf("%s: %d %q, want 400 saying %q", target, rec.Code, rec.Body.String(), c.msg)
		}
		if ct := rec.Header().Get("Content-Type"); rec.Code == http.StatusBadRequest && ct != "text/plain; charset=utf-8" {
			t.Errorf("%s: content type %q for an error", target, ct)
		}
	}
}

// TestHandlerAcceptsDocumentedParameters checks the values the
// documentation gives, up to each maximum, and that a capture ends when its
// client leaves: every request here comes from a client that has left, so a
// capture that ignored it would take up to five minutes.
func TestHandlerAcceptsDocumentedParameters(t *testing.T) {
	for _, target := range []string{
		// The README's examples.
		"/debug/flamegraph?seconds=10",
		"/debug/pprof/profile?seconds=30",
		"/debug/fgprof?seconds=30",
		// The maximums, and the smallest values.
		fmt.Sprintf("/debug/pprof/profile?seconds=%d", profiler.MaxCaptureSeconds),
		fmt.Sprintf("/debug/pprof/trace?seconds=%d", profiler.MaxCaptureSeconds),
		fmt.Sprintf("/debug/pprof/heap?seconds=%d", profiler.MaxCaptureSeconds),
		fmt.Sprintf("/debug/fgprof?seconds=%d&format=folded", profiler.MaxCaptureSeconds),
		fmt.Sprintf("/debug/flamegraph?seconds=%d&type=samples&orientation=icicle", profiler.MaxFlameSeconds),
		"/debug/flamegraph?seconds=1e-9&type=cpu&orientation=flame",
		"/debug/pprof/profile?seconds=0.5",
		// Defaults: an absent or empty value.
		"/debug/pprof/profile",
		"/debug/pprof/trace?seconds=",
		"/debug/fgprof?format=pprof",
		"/debug/flamegraph",
		// Parameters the endpoint does not read are ignored.
		"/debug/pprof/profile?seconds=1&debug=9&unknown=x",
	} {
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- serve(cancelled(), target) }()
		select {
		case rec := <-done:
			if rec.Code == http.StatusBadRequest {
				t.Errorf("%s: 400 %q", target, rec.Body.String())
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s: the capture did not end within a minute of its client leaving", target)
		}
	}
	// Named profiles without a capture: their parameters, and their output.
	for _, c := range []struct{ target, prefix string }{
		{"/debug/pprof/goroutine?debug=1", "goroutine profile:"},
		{"/debug/pprof/goroutine?debug=2", "goroutine "},
		{"/debug/pprof/heap?debug=0&gc=1", "\x1f\x8b"},
		{"/debug/pprof/heap?gc=0", "\x1f\x8b"},
		{"/debug/pprof/cmdline?x=%zz", ""},
	} {
		rec := serve(context.Background(), c.target)
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), c.prefix) {
			t.Errorf("%s: %d %.60q, want 200 starting with %q", c.target, rec.Code, rec.Body.String(), c.prefix)
		}
	}
}

// TestDefaultServeMux checks what importing the package registers on
// http.DefaultServeMux: net/http/pprof's handlers, which its init
// registers (the package documentation warns of it), and nothing of this
// package's own.
func TestDefaultServeMux(t *testing.T) {
	for path, want := range map[string]bool{
		"/debug/pprof/": true, "/debug/pprof/profile": true,
		"/debug/fgprof": false, "/debug/flamegraph": false,
	} {
		_, pattern := http.DefaultServeMux.Handler(httptest.NewRequest("GET", path, nil))
		if got := pattern != ""; got != want {
			t.Errorf("http.DefaultServeMux serves %s: %v (pattern %q), want %v", path, got, pattern, want)
		}
	}
}

// TestHandlerEndpoints gets each endpoint the documentation lists and
// checks what it serves.
func TestHandlerEndpoints(t *testing.T) {
	busy := cpuProfileBusy(t)
	srv := httptest.NewServer(profiler.Handler())
	defer srv.Close()
	parses := func(t *testing.T, body []byte) *profile.Profile {
		t.Helper()
		p, err := profile.ParseData(body)
		if err != nil {
			t.Fatalf("the response is not a profile: %v", err)
		}
		return p
	}
	type check func(t *testing.T, resp *http.Response, body []byte)
	cpuCheck := func(c check) check {
		if busy { // go test -cpuprofile holds the CPU profiler
			return func(t *testing.T, resp *http.Response, body []byte) {
				if resp.StatusCode != http.StatusConflict {
					t.Errorf("status %d beside go test -cpuprofile, want 409", resp.StatusCode)
				}
			}
		}
		return func(t *testing.T, resp *http.Response, body []byte) {
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %.300q", resp.StatusCode, body)
			}
			c(t, resp, body)
		}
	}
	ok := func(c check) check {
		return func(t *testing.T, resp *http.Response, body []byte) {
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %.300q", resp.StatusCode, body)
			}
			c(t, resp, body)
		}
	}
	page := func(t *testing.T, resp *http.Response, body []byte) *page {
		t.Helper()
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Fatalf("content type %q, body %.200q", ct, body)
		}
		d := readPage(t, string(body))
		if !slices.Contains(d.Names, burnCPUName) || len(d.Groups) == 0 || d.Groups[0] != "hot" {
			t.Errorf("the live flame graph lacks %s under agent type hot: %q", burnCPUName, d.Groups)
		}
		return d
	}
	cases := []struct {
		path  string
		check check
	}{
		{"/debug/pprof/", ok(func(t *testing.T, _ *http.Response, body []byte) {
			for _, want := range []string{"heap", "goroutine", "allocs", "profile", "trace", "symbol", "cmdline"} {
				if !bytes.Contains(body, []byte(want)) {
					t.Errorf("the index does not mention %q", want)
				}
			}
		})},
		{"/debug/pprof/heap", ok(func(t *testing.T, _ *http.Response, body []byte) { parses(t, body) })},
		{"/debug/pprof/heap?gc=1&seconds=0.1", ok(func(t *testing.T, _ *http.Response, body []byte) {
			if p := parses(t, body); p.DurationNanos <= 0 {
				t.Errorf("a delta profile over %v", time.Duration(p.DurationNanos))
			}
		})},
		{"/debug/pprof/goroutine?debug=1", ok(func(t *testing.T, _ *http.Response, body []byte) {
			if !bytes.HasPrefix(body, []byte("goroutine profile:")) {
				t.Errorf("goroutine?debug=1 starts with %.40q", body)
			}
		})},
		{"/debug/pprof/goroutine?debug=2", ok(func(t *testing.T, _ *http.Response, body []byte) {
			if !bytes.Contains(body, []byte("[running]")) {
				t.Errorf("goroutine?debug=2 is no stack dump: %.80q", body)
			}
		})},
		{"/debug/pprof/nosuch", func(t *testing.T, resp *http.Response, _ []byte) {
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("status %d, want 404", resp.StatusCode)
			}
		}},
		{"/debug/pprof/cmdline", ok(func(t *testing.T, _ *http.Response, body []byte) {
			if string(body) != strings.Join(os.Args, "\x00") {
				t.Errorf("cmdline %q, want %q", body, os.Args)
			}
		})},
		{fmt.Sprintf("/debug/pprof/symbol?%#x", reflect.ValueOf(profiler.Start).Pointer()), ok(func(t *testing.T, _ *http.Response, body []byte) {
			if !bytes.Contains(body, []byte(" github.com/agentloop/agentloop/profiler.Start\n")) {
				t.Errorf("symbol: %q", body)
			}
		})},
		{"/debug/pprof/profile?seconds=0.3", cpuCheck(func(t *testing.T, _ *http.Response, body []byte) {
			if p := parses(t, body); !hasFrame(p, burnCPUName, "hot") {
				t.Errorf("the CPU profile has no labelled sample of %s", burnCPUName)
			}
		})},
		{"/debug/pprof/trace?seconds=0.1", ok(func(t *testing.T, _ *http.Response, body []byte) {
			if !bytes.HasPrefix(body, []byte("go 1.")) {
				t.Errorf("the trace starts with %.20q", body)
			}
		})},
		{"/debug/fgprof?seconds=0.3", ok(func(t *testing.T, _ *http.Response, body []byte) {
			if p := parses(t, body); p.PeriodType == nil || p.PeriodType.Type != "wallclock" || !hasFrame(p, burnCPUName, "") {
				t.Errorf("fgprof: period type %v, want wallclock with %s", p.PeriodType, burnCPUName)
			}
		})},
		{"/debug/fgprof?seconds=0.3&format=folded", ok(func(t *testing.T, _ *http.Response, body []byte) {
			if !bytes.Contains(body, []byte(burnCPUName+";")) {
				t.Errorf("folded stacks lack burnCPU: %.200q", body)
			}
		})},
		{"/debug/flamegraph?seconds=0.3&orientation=icicle", cpuCheck(func(t *testing.T, resp *http.Response, body []byte) {
			if d := page(t, resp, body); !d.Icicle || d.Names[d.SampleTypes[d.DefaultType].Type] != "cpu" || !strings.HasPrefix(d.Title, "CPU of ") {
				t.Errorf("icicle %v, first type %q, title %q", d.Icicle, d.Names[d.SampleTypes[d.DefaultType].Type], d.Title)
			}
		})},
		{"/debug/flamegraph?seconds=0.3&type=samples", cpuCheck(func(t *testing.T, resp *http.Response, body []byte) {
			if d := page(t, resp, body); d.Icicle || d.Names[d.SampleTypes[d.DefaultType].Type] != "samples" {
				t.Errorf("icicle %v, first type %q", d.Icicle, d.Names[d.SampleTypes[d.DefaultType].Type])
			}
		})},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.path, "/debug/"), func(t *testing.T) {
			// A CPU capture samples the CPU time the process gets: on a
			// busy machine 300ms may bring none. Such a capture is taken
			// again, longer, until it has samples (what is checked then
			// is unchanged): the test depends on the CPU work done, not
			// on the share of the machine.
			path := c.path
			for _, longer := range []string{"seconds=1", "seconds=3", "seconds=10"} {
				resp, body := capture(t, srv.URL+path)
				if !strings.Contains(path, "seconds=0.3") || !unsampled(resp, body) {
					c.check(t, resp, body)
					return
				}
				path = strings.Replace(c.path, "seconds=0.3", longer, 1)
			}
			t.Fatalf("%s: no CPU sample even over 10 s", c.path)
		})
	}
}

// capture fetches url while a labelled goroutine burns CPU.
func capture(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	stop := burn("hot") // so that captures have samples
	defer stop()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// unsampled reports whether a capture took no CPU sample of the burning
// goroutine: a flame graph saying so, or a profile without its frames.
func unsampled(resp *http.Response, body []byte) bool {
	if resp.StatusCode != http.StatusOK {
		return false // a status to check, not a capture to take again
	}
	if bytes.Contains(body, []byte("No CPU samples")) {
		return true
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		return false
	}
	p, err := profile.ParseData(body)
	return err == nil && !hasFrame(p, burnCPUName, "")
}

// TestHandlerCPUTurns checks that CPU captures take turns with the windows
// of a Profiler instead of failing, and that a CPU profile started
// elsewhere gets 409 Conflict.
func TestHandlerCPUTurns(t *testing.T) {
	if cpuProfileBusy(t) {
		return
	}
	// Windows back to back: the profiler holds the CPU profiler nearly all
	// the time.
	p, err := profiler.Start(profiler.Options{Sampling: 1, Window: profiler.MinWindow, Dir: t.TempDir(), Kinds: profiler.CPU})
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(context.Background(), "/debug/pprof/profile?seconds=0.1")
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("a capture beside a profiler: %d %q, want 200", rec.Code, rec.Body.String())
	}
	if _, err := profile.ParseData(rec.Body.Bytes()); err != nil {
		t.Fatal(err)
	}

	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatal(err)
	}
	defer pprof.StopCPUProfile()
	for path, msg := range map[string]string{
		"/debug/pprof/profile?seconds=0.1": "cpu profiling already in use", // net/http/pprof's words
		"/debug/flamegraph?seconds=0.1":    "already active",
	} {
		rec := serve(context.Background(), path)
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), msg) {
			t.Errorf("%s: %d %q, want 409 saying %q", path, rec.Code, rec.Body.String(), msg)
		}
	}
}
