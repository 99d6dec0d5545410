package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"go.uber.org/goleak"
)

// IgnoreCurrent: the goroutines that exist before any test are those of
// ants' package-level default pool, started by its init.
// With GATEWAY_TEST_MAIN=1 the test binary is the command itself: main
// with the arguments given, as the signal test runs it in a child.
func TestMain(m *testing.M) {
	if os.Getenv("GATEWAY_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// stdio is a sys writing the output to out and discarding the log.
func stdio(out io.Writer) sys { return sys{stdout: out, stderr: io.Discard} }

// small keeps runs fast under -race on two cores: the embedded mix with
// 100 devices.
var small = []string{"-devices", "100", "-rate", "20000", "-loops", "2"}

func TestRunShortSimulation(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), append(small, "-duration", "1200ms"), stdio(&out))
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"embedded default.yaml: 100 devices, 16 feature, 4 inference, 1 alert agents on 2 loops; 20000 msgs/s offered for 1.2s (ingress publish)",
		"t=   1s", "msgs/s", "p99", "agents    121", "summary (agentloop)", "achieved", "dropped", "latency    p50", "cpu",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	// The mailboxes hold a whole run's messages: what is not processed is
	// what the drain limit cut off, and the summary says so.
	m := regexp.MustCompile(`\((\d+) emitted, backlog (\d+),[^\n]*\n.*\((\d+) processed\)\n +dropped +(\d+) msgs`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no summary counts:\n%s", s)
	}
	emitted, _ := strconv.Atoi(m[1])
	backlog, _ := strconv.Atoi(m[2])
	processed, _ := strconv.Atoi(m[3])
	dropped, _ := strconv.Atoi(m[4])
	if emitted+backlog != 24000 || processed+dropped < emitted || processed > emitted {
		t.Errorf("emitted %d + backlog %d of 24000 due, processed %d, dropped %d:\n%s", emitted, backlog, processed, dropped, s)
	}
	if drained := !strings.Contains(s, "did not drain"); drained && dropped != 0 {
		t.Errorf("the queues drained, yet %d dropped:\n%s", dropped, s)
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const smallConfig = `load:
  rate: 10000
  duration: 300ms
  loops: 2
agents:
  - {name: dev, kind: device, instances: 50, subscribe: ["telemetry.*.*"]}
  - {name: feat, kind: feature, instances: 2, subscribe: ["features.*"]}
  - {name: inf, kind: inference, instances: 1, batch: 16, subscribe: ["aggregates.*"]}
  - {name: siren, kind: alert, instances: 1, subscribe: ["alerts.>"]}
`

func TestRunConfigFile(t *testing.T) {
	path := writeConfig(t, smallConfig)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-config", path}, stdio(&out)); err != nil {
		t.Fatal(err)
	}
	if want := path + ": 50 devices, 2 feature, 1 inference, 1 alert agents on 2 loops; 10000 msgs/s offered for 300ms"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	// Flags override the file.
	out.Reset()
	if err := run(context.Background(), []string{"-config", path, "-rate", "5000", "-duration", "200ms", "-ingress", "route"}, stdio(&out)); err != nil {
		t.Fatal(err)
	}
	if want := "5000 msgs/s offered for 200ms (ingress route)"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	bad := writeConfig(t, strings.Replace(smallConfig, "instances: 2,", "instances: 2, priority: 140,", 1))
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-devices", "0"}, "-devices: 0 is out of range 1..100000"},
		{[]string{"-rate", "-5"}, "-rate: -5 is out of range 1..100000000"},
		{[]string{"-duration", "0s"}, "-duration: 0s is out of range"},
		{[]string{"-loops", "-1"}, "-loops: -1 is out of range 0..1024"},
		{[]string{"-producers", "0"}, "-producers: 0 is out of range 1..256"},
		{[]string{"-ingress", "teleport"}, `-ingress "teleport": want publish or route`},
		{[]string{"-nope"}, "flag provided but not defined"},
		{[]string{"-rate", "x"}, `invalid value "x" for flag -rate`},
		{[]string{"-http", "nonsense"}, `-http "nonsense": not host:port`},
		{[]string{"-http", "127.0.0.1:0", "-metrics", "127.0.0.1:9"}, "-metrics is the old name of -http"},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"-config", filepath.Join(t.TempDir(), "missing.yaml")}, "no such file"},
		{[]string{"-config", bad}, bad + ":7: agents[1].priority: 140 is out of range 0..100"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		err := run(context.Background(), c.args, stdio(&out))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%v) = %v, want an error containing %q", c.args, err, c.want)
		}
		// main prints the error; run prints nothing of it, nor the usage
		if out.Len() != 0 {
			t.Errorf("run(%v) wrote %q besides returning %v: the error would be printed twice", c.args, out.String(), err)
		}
	}
}

// lineWriter hands each line written to it to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		select {
		case w.lines <- line:
		default:
		}
	}
}

