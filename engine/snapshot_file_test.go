package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// bigSaver saves a state of a megabyte: enough bytes that a snapshot file
// is written in many pieces.
type bigSaver struct{ counter }

func (s *bigSaver) SaveState() ([]byte, uint32, error) {
	return bytes.Repeat([]byte("z"), 1<<20), 1, nil
}

const helperEnv = "AGENTLOOP_SNAPSHOT_HELPER_DIR"

// TestHelperProcess is not a test: run by TestSnapshotFileSurvivesKill as
// a child process, it writes one snapshot file, then starts a second one
// over it and, once part of its bytes are in the temporary file, says so
// and blocks until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		return // not the child: nothing to do
	}
	e, _ := engine.New(engine.WithLoops(2))
	_ = e.Register("counter", func() engine.Agent { return &counter{} })
	_ = e.Register("big", func() engine.Agent { return &bigSaver{} })
	_ = e.Start()
	for i := range 100 {
		r, _ := e.Spawn(cid(fmt.Sprint(i)))
		_ = r.Send([]byte(fmt.Sprint(i)))
	}
	_ = e.WaitIdle(context.Background())
	path := filepath.Join(dir, "snapshot-000000000001-first.snap")
	if _, err := e.SnapshotFile(context.Background(), path); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("first")
	_, _ = e.Spawn(engine.AgentID{Type: "big", Key: "b"})
	_ = e.WaitIdle(context.Background())
	engine.SetSnapshotWriteHook(func(written int64) {
		if written >= 64<<10 { // part of the file, far from all of it
			fmt.Println("blocked", written)
			var b [1]byte
			_, _ = os.Stdin.Read(b[:])
		}
	})
	_, _ = e.SnapshotFile(context.Background(), path)
	fmt.Println("second finished: should have been killed")
	os.Exit(2)
}

func TestSnapshotFileSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	for _, want := range []string{"first", "blocked "} {
		if !lines.Scan() || !strings.HasPrefix(lines.Text(), want) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("helper said %q, want %q", lines.Text(), want)
		}
	}
	// The second snapshot is half written: its temporary file holds part
	// of its bytes (at least 64 KiB of a file over a megabyte).
	tmps, _ := filepath.Glob(filepath.Join(dir, ".snapshot-*.tmp-*"))
	if len(tmps) != 1 {
		t.Fatalf("temporary files %v, want one while the write is under way", tmps)
	}
	if fi, err := os.Stat(tmps[0]); err != nil || fi.Size() < 64<<10 || fi.Size() >= 1<<20 {
		t.Fatalf("temporary file %v (%v): want part of the second snapshot written", fi, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	_ = cmd.Wait()

	files, err := engine.SnapshotFiles(dir)
	if err != nil || len(files) != 1 || filepath.Base(files[0]) != "snapshot-000000000001-first.snap" {
		t.Fatalf("snapshot files %v (%v): the temporary file must not be listed", files, err)
	}
	fi, _ := os.Stat(files[0])
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	seen := make(chan delivery, 1)
	e := newSnapEngine(t, func() engine.Agent { return &counter{seen: seen} })
	ri, err := e.RestoreFile(context.Background(), files[0])
	if err != nil || len(ri.Restored) != 100 || len(ri.Skipped) != 0 {
		t.Fatalf("restore of the previous file: %d restored, %v, %v", len(ri.Restored), ri.Skipped, err)
	}
	_ = e.Start()
	r, _ := e.Lookup(cid("42"))
	_ = r.Send([]byte("1"))
	if got := <-seen; got.sum != 43 {
		t.Fatalf("restored counter 42 holds %d, want 43", got.sum-1)
	}
}

// A failed SnapshotFile leaves the previous file and no temporary file.
func TestSnapshotFileFailureKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.snap")
	fail := false
	e := newSnapEngine(t, func() engine.Agent {
		if fail {
			return &counter{failIn: "save"}
		}
		return &counter{}
	})
	_ = e.Start()
	_, _ = e.Spawn(cid("a"))
	_ = e.WaitIdle(context.Background())
	if _, err := e.SnapshotFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	fail = true
	_, _ = e.Spawn(cid("b"))
	_ = e.WaitIdle(context.Background())
	if _, err := e.SnapshotFile(context.Background(), path); err == nil {
		t.Fatal("snapshot with a failing SaveState succeeded")
	}
	after, _ := os.ReadFile(path)
	ents, _ := os.ReadDir(dir)
	if !bytes.Equal(before, after) || len(ents) != 1 {
		t.Fatalf("previous file changed (%v) or temporaries left: %d entries", !bytes.Equal(before, after), len(ents))
	}
}

