// Command agentloop is the toolbox of the agentloop engine.
//
// Usage:
//
//	agentloop <command> [arguments]
//
// Commands:
//
//	flame   render a pprof profile as a self-contained HTML flame graph
//	load    find the highest rate the IoT gateway mix sustains within a p99 target
//	version print the release and the Go toolchain
//	help    show the commands, or the flags of one command
//
// `agentloop help COMMAND` prints a command's flags with their defaults.
//
// Exit status: 0 on success, 1 when the command fails (unreadable or invalid
// input, write errors), 2 for a bad command line.
//
// # flame
//
// Flame renders any pprof profile (the files of package profiler, a
// /debug/pprof download, go test -cpuprofile or -memprofile output) as one
// HTML page that needs no network:
//
//	go run ./cmd/agentloop flame cpu.pb.gz -o cpu.html
//	go run ./cmd/agentloop flame wall-20250102T150405.000Z.pb.gz -type wall -icicle
//	make flame PROFILE=cpu.prof      # writes cpu.html
//
// -type picks the sample type shown first, -icicle hangs the tree from the
// top, -title sets the page title, -o - writes to standard output. Package
// profiler says how to read the page and which limits keep any input safe
// to render.
//
// # load
//
// Load is the open-loop load generator of workload W10 (bench/README.md)
// on the same code as cmd/gateway (package gateway). It searches for the
// highest offered rate at which a run passes: p99 ≤ -p99 (default 1 ms) and
// achieved ≥ -achieved (default 0.95) of the offered rate. The search steps
// up from -start (100 000 msgs/s), multiplying by -step (2) up to -max (8 M;
// the last step clamped to it), until a rate fails; if the start already
// fails, it steps down by the same factor (at most four times). It then
// bisects between the highest pass and the lowest failure at their
// geometric midpoint for -rounds (3) rounds. A failing rate is run again
// -retries (1) times and passes if any run passes: on a shared machine a run
// can fail for reasons of its own. Each run lasts -duration (2 s) plus its
// drain; -config, -devices, -loops, -producers and -ingress shape the mix,
// as they do for cmd/gateway; -quiet prints one line per run instead of the
// live lines.
//
// With -baseline the same search also runs on the goroutine-per-device
// baseline (gateway.RunBaseline: the same mix, work and payloads on plain
// goroutines and channels; priorities have no equivalent there). The two
// searches take turns, run by run, agentloop's first, and whichever search
// ends first leaves the other to go on alone, so that the drift of a shared
// machine's speed weighs on both alike. A short search on a 2-core VM,
// capped at 400 000 msgs/s:
//
//	$ go run ./cmd/agentloop load -baseline -quiet -duration 500ms -start 100000 -max 400000 -step 2 -rounds 1 -retries 0
//	load: 10000 devices, 2 loops (GOMAXPROCS), 2 producers, ingress publish, 500ms per run; pass: p99 ≤ 1ms and ≥ 95% of the offered rate achieved
//	searching both systems, their runs alternating
//	  agentloop up        100000 msgs/s  pass  achieved     99810  p99    0.105ms  cpu  15.5%  dropped 0
//	  baseline  up        100000 msgs/s  pass  achieved     98679  p99    0.637ms  cpu  17.8%  dropped 0
//	  agentloop up        200000 msgs/s  pass  achieved    199657  p99    0.348ms  cpu  19.5%  dropped 0
//	  baseline  up        200000 msgs/s  FAIL  achieved    197261  p99    2.535ms  cpu  31.9%  dropped 0
//	  agentloop up        400000 msgs/s  pass  achieved    399702  p99    0.674ms  cpu  28.0%  dropped 0
//	  baseline  bisect    141421 msgs/s  pass  achieved    139765  p99    0.122ms  cpu  23.3%  dropped 0
//
//	max rate with p99 ≤ 1ms:
//
//	| metric                   | goroutine-per-device baseline | agentloop |
//	|--------------------------|-------------------------------|-----------|
//	| max offered rate (msg/s) |                       141 421 |   400 000 |
//	| throughput (msg/s)       |                       139 765 |   399 702 |
//	| p50 latency (ms)         |                         0.049 |     0.071 |
//	| p99 latency (ms)         |                         0.122 |     0.674 |
//	| p999 latency (ms)        |                         0.240 |     6.529 |
//	| CPU (% of a core)        |                            23 |        28 |
//	| dropped                  |                             0 |         0 |
//
//	agentloop / baseline max rate: 2.83×
//
// (the engine passed the cap, so its max rate is a lower bound).
//
// Three full searches (default flags) gave the engine 367 000–519 000 msgs/s and the baseline
// 200 000–308 000 (ratios 1.4×, 1.7×, 2.0×); with -ingress route the engine
// reached 566 000–734 000 against 367 000–400 000 (1.4×, 1.7×, 2.0×).
// Those runs predate the present publish path: an outside publish now
// costs about what a send to a known agent through the route table does
// (about 1.0 µs of CPU a message at 200 000 msgs/s, 0.76 µs at 400 000,
// against 1.1 and 0.98 µs before): the topic is split once for all
// subscription lists, lists without subscribers are skipped, and the
// device is found in the registry without a lock. Single runs vary by up
// to 2× on a shared VM: compare ratios from one run.
//
// The W10 benchmarks give the same figures: go test -run '^$' -bench
// '^BenchmarkW10_' ./bench reports msgs/s, p50-µs, p99-µs, p999-µs, cpu-%
// and dropped at 200 000 msgs/s, and maxrate-msgs/s from a quick search of
// three 300 ms runs (100 000 msgs/s doubling, or halving if 100 000 fails;
// the full search of load with -w10.search or AGENTLOOP_W10_SEARCH=1).
// BenchmarkW10_GatewayRoute is the engine with ingress route. The quick
// search only brackets the max rate within a factor of two: take ratios of
// max rates from load -baseline.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/agentloop/agentloop/gateway"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line is wrong
)