// startRun runs args in the background; it returns the lines the run
// writes and the channel of its result.
func startRun(ctx context.Context, args []string, sys sys) (*lineWriter, <-chan error) {
	w := &lineWriter{lines: make(chan string, 64)}
	sys.stdout = w
	if sys.stderr == nil {
		sys.stderr = io.Discard
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, sys) }()
	return w, done
}

// waitURL waits for the line "name: URL" of a run and returns the URL.
func waitURL(t *testing.T, w *lineWriter, done <-chan error, name string) string {
	t.Helper()
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `: (http://\S+)`)
	for {
		select {
		case line := <-w.lines:
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case err := <-done:
			t.Fatalf("run ended before printing the %s URL: %v", name, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s URL printed", name)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
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
	return resp.StatusCode, string(body)
}

// TestRunServesHTTP: -http serves the metrics and the profiler on one
// server while the run lasts, prints their URLs, and stops with the run.
// rest is what was written and not taken from lines yet, in order.
func (w *lineWriter) rest() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out strings.Builder
	for len(w.lines) > 0 {
		out.WriteString(<-w.lines)
	}
	out.WriteString(w.buf.String())
	return out.String()
}

func TestRunServesHTTP(t *testing.T) {
	w, done := startRun(context.Background(), append(small, "-duration", "1500ms", "-http", "127.0.0.1:0"), sys{})
	url := waitURL(t, w, done, "metrics")
	base := strings.TrimSuffix(url, "/metrics")
	if code, body := get(t, url); code != http.StatusOK || !strings.Contains(body, `type="device"`) {
		t.Errorf("GET %s: %d, the metrics do not mention the device type:\n%.2000s", url, code, body)
	}
	if code, body := get(t, base+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/: %d\n%.500s", code, body)
	}
	// A parameter out of range is refused before any capture: the flame
	// graph endpoint is there without holding the CPU profiler.
	if code, _ := get(t, base+"/debug/flamegraph?seconds=0"); code != http.StatusBadRequest {
		t.Errorf("GET /debug/flamegraph?seconds=0: %d, want 400", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(url); err == nil {
		t.Error("the HTTP server outlived the run")
	}
}

func TestRunWithProfileWritesFlameGraph(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := run(context.Background(), append(small, "-duration", "1s", "-profile", dir, "-sampling", "0.5"), stdio(&out))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "flame graph: "+dir) {
		t.Fatalf("no flame graph reported:\n%s", out.String())
	}
	html, err := os.ReadFile(filepath.Join(dir, "flame.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(html, []byte("<html")) {
		t.Fatal("flame.html is not a page")
	}
}

// TestRunInterrupted ends a long run early, as Ctrl-C does, once its
// first live line is out: the run returns no error and the summary covers
// what ran, a window of at least that second.
func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &lineWriter{lines: make(chan string, 64)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append(small, "-duration", "1h"), stdio(w)) }()
	for first := false; !first; {
		select {
		case line := <-w.lines:
			first = strings.HasPrefix(line, "t=   1s ")
		case err := <-done:
			t.Fatalf("the run ended before its first live line: %v", err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	rest := w.buf.String()
	w.mu.Unlock()
	var out strings.Builder
	for len(w.lines) > 0 {
		out.WriteString(<-w.lines)
	}
	out.WriteString(rest)
	s := out.String()
	m := regexp.MustCompile(`(?m)^summary \(agentloop\): (\S+) offered \+ drain = \S+, 121 agents$`).FindStringSubmatch(s)
	if !strings.Contains(s, "interrupted\n") || m == nil {
		t.Fatalf("output:\n%s", s)
	}
	if d, err := time.ParseDuration(m[1]); err != nil || d < time.Second || d >= time.Hour {
		t.Errorf("offered for %s, want from 1s to well under the hour", m[1])
	}
}

// TestRunStateFlag: -state DIR keeps the mix's state across runs: the
// first run finds nothing to restore and leaves a snapshot, the second
// restores every agent of the mix from it.
func TestRunStateFlag(t *testing.T) {
	dir := t.TempDir()
	args := append(small, "-duration", "300ms", "-http", "", "-state", dir)
	var first bytes.Buffer
	if err := run(context.Background(), args, stdio(&first)); err != nil {
		t.Fatal(err)
	}
	if want := "state      no snapshot in " + dir; !strings.Contains(first.String(), want) {
		t.Fatalf("first run: output lacks %q:\n%s", want, first.String())
	}
	files, err := engine.SnapshotFiles(dir)
	if err != nil || len(files) == 0 {
		t.Fatalf("after the first run: snapshots %q, %v; want at least one", files, err)
	}
	var second bytes.Buffer
	if err := run(context.Background(), args, stdio(&second)); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`state +(\d+) agents restored from (\S+);`).FindStringSubmatch(second.String())
	if m == nil {
		t.Fatalf("second run: no state line:\n%s", second.String())
	}
	if m[1] != "121" || filepath.Dir(m[2]) != dir {
		t.Errorf("second run restored %s agents from %s; want the mix's 121 (100 devices, 16 feature, 4 inference, 1 alert) from a snapshot in %s", m[1], m[2], dir)
	}
}
