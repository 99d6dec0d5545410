package profiler

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// TestNothingOnDefaultServeMux checks that importing the package serves
// nothing by itself, unlike importing net/http/pprof.
func TestNothingOnDefaultServeMux(t *testing.T) {
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/profile", "/debug/fgprof", "/debug/flamegraph"} {
		if _, pattern := http.DefaultServeMux.Handler(httptest.NewRequest("GET", path, nil)); pattern != "" {
			t.Errorf("http.DefaultServeMux serves %s (pattern %q)", path, pattern)
		}
	}
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
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

func TestHandler(t *testing.T) {
	if !cpuProfilerFree(t) {
		return
	}
	srv := httptest.NewServer(Handler())
	defer srv.Close()

	parses := func(t *testing.T, body []byte) *profile.Profile {
		t.Helper()
		p, err := profile.ParseData(body)
		if err != nil {
			t.Fatalf("the response is not a profile: %v", err)
		}
		return p
	}
	cases := []struct {
		path   string
		status int
		check  func(t *testing.T, resp *http.Response, body []byte)
	}{
		{"/debug/pprof/", 200, func(t *testing.T, _ *http.Response, body []byte) {
			for _, want := range []string{"heap", "goroutine", "profile", "trace", "../flamegraph"} {
				if !bytes.Contains(body, []byte(want)) {
					t.Errorf("the index does not mention %q", want)
				}
			}
		}},
		{"/debug/pprof/heap", 200, func(t *testing.T, _ *http.Response, body []byte) { parses(t, body) }},
		{"/debug/pprof/heap?gc=1&seconds=0.1", 200, func(t *testing.T, _ *http.Response, body []byte) { parses(t, body) }},
		{"/debug/pprof/goroutine?debug=1", 200, func(t *testing.T, _ *http.Response, body []byte) {
			if !bytes.HasPrefix(body, []byte("goroutine profile:")) {
				t.Errorf("goroutine?debug=1 starts with %.40q", body)
			}
		}},
		{"/debug/pprof/goroutine?seconds=1&debug=1", 400, nil},
		{"/debug/pprof/goroutine?seconds=-1", 400, nil},
		{"/debug/pprof/nosuch", 404, nil},
		{"/debug/pprof/cmdline", 200, func(t *testing.T, _ *http.Response, body []byte) {
			if !bytes.Contains(body, []byte("profiler.test")) {
				t.Errorf("cmdline %q does not name the test binary", body)
			}
		}},
		{fmt.Sprintf("/debug/pprof/symbol?%#x", reflect.ValueOf(burnHot).Pointer()), 200, func(t *testing.T, _ *http.Response, body []byte) {
			if !bytes.Contains(body, []byte("profiler.burnHot")) {
				t.Errorf("symbol: %q", body)
			}
		}},
		{"/debug/pprof/profile?seconds=0.2", 200, func(t *testing.T, _ *http.Response, body []byte) { parses(t, body) }},
		{"/debug/pprof/profile?seconds=x", 400, nil},
		{"/debug/pprof/trace?seconds=0.1", 200, func(t *testing.T, _ *http.Response, body []byte) {
			if len(body) == 0 {
				t.Error("empty trace")
			}
		}},
		{"/debug/fgprof?seconds=1", 200, func(t *testing.T, _ *http.Response, body []byte) {
			if p := parses(t, body); p.PeriodType == nil || p.PeriodType.Type != "wallclock" {
				t.Errorf("fgprof period type %v, want wallclock", p.PeriodType)
			}
		}},
		{"/debug/flamegraph?seconds=0.3&orientation=icicle", 200, func(t *testing.T, resp *http.Response, body []byte) {
			if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Fatalf("content type %q, body %.200q", ct, body)
			}
			d := flameJSON(t, string(body))
			if st := d.SampleTypes[d.DefaultType]; !d.Icicle || d.Names[st.Type] != "cpu" {
				t.Errorf("icicle %v, default type %q", d.Icicle, d.Names[st.Type])
			}
			found := false
			for _, name := range d.Names {
				found = found || name == burnHotName
			}
			if !found {
				t.Errorf("the live flame graph does not show %s", burnHotName)
			}
			if !(len(d.Groups) > 0 && d.Groups[0] == "hot") {
				t.Errorf("agent types %q, want hot first", d.Groups)
			}
		}},
		{"/debug/flamegraph?seconds=abc", 400, nil},
		{"/debug/flamegraph?seconds=0.1&orientation=sideways", 400, nil},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.path, "/debug/"), func(t *testing.T) {
			stop := startBurner() // so that CPU captures have samples
			resp, body := get(t, srv.URL+c.path)
			stop()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d; body %.300q", resp.StatusCode, c.status, body)
			}
			if c.check != nil {
				c.check(t, resp, body)
			}
		})
	}
}

// TestHandlerCPUConflict checks that CPU captures report a CPU profile
// started elsewhere as 409 Conflict.
func TestHandlerCPUConflict(t *testing.T) {
	if !cpuProfilerFree(t) {
		return
	}
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatal(err)
	}
	defer pprof.StopCPUProfile()
	for _, path := range []string{"/debug/pprof/profile?seconds=0.1", "/debug/flamegraph?seconds=0.1"} {
		resp, body := get(t, srv.URL+path)
		if resp.StatusCode != http.StatusConflict || !bytes.Contains(body, []byte("already active")) {
			t.Errorf("%s: %d %q, want 409 naming the active profile", path, resp.StatusCode, body)
		}
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