type logRecords struct{ ch chan slog.Record }

func (h logRecords) Enabled(context.Context, slog.Level) bool      { return true }
func (h logRecords) Handle(_ context.Context, r slog.Record) error { h.ch <- r; return nil }
func (h logRecords) WithAttrs([]slog.Attr) slog.Handler            { return h }
func (h logRecords) WithGroup(string) slog.Handler                 { return h }

func TestSnapshotEvery(t *testing.T) {
	dir := t.TempDir()
	clk := enginetest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	logs := logRecords{ch: make(chan slog.Record, 100)}
	failing := make(chan bool, 1)
	failing <- false
	e := newSnapEngine(t, func() engine.Agent { return &counter{} }, engine.WithClock(clk), engine.WithLogger(slog.New(logs)))
	_ = e.Register("flaky", func() engine.Agent { return &flaky{failing: failing} })
	_ = e.Start()
	_, _ = e.Spawn(cid("a"))
	_, _ = e.Spawn(engine.AgentID{Type: "flaky", Key: "f"})
	_ = e.WaitIdle(context.Background())

	type attempt struct {
		path string
		err  error
	}
	done := make(chan attempt, 1)
	start := func() *engine.Periodic {
		p, err := e.SnapshotEvery(engine.PeriodicConfig{Dir: dir, Every: time.Minute, Keep: 2,
			OnSnapshot: func(path string, _ engine.SnapshotInfo, err error) { done <- attempt{path, err} }})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := start()
	var written []string
	for range 3 {
		clk.Advance(time.Minute)
		a := <-done
		if a.err != nil {
			t.Fatal(a.err)
		}
		written = append(written, filepath.Base(a.path))
	}
	if written[0] != "snapshot-000000000001-20300102T030505.000000000Z.snap" {
		t.Errorf("first file %s", written[0])
	}
	files, _ := engine.SnapshotFiles(dir)
	if len(files) != 2 || filepath.Base(files[0]) != written[2] || filepath.Base(files[1]) != written[1] {
		t.Fatalf("files %v after writing %v with Keep 2", files, written)
	}
	// A failure is counted, logged and reported; the next one is
	// scheduled all the same.
	<-failing
	failing <- true
	clk.Advance(time.Minute)
	if a := <-done; a.err == nil || !strings.Contains(a.err.Error(), "flaky/f") {
		t.Fatalf("failing snapshot reported %v", a.err)
	}
	if st := p.Stats(); st.Written != 3 || st.Failed != 1 || st.LastErr == nil {
		t.Fatalf("stats %+v", st)
	}
	if r := <-logs.ch; r.Level != slog.LevelError || r.Message != "engine: periodic snapshot failed" {
		t.Fatalf("log record %v %q", r.Level, r.Message)
	}
	<-failing
	failing <- false
	clk.Advance(time.Minute)
	if a := <-done; a.err != nil || !strings.HasPrefix(filepath.Base(a.path), "snapshot-000000000005-") {
		t.Fatalf("after a failure: %+v", a)
	}
	p.Stop()
	p.Stop()
	// A new run goes on with the sequence.
	p = start()
	defer p.Stop()
	clk.Advance(time.Minute)
	if a := <-done; a.err != nil || !strings.HasPrefix(filepath.Base(a.path), "snapshot-000000000006-") {
		t.Fatalf("second run: %+v", a)
	}
	if _, err := e.SnapshotEvery(engine.PeriodicConfig{Dir: dir, Every: 0, Keep: 1}); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Fatalf("Every 0: %v", err)
	}
}

// flaky fails its SaveState while failing holds true.
type flaky struct {
	counter
	failing chan bool
}

func (f *flaky) SaveState() ([]byte, uint32, error) {
	v := <-f.failing
	f.failing <- v
	if v {
		return nil, 0, errors.New("flaky")
	}
	return []byte("0"), 7, nil
}
