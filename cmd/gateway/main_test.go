package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// IgnoreCurrent: the goroutines that exist before any test are those of
// ants' package-level default pool, started by its init.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

// small keeps runs fast under -race on two cores: the embedded mix with
// 100 devices.
var small = []string{"-devices", "100", "-rate", "20000", "-loops", "2"}

func TestRunShortSimulation(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), append(small, "-duration", "1200ms"), &out)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"embedded default.yaml: 100 devices, 16 feature, 4 inference, 1 alert agents; 20000 msgs/s offered for 1.2s (ingress publish)",
		"t=   1s", "msgs/s", "p99", "agents    121", "summary (agentloop)", "achieved", "dropped", "latency    p50", "cpu",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if !regexp.MustCompile(`dropped +0 msgs`).MatchString(s) {
		t.Errorf("messages dropped at 20 000 msgs/s:\n%s", s)
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
	if err := run(context.Background(), []string{"-config", path}, &out); err != nil {
		t.Fatal(err)
	}
	if want := path + ": 50 devices, 2 feature, 1 inference, 1 alert agents; 10000 msgs/s offered for 300ms"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	// Flags override the file.
	out.Reset()
	if err := run(context.Background(), []string{"-config", path, "-rate", "5000", "-duration", "200ms", "-ingress", "route"}, &out); err != nil {
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
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"-config", filepath.Join(t.TempDir(), "missing.yaml")}, "no such file"},
		{[]string{"-config", bad}, bad + ":7: agents[1].priority: 140 is out of range 0..100"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		err := run(context.Background(), c.args, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%v) = %v, want an error containing %q", c.args, err, c.want)
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

func TestRunServesMetrics(t *testing.T) {
	w := &lineWriter{lines: make(chan string, 64)}
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), append(small, "-duration", "1500ms", "-metrics", "127.0.0.1:0"), w)
	}()
	var url string
	for url == "" {
		select {
		case line := <-w.lines:
			if m := regexp.MustCompile(`^metrics: (http://\S+/metrics)`).FindStringSubmatch(line); m != nil {
				url = m[1]
			}
		case err := <-done:
			t.Fatalf("run ended before serving metrics: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("no metrics address printed")
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %v", url, resp.Status, err)
	}
	if !strings.Contains(string(body), `type="device"`) {
		t.Errorf("the metrics do not mention the device type:\n%.2000s", body)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(url); err == nil {
		t.Error("the metrics endpoint outlived the run")
	}
}

func TestRunWithProfileWritesFlameGraph(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := run(context.Background(), append(small, "-duration", "1s", "-profile", dir, "-sampling", "0.5"), &out)
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

// TestRunInterrupted ends a long run early, as Ctrl-C does: the summary
// covers what ran.
func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	if err := run(ctx, append(small, "-duration", "1h"), &out); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("took %v", took)
	}
	s := out.String()
	if !strings.Contains(s, "interrupted\n") || !regexp.MustCompile(`summary \(agentloop\): 1\.\d+s offered`).MatchString(s) {
		t.Errorf("output:\n%s", s)
	}
}
