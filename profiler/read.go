package profiler

import (
	"fmt"
	"os"

	"github.com/google/pprof/profile"
)

// ReadProfile reads and checks the profile in the named file: any format
// github.com/google/pprof/profile parses, gzipped or not, such as the files
// of a Profiler, /debug/pprof downloads and `go test -cpuprofile` output.
//
// An empty file fails with ErrEmptyProfile; a file that does not parse, or
// parses into an inconsistent profile, fails with ErrBadProfile, which then
// also wraps the parser's error. Both errors name the file. A valid profile
// without samples is returned without error (WriteFlameGraph refuses it).
func ReadProfile(name string) (*profile.Profile, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("profiler: read profile: %w", err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: %s: the file is empty", ErrEmptyProfile, name)
	}
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadProfile, name, err)
	}
	if err := p.CheckValid(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadProfile, name, err)
	}
	return p, nil
}
