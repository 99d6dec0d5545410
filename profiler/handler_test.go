package profiler

import (
	"context"
	"net/http/httptest"
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
