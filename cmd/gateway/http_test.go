package main

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentloop/agentloop/dashboard"
	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/metrics"
)

// TestMuxRoutes: the mux of -http serves the metrics and the profiler's
// endpoints and the dashboard, its page and its event stream.
func TestMuxRoutes(t *testing.T) {
	e, err := engine.New(engine.WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(context.Background(), engine.Immediate())
	mux, closer, err := newMux(e)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, want := range map[string]string{
		metrics.Path:    "agentloop_",
		"/debug/pprof/": "goroutine",
		dashboard.Path:  "<canvas",
	} {
		if code, body := get(t, srv.URL+path); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body lacks %q", path, code, want)
		}
	}
	// The dashboard's event stream opens with the history so far.
	req, err := http.NewRequest(http.MethodGet, srv.URL+dashboard.Path+"events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("GET %sevents: %d, Content-Type %q", dashboard.Path, resp.StatusCode, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != "event: history" {
	}
	if sc.Text() != "event: history" {
		t.Errorf("the event stream ended without its history event: %v", sc.Err())
	}
	resp.Body.Close()
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPDefaultPortTaken: without -http the server takes the default
// port, or a free one when that is taken, and prints the real URL.
func TestHTTPDefaultPortTaken(t *testing.T) {
	if ln, err := net.Listen("tcp", defaultHTTP); err == nil { // else something else holds it: taken all the same
		defer ln.Close()
	}
	var log bytes.Buffer
	w, done := startRun(context.Background(), append(small, "-duration", "1500ms"), sys{stderr: &log})
	url := waitURL(t, w, done, "metrics")
	if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasPrefix(url, "http://"+defaultHTTP+"/") {
		t.Errorf("metrics at %s, want loopback on a port other than the default's", url)
	}
	if code, _ := get(t, url); code != http.StatusOK {
		t.Errorf("GET %s: %d", url, code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestHTTPGivenPortTaken: an address given with -http is not replaced: a
// port already taken is an error before the run.
func TestHTTPGivenPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out bytes.Buffer
	err = run(context.Background(), append(small, "-http", ln.Addr().String()), stdio(&out))
	if err == nil || !strings.Contains(err.Error(), "-http") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("got %v, want -http: address already in use", err)
	}
	if strings.Contains(out.String(), "summary") {
		t.Error("the run went ahead")
	}
}

// TestHTTPNonLoopbackWarns: an address beyond loopback is served, with a
// warning in the log; loopback gets none.
func TestHTTPNonLoopbackWarns(t *testing.T) {
	for _, c := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {"localhost:0", false}, {":0", true}} {
		var buf bytes.Buffer
		ln, err := listenHTTP(c.addr, false, slog.New(slog.NewTextHandler(&buf, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		if got := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), "without authentication"); got != c.warn {
			t.Errorf("%s: warned %v, want %v: %q", c.addr, got, c.warn, buf.String())
		}
	}
}

// TestHTTPOff: -http "" serves nothing and prints no URL.
func TestHTTPOff(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), append(small, "-duration", "300ms", "-http", ""), stdio(&out)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "http://") {
		t.Errorf("a URL is printed:\n%s", out.String())
	}
}

// TestMetricsFlagIsDeprecatedAlias: -metrics ADDR still serves, as -http
// ADDR, and the log says it is deprecated.
func TestMetricsFlagIsDeprecatedAlias(t *testing.T) {
	var log bytes.Buffer
	w, done := startRun(context.Background(), append(small, "-duration", "1500ms", "-metrics", "127.0.0.1:0"), sys{stderr: &log})
	url := waitURL(t, w, done, "metrics")
	if code, _ := get(t, url); code != http.StatusOK {
		t.Errorf("GET %s: %d", url, code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "-metrics is deprecated") {
		t.Errorf("log: %q", log.String())
	}
}