// env is what a command may use of the process.
type env struct {
	stdout, stderr io.Writer
	// newRunner makes the runs of `load` (nil: gateway.RunnerFor).
	newRunner func(cfg *gateway.Config, baseline bool, opts gateway.Options) gateway.Runner
}

// command is one subcommand. A fresh value is made per run: flags defines
// its flags on fs, binding them to its fields; run does the work with the
// positional arguments.
type command interface {
	flags(fs *flag.FlagSet)
	run(e *env, args []string) error
}

// entry describes a command in the table.
type entry struct {
	name    string
	args    string // the synopsis after the name
	summary string // one line for `agentloop help`
	help    string // paragraphs for `agentloop help NAME`
	new     func() command
}

// commands is the command table, in the order help lists them. It is set in
// init because help refers to it.
var commands []entry

func init() {
	commands = []entry{
		{
			name:    "flame",
			args:    "IN.pprof [-o OUT.html] [-type TYPE] [-icicle] [-title TITLE]",
			summary: "render a pprof profile as a self-contained HTML flame graph",
			help: `Flame reads any pprof profile (a profiler file, a /debug/pprof download,
go test -cpuprofile or -memprofile output) and writes a flame graph page that
needs no network: click to zoom, search, and switch sample type and agent type.`,
			new: func() command { return new(flameCmd) },
		},
		{
			name:    "load",
			args:    "[-config FILE] [-duration D] [-start R] [-max R] [-step F] [-p99 D] [-ingress publish|route] [-baseline | -rates R,R...]",
			summary: "find the highest rate the IoT gateway mix sustains within a p99 target",
			help:    loadHelp,
			new:     func() command { return new(loadCmd) },
		},
		{
			name:    "version",
			summary: "print the release and the Go toolchain",
			new:     func() command { return new(versionCmd) },
		},
		{
			name:    "help",
			args:    "[COMMAND]",
			summary: "show the commands, or the flags of one command",
			new:     func() command { return new(helpCmd) },
		},
	}
}

func main() {
	os.Exit(run(os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr}))
}

// usageError is a bad command line; run prints it with the command's
// synopsis and exits with exitUsage.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// run runs the command line args (without the program name) and returns
// the exit code.
func run(args []string, e *env) int {
	if len(args) == 0 {
		writeUsage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	}
	ent, ok := lookup(name)
	if !ok {
		fmt.Fprintf(e.stderr, "agentloop: unknown command %q\nRun 'agentloop help' for the commands.\n", name)
		return exitUsage
	}
	cmd := ent.new()
	fs := flag.NewFlagSet(ent.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed below, once
	cmd.flags(fs)
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		writeCommandHelp(e.stdout, ent)
		return exitOK
	}
	if err != nil {
		err = usageError{err}
	} else {
		err = cmd.run(e, pos)
	}
	var usage usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(e.stderr, "agentloop %s: %v\nusage: agentloop %s %s\nRun 'agentloop help %s' for details.\n",
			ent.name, err, ent.name, ent.args, ent.name)
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "agentloop %s: %v\n", ent.name, err)
		return exitFailure
	}
}

func lookup(name string) (entry, bool) {
	for _, ent := range commands {
		if ent.name == name {
			return ent, true
		}
	}
	return entry{}, false
}

// parseInterspersed parses flags placed before, between or after the
// positional arguments (flag.Parse stops at the first positional one), and
// returns the positional ones. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func writeUsage(w io.Writer) {
	fmt.Fprint(w, "agentloop is the toolbox of the agentloop engine.\n\nUsage:\n\n\tagentloop <command> [arguments]\n\nCommands:\n\n")
	for _, ent := range commands {
		fmt.Fprintf(w, "\t%-8s%s\n", ent.name, ent.summary)
	}
	fmt.Fprint(w, "\nRun 'agentloop help <command>' for the flags of a command.\n")
}

func writeCommandHelp(w io.Writer, ent entry) {
	fmt.Fprintf(w, "usage: agentloop %s %s\n\n", ent.name, ent.args)
	if ent.help != "" {
		fmt.Fprintf(w, "%s\n\n", ent.help)
	}
	fs := flag.NewFlagSet(ent.name, flag.ContinueOnError)
	ent.new().flags(fs)
	var flags strings.Builder
	fs.SetOutput(&flags)
	fs.PrintDefaults()
	if flags.Len() > 0 {
		fmt.Fprintf(w, "Flags:\n%s", flags.String())
	}
}

// helpCmd is `agentloop help [COMMAND]`.
type helpCmd struct{}

func (*helpCmd) flags(*flag.FlagSet) {}

func (*helpCmd) run(e *env, args []string) error {
	switch len(args) {
	case 0:
		writeUsage(e.stdout)
		return nil
	case 1:
		ent, ok := lookup(args[0])
		if !ok {
			return usagef("unknown command %q", args[0])
		}
		writeCommandHelp(e.stdout, ent)
		return nil
	}
	return usagef("want at most one command, got %d", len(args))
}
