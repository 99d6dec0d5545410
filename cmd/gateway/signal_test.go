package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// waitFirstLine waits for a run's first live line.
func waitFirstLine(t *testing.T, w *lineWriter, done <-chan error) {
	t.Helper()
	for {
		select {
		case line := <-w.lines:
			if strings.HasPrefix(line, "t=   1s ") {
				return
			}
		case err := <-done:
			t.Fatalf("the run ended before its first live line: %v", err)
		}
	}
}

// TestRunEndsOnSignal: SIGTERM (what Docker and systemd send) and SIGINT
// (Ctrl-C) each end the run as an interruption: no error, the signal
// named, the summary of what ran, and the queues given their drain.
func TestRunEndsOnSignal(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		sigs := make(chan os.Signal, 1)
		var stopped atomic.Bool
		w, done := startRun(context.Background(), append(small, "-duration", "1h", "-http", ""),
			sys{signals: sigs, stopSignals: func() { stopped.Store(true) }})
		waitFirstLine(t, w, done)
		sigs <- sig
		if err := <-done; err != nil {
			t.Fatalf("%v: %v", sig, err)
		}
		s := w.rest()
		if !strings.Contains(s, "interrupted by "+signalName(sig)+"\n") || !strings.Contains(s, "summary (agentloop)") {
			t.Errorf("%v: output:\n%s", sig, s)
		}
		if strings.Contains(s, "did not drain") {
			t.Errorf("%v: an interrupted run is reported overloaded:\n%s", sig, s)
		}
		if !stopped.Load() {
			t.Errorf("%v: the signals were not handed back after the first", sig)
		}
	}
}

// TestSIGTERMToProcess sends a real SIGTERM to the command, run in a
// child process (this test binary as main): it exits 0 with the summary.
func TestSIGTERMToProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0], append(small, "-duration", "1h", "-http", "")...)
	cmd.Env = append(os.Environ(), "GATEWAY_TEST_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var out strings.Builder
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "t=   1s ") { // running, and past signal.Notify
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("no exit after SIGTERM:\n%s", out.String())
	}
	if err != nil {
		t.Fatalf("exit: %v\nstderr: %s\nstdout:\n%s", err, stderr.String(), out.String())
	}
	if s := out.String(); !strings.Contains(s, "interrupted by SIGTERM\n") || !strings.Contains(s, "summary (agentloop)") {
		t.Errorf("stdout:\n%s", s)
	}
}
