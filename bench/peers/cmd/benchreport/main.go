// Command benchreport turns go test -bench output into BENCHMARKS.md: the
// machine, the commands, a table per workload of bench/README.md with
// medians and their spread, agentloop's speedup over each baseline and peer,
// and every target of bench/README.md marked met or not met from the medians.
//
//	benchreport -o BENCHMARKS.md -cmd 'make bench' bench.out peers.out
//
// It reads any number of files. Benchmarks named BenchmarkW<n>_<Subject>
// (the library's suite, baselines BenchmarkW<n>_Baseline<Name>) and
// BenchmarkW<n>/.../impl=<name> (the peers suite in bench/peers) are
// recognised; a workload with no benchmarks in the input is reported as
// not measured.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, "\n") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

func main() {
	var (
		out   = flag.String("o", "BENCHMARKS.md", "output file, - for standard output")
		cores = flag.Int("cores", runtime.NumCPU(), "core count of the machine the benchmarks ran on")
		cmds  stringList
		notes stringList
	)
	flag.Var(&cmds, "cmd", "command that produced the input (repeatable)")
	flag.Var(&notes, "note", "paragraph to add under the machine description (repeatable)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: benchreport [flags] file...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, flag.Args(), meta{cores: *cores, commands: cmds, notes: notes}); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(out string, files []string, m meta) error {
	d := newData()
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		err = d.read(f, name)
		f.Close()
		if err != nil {
			return err
		}
	}
	doc := render(d, m)
	if out == "-" {
		_, err := os.Stdout.WriteString(doc)
		return err
	}
	return os.WriteFile(out, []byte(doc), 0o644)
}
