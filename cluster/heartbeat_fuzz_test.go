package cluster

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeHeartbeat: the heartbeat payload's decoder never panics,
// refuses what is not 32 bytes with ErrFrame, and what it accepts encodes
// back to figures within [0, 1].
func FuzzDecodeHeartbeat(f *testing.F) {
	f.Add(appendHeartbeat(nil, Figures{CPUIdle: 0.5, MemFree: 1, NetFree: 0.25, Agents: 7}, Figures{CPUIdle: 0.9}))
	f.Add(make([]byte, 32))
	f.Add(bytes.Repeat([]byte{0xff}, 32)) // NaN figures
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		now, joined, err := decodeHeartbeat(b)
		if err != nil {
			if !errors.Is(err, ErrFrame) || len(b) == 2*figuresLen {
				t.Fatalf("%d bytes: %v", len(b), err)
			}
			return
		}
		for _, fg := range []Figures{now, joined} {
			for _, v := range []float64{fg.CPUIdle, fg.MemFree, fg.NetFree} {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("decoded figure %v outside [0, 1]", v)
				}
			}
		}
		again := appendHeartbeat(nil, now, joined)
		n2, j2, err := decodeHeartbeat(again)
		if err != nil || n2 != now || j2 != joined {
			t.Fatalf("re-encoding changed the figures: %+v %+v -> %+v %+v (%v)", now, joined, n2, j2, err)
		}
	})
}
