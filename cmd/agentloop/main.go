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
// Exit status: 0 on success, 1 when the command fails (unreadable or invalid
// input, write errors), 2 for a bad command line.
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
			args:    "[-config FILE] [-duration D] [-start R] [-max R] [-step F] [-p99 D] [-ingress publish|route] [-baseline]",
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
