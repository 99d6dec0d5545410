package profiler

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// TestHandlerDefaults checks the documented length of each capture
// without ?seconds, with captures that take no time.
func TestHandlerDefaults(t *testing.T) {
	for path, want := range map[string]time.Duration{
		"/debug/pprof/profile":       30 * time.Second,
		"/debug/pprof/trace":         time.Second,
		"/debug/fgprof":              30 * time.Second,
		"/debug/flamegraph":          DefaultFlameSeconds * time.Second,
		"/debug/flamegraph?seconds=": DefaultFlameSeconds * time.Second,
	} {
		var asked []time.Duration
		rec := httptest.NewRecorder()
		fakeServer(t, &asked).handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || len(asked) != 1 || asked[0] != want {
			t.Errorf("%s: %d, captured %v; want 200 after one capture of %v", path, rec.Code, asked, want)
		}
	}
	if DefaultFlameSeconds != 5 || MaxFlameSeconds != 60 {
		t.Errorf("the live flame graph takes %d s by default, at most %d; the documentation says 5 and 60", DefaultFlameSeconds, MaxFlameSeconds)
	}
}

// TestHandlerHandsPprofCheckedParameters checks what net/http/pprof's
// handlers are given: whole seconds, rounded up, for the CPU and delta
// profiles (Profile reads "0.5" as no value, that is 30 s), the trace's
// fraction as it is, and the URL's query alone, never a form in the body.
func TestHandlerHandsPprofCheckedParameters(t *testing.T) {
	for _, c := range []struct {
		method, target, body string
		want                 time.Duration
	}{
		{"GET", "/debug/pprof/profile?seconds=0.5", "", time.Second},
		{"GET", "/debug/pprof/profile?seconds=2.01", "", 3 * time.Second},
		{"GET", "/debug/pprof/heap?seconds=0.1", "", time.Second},
		{"GET", "/debug/pprof/trace?seconds=0.25", "", 250 * time.Millisecond},
		{"POST", "/debug/pprof/profile?seconds=1", "seconds=299", time.Second},
		{"POST", "/debug/pprof/profile", "seconds=299", 30 * time.Second},
		{"POST", "/debug/pprof/heap", "seconds=299", 0},
	} {
		var asked []time.Duration
		req := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		fakeServer(t, &asked).handler().ServeHTTP(rec, req)
		want := []time.Duration{c.want}
		if c.want == 0 {
			want = nil
		}
		if rec.Code != 200 || !slices.Equal(asked, want) {
			t.Errorf("%s %s with body %q: %d, captured %v; want 200 after %v", c.method, c.target, c.body, rec.Code, asked, want)
		}
	}
	// A symbol lookup reads at most 1 MiB of its body.
	rec := httptest.NewRecorder()
	body := strings.Repeat("0x1+", 1<<19) // 2 MiB
	Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/debug/pprof/symbol", strings.NewReader(body)))
	if !strings.Contains(rec.Body.String(), "request body too large") {
		t.Errorf("a symbol lookup of 2 MiB: %d %.200q, want it cut at 1 MiB", rec.Code, rec.Body.String())
	}
}

// TestHandlerWaitsForWindow checks that a capture waits for a profiler
// window instead of failing.
func TestHandlerWaitsForWindow(t *testing.T) {
	if !cpuProfilerFree(t) {
		return
	}
	reports := make(chan windowReport, 10)
	p, err := Start(Options{Sampling: 0.01, Window: 300 * time.Millisecond, Dir: t.TempDir(), Kinds: CPU,
		onWindow: func(r windowReport) { reports <- r }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	// The first window holds the CPU profile now.
	req := httptest.NewRequestWithContext(context.Background(), "GET", "/debug/pprof/profile?seconds=0.1", nil)
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if _, err := profile.ParseData(rec.Body.Bytes()); err != nil {
		t.Fatal(err)
	}
	if r := <-reports; r.taken != CPU || len(r.errs) > 0 {
		t.Errorf("the window took %v, errors %v", r.taken, r.errs)
	}
}
