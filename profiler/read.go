package profiler

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/pprof/profile"
)

// MaxProfileBytes bounds every profile this package reads (ReadProfile, the
// windows of a Profiler, the captures of Handler): both its size as stored
// and, if it is gzipped, its size once decompressed. A larger one fails with
// ErrProfileTooLarge before more than MaxProfileBytes+1 bytes of it are held
// in memory. Parsing takes memory in proportion: up to about 70 times the
// decompressed size for a crafted profile of tiny samples, so at most about
// 600 MB. Real profiles are far smaller: a busy process's merged ten-minute
// CPU profile takes a few hundred kilobytes.
const MaxProfileBytes = 8 << 20

// ReadProfile reads and checks the profile in the named file: any format
// github.com/google/pprof/profile parses, gzipped or not, such as the files
// of a Profiler, /debug/pprof downloads and `go test -cpuprofile` output.
//
// An empty file fails with ErrEmptyProfile; a file larger than
// MaxProfileBytes, or one that decompresses to more, fails with
// ErrProfileTooLarge; a file that does not parse, or parses into an
// inconsistent profile, fails with ErrBadProfile, which then also wraps the
// parser's error. These errors name the file. A valid profile without
// samples is returned without error (WriteFlameGraph refuses it).
func ReadProfile(name string) (*profile.Profile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("profiler: read profile: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxProfileBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes, more than %d (MaxProfileBytes)", ErrProfileTooLarge, name, fi.Size(), MaxProfileBytes)
	}
	data, err := readAtMost(f, MaxProfileBytes)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, fmt.Errorf("%w: %s: more than %d bytes (MaxProfileBytes)", ErrProfileTooLarge, name, MaxProfileBytes)
	case err != nil:
		return nil, fmt.Errorf("profiler: read profile: %w", err)
	}
	return parseProfile(data, name)
}

// readAtMost reads r to its end, failing with errTooLarge as soon as it
// has more than max bytes. Its buffer doubles up to max exactly, so that it
// allocates less than 2*max bytes in all.
func readAtMost(r io.Reader, max int) ([]byte, error) {
	size := max
	for size > 64<<10 {
		size = (size + 1) / 2
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if len(buf) == max {
				var one [1]byte
				switch n, err := io.ReadFull(r, one[:]); {
				case n > 0:
					return nil, errTooLarge
				case err != io.EOF:
					return nil, err
				}
				return buf, nil
			}
			buf = append(make([]byte, 0, min(2*cap(buf), max)), buf...)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// errTooLarge tells readAtMost's callers that the input has more bytes than
// they allow.
var errTooLarge = errors.New("too large")

// gzipMagic opens every gzip stream.
var gzipMagic = []byte{0x1f, 0x8b}

// parseProfile decompresses (if it is gzipped) and parses data, within
// MaxProfileBytes. what names the profile in errors.
func parseProfile(data []byte, what string) (*profile.Profile, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: %s: no data", ErrEmptyProfile, what)
	}
	if len(data) > MaxProfileBytes {
		return nil, fmt.Errorf("%w: %s: more than %d bytes (MaxProfileBytes)", ErrProfileTooLarge, what, MaxProfileBytes)
	}
	if bytes.HasPrefix(data, gzipMagic) {
		// profile.ParseData would decompress without a bound.
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadProfile, what, err)
		}
		raw, err := readAtMost(zr, MaxProfileBytes)
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("%w: %s: %d bytes of gzip decompress to more than %d (MaxProfileBytes)", ErrProfileTooLarge, what, len(data), MaxProfileBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadProfile, what, err)
		}
		if bytes.HasPrefix(raw, gzipMagic) {
			// ParseData would decompress this layer too, without a bound.
			return nil, fmt.Errorf("%w: %s: gzip inside gzip", ErrBadProfile, what)
		}
		if len(raw) == 0 {
			return nil, fmt.Errorf("%w: %s: nothing inside the gzip stream", ErrEmptyProfile, what)
		}
		data = raw
	}
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadProfile, what, err)
	}
	if err := p.CheckValid(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadProfile, what, err)
	}
	return p, nil
}
