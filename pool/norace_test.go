//go:build !race

package pool

import "testing"

// raceEnabled: see race_test.go.
const raceEnabled = false

// TestBuffersNoAllocs lives here because under the race detector sync.Pool
// drops a random share of Puts, so a pooled Get may allocate; the race build
// checks the same buffers for correctness in buffers_test.go instead.
func TestBuffersNoAllocs(t *testing.T) {
	var bs Buffers
	bs.Get(1000).Release()
	allocs := testing.AllocsPerRun(1000, func() {
		b := bs.Get(1000)
		b.Retain(2)
		b.Release()
		b.Release()
		b.Release()
	})
	if allocs != 0 {
		t.Fatalf("Get/Retain/Release allocates %v times per run, want 0", allocs)
	}
}
