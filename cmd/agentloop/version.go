package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/agentloop/agentloop/engine"
)

// versionCmd prints the release, the Go toolchain and, when the binary
// carries build information, the module version and VCS revision.
type versionCmd struct{}

func (*versionCmd) flags(*flag.FlagSet) {}

func (*versionCmd) run(e *env, args []string) error {
	if len(args) > 0 {
		return usagef("version takes no arguments, got %q", args)
	}
	fmt.Fprintf(e.stdout, "agentloop %s (%s %s/%s)\n", engine.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			fmt.Fprintf(e.stdout, "module %s %s\n", bi.Main.Path, v)
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				fmt.Fprintf(e.stdout, "revision %s\n", s.Value)
			}
		}
	}
	return nil
}
