package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.uber.org/goleak"
)

// TestMain runs main itself when the tests start this binary as the CLI.
func TestMain(m *testing.M) {
	if os.Getenv("AGENTLOOP_TEST_MAIN") == "1" {
		main()
		return
	}
	// IgnoreCurrent: the goroutines that exist before any test are those
	// of ants' package-level default pool, started by its init.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// runCLI runs the command line in process.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &env{stdout: &out, stderr: &errOut})
	return code, out.String(), errOut.String()
}

// writeProfile writes a small CPU-like profile with an agent_type label.
func writeProfile(t *testing.T, name string) string {
	t.Helper()
	mainFn := &profile.Function{ID: 1, Name: "main.main"}
	work := &profile.Function{ID: 2, Name: "main.work"}
	l1 := &profile.Location{ID: 1, Line: []profile.Line{{Function: mainFn}}}
	l2 := &profile.Location{ID: 2, Line: []profile.Line{{Function: work}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
		Function:   []*profile.Function{mainFn, work},
		Location:   []*profile.Location{l1, l2},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{l2, l1}, Value: []int64{3, 30_000_000}, Label: map[string][]string{"agent_type": {"device"}}},
			{Location: []*profile.Location{l1}, Value: []int64{1, 10_000_000}},
		},
	}
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func readPage(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFlame(t *testing.T) {
	in := writeProfile(t, "cpu.pb.gz")
	out := filepath.Join(t.TempDir(), "out.html")
	code, stdout, stderr := runCLI("flame", in, "-o", out, "-type", "samples", "-icicle", "-title", "<mine>")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout != "wrote "+out+"\n" {
		t.Errorf("stdout %q", stdout)
	}
	page := readPage(t, out)
	for _, want := range []string{"<!DOCTYPE html>", `"main.work"`, `"device"`, `"icicle":true`, `"defaultType":0`, `\u003cmine\u003e`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}

	// Flags before the input, default output name next to the input.
	code, _, stderr = runCLI("flame", "-type", "cpu", in)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if page := readPage(t, strings.TrimSuffix(in, ".pb.gz")+".html"); !strings.Contains(page, `"defaultType":1`) {
		t.Error("the default output does not show cpu first")
	}

	// Standard output.
	code, stdout, _ = runCLI("flame", in, "-o", "-")
	if code != exitOK || !strings.HasPrefix(stdout, "<!DOCTYPE html>") {
		t.Errorf("-o -: exit %d, output %.40q", code, stdout)
	}
}

// burnSink keeps the result of burn alive.
var burnSink uint64

// burn keeps a CPU busy for d.
//
//go:noinline
func burn(d time.Duration) {
	var x uint64
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := uint64(0); i < 10_000; i++ {
			x = x*31 + i
		}
	}
	burnSink = x
}

// TestFlameRuntimeCPUProfile renders a real CPU profile, as written by
// runtime/pprof for `go test -cpuprofile`.
func TestFlameRuntimeCPUProfile(t *testing.T) {
	in := filepath.Join(t.TempDir(), "cpu.prof")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	pprof.Do(context.Background(), pprof.Labels("agent_type", "burner"), func(context.Context) { burn(300 * time.Millisecond) })
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "cpu.html")
	if code, _, stderr := runCLI("flame", in, "-o", out); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	page := readPage(t, out)
	for _, want := range []string{`.burn"`, `"burner"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	valid := writeProfile(t, "valid.pb.gz")
	empty := filepath.Join(dir, "empty.pprof")
	corrupt := filepath.Join(dir, "corrupt.pprof")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(corrupt, []byte("\x1f\x8bnot really gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.html")
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no command", nil, exitUsage, "Usage:"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"no input", []string{"flame", "-o", out}, exitUsage, "want one input profile, got 0"},
		{"two inputs", []string{"flame", valid, valid}, exitUsage, "got 2 arguments"},
		{"unknown flag", []string{"flame", valid, "-x"}, exitUsage, "flag provided but not defined: -x"},
		{"missing -o value", []string{"flame", valid, "-o"}, exitUsage, "flag needs an argument: -o"},
		{"unknown type", []string{"flame", valid, "-o", out, "-type", "alloc_space"}, exitUsage, "unknown sample type \"alloc_space\": the profile has samples, cpu"},
		{"output is input", []string{"flame", valid, "-o", valid}, exitUsage, "would overwrite the input"},
		{"missing file", []string{"flame", filepath.Join(dir, "nope.pprof"), "-o", out}, exitFailure, "no such file"},
		{"empty file", []string{"flame", empty, "-o", out}, exitFailure, "profiler: empty profile: " + empty},
		{"corrupt file", []string{"flame", corrupt, "-o", out}, exitFailure, "profiler: bad profile: " + corrupt},
		{"unwritable output", []string{"flame", valid, "-o", filepath.Join(dir, "no", "dir", "out.html")}, exitFailure, "write "},
		{"help for unknown", []string{"help", "frobnicate"}, exitUsage, `unknown command "frobnicate"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(c.args...)
			if code != c.code || !strings.Contains(stderr, c.msg) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, c.code, c.msg)
			}
		})
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed run left %s behind (%v)", out, err)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}} {
		code, stdout, _ := runCLI(args...)
		if code != exitOK || !strings.Contains(stdout, "flame") || !strings.Contains(stdout, "help") {
			t.Errorf("%q: exit %d, output:\n%s", args, code, stdout)
		}
	}
	for _, args := range [][]string{{"help", "flame"}, {"flame", "-h"}} {
		code, stdout, _ := runCLI(args...)
		if code != exitOK || !strings.Contains(stdout, "usage: agentloop flame IN.pprof") || !strings.Contains(stdout, "-icicle") {
			t.Errorf("%q: exit %d, output:\n%s", args, code, stdout)
		}
	}
}

// TestExitStatus runs the CLI as a process and checks the exit status and
// message on a bad file.
func TestExitStatus(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.pprof")
	if err := os.WriteFile(bad, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"flame", bad, "-o", bad + ".html"}, exitFailure, "agentloop flame: profiler: bad profile: " + bad},
		{[]string{"flame"}, exitUsage, "usage: agentloop flame"},
		{[]string{"help"}, exitOK, ""},
	}
	for _, c := range cases {
		cmd := exec.Command(os.Args[0], c.args...)
		cmd.Env = append(os.Environ(), "AGENTLOOP_TEST_MAIN=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || !strings.Contains(stderr.String(), c.msg) {
			t.Errorf("agentloop %q: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr.String(), c.code, c.msg)
		}
	}
}

func newFlagSet(c command) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.flags(fs)
	return fs
}

func TestParseInterspersed(t *testing.T) {
	c := new(flameCmd)
	fs := newFlagSet(c)
	pos, err := parseInterspersed(fs, []string{"a", "-o", "x", "b", "-icicle", "--", "-c"})
	if err != nil || strings.Join(pos, ",") != "a,b,-c" || c.out != "x" || !c.icicle {
		t.Errorf("pos %q, err %v, out %q, icicle %v", pos, err, c.out, c.icicle)
	}
}
