package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// IgnoreCurrent: the goroutines that exist before any test are those of
// ants' package-level default pool, started by its init.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

func TestRunShortSimulation(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-devices", "200", "-rate", "20000", "-duration", "1200ms", "-loops", "2"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"t=   1s", "summary:", "processed", "dropped"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestSimulateAccountsForEveryMessage(t *testing.T) {
	cfg := config{Devices: 50, Rate: 50000, Duration: 300e6, Loops: 2, Producers: 2}
	var out bytes.Buffer
	sum, err := simulate(context.Background(), cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Offered == 0 {
		t.Fatal("nothing offered")
	}
	if sum.Sent+sum.Refused != sum.Offered {
		t.Errorf("sent %d + refused %d != offered %d", sum.Sent, sum.Refused, sum.Offered)
	}
	if sum.Processed+sum.DeadLetters != sum.Sent {
		t.Errorf("processed %d + dead %d != sent %d", sum.Processed, sum.DeadLetters, sum.Sent)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-devices", "0"}, "-devices 0"},
		{[]string{"-rate", "-5"}, "-rate -5"},
		{[]string{"-duration", "0s"}, "-duration 0s"},
		{[]string{"-loops", "-1"}, "-loops -1"},
		{[]string{"-nope"}, "flag provided but not defined"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		err := run(context.Background(), c.args, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%v) = %v, want error containing %q", c.args, err, c.want)
		}
	}
}

func TestTelemetryRoundTrip(t *testing.T) {
	buf := make([]byte, telemetrySize)
	encodeTelemetry(buf, 3, 42.5)
	s, v, err := decodeTelemetry(buf)
	if err != nil || s != 3 || v != 42.5 {
		t.Fatalf("decode = %d, %v, %v", s, v, err)
	}
	if _, _, err := decodeTelemetry(buf[:4]); err == nil {
		t.Fatal("short telemetry accepted")
	}
}

func FuzzDecodeTelemetry(f *testing.F) {
	buf := make([]byte, telemetrySize)
	encodeTelemetry(buf, 1, 99.5)
	f.Add(buf)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		s, v, err := decodeTelemetry(p)
		if err != nil {
			if len(p) >= 10 {
				t.Fatalf("rejected %d bytes: %v", len(p), err)
			}
			return
		}
		out := make([]byte, telemetrySize)
		encodeTelemetry(out, s, v)
		if !bytes.Equal(out[:10], p[:10]) {
			t.Fatalf("round trip changed %x to %x", p[:10], out[:10])
		}
	})
}

func TestRunWithProfileWritesFlameGraph(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := run(context.Background(), []string{"-devices", "100", "-rate", "50000", "-duration", "1s", "-loops", "2", "-profile", dir, "-sampling", "0.5"}, &out)
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
