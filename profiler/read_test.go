package profiler

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadProfile(t *testing.T) {
	dir := t.TempDir()
	var valid bytes.Buffer
	if err := synthProfile().Write(&valid); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty.pprof", nil, ErrEmptyProfile},
		{"text.pprof", []byte("this is not a profile\n"), ErrBadProfile},
		{"binary.pprof", []byte{0xff, 0x00, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef}, ErrBadProfile},
		{"truncated.pb.gz", valid.Bytes()[:valid.Len()/2], ErrBadProfile},
		{"valid.pb.gz", valid.Bytes(), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := write(c.name, c.data)
			p, err := ReadProfile(path)
			if c.want == nil {
				if err != nil || p == nil || len(p.Sample) != len(synthSamples) {
					t.Fatalf("ReadProfile: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("ReadProfile: %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("the error %q does not name the file", err)
			}
			// A parse failure also wraps the parser's error.
			if c.want == ErrBadProfile {
				var wrapped interface{ Unwrap() []error }
				if !errors.As(err, &wrapped) || len(wrapped.Unwrap()) != 2 {
					t.Errorf("the error %q does not wrap the parser's error", err)
				}
			}
		})
	}
	if _, err := ReadProfile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
}
