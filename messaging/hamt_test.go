package messaging

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestHamt(t *testing.T) {
	cases := []struct {
		name string
		hash func(string) uint64
	}{
		{"maphash", hashString},
		// Few distinct hashes: long chains of shared chunks and collision
		// nodes below the last level.
		{"collide8", func(k string) uint64 { return hashString(k) % 8 }},
		{"collideAll", func(string) uint64 { return 42 }},
		// Hashes that differ only in their top bits: chains down to the last,
		// partial (4-bit) level.
		{"highBits", func(k string) uint64 { return hashString(k) &^ (1<<60 - 1) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			var m *hamt[int]
			ref := make(map[string]int)
			type version struct {
				m   *hamt[int]
				ref map[string]int
			}
			var versions []version
			check := func(m *hamt[int], ref map[string]int) {
				t.Helper()
				n, err := m.verify()
				if err != nil {
					t.Fatal(err)
				}
				if n != len(ref) {
					t.Fatalf("hamt holds %d keys, want %d", n, len(ref))
				}
				for k, v := range ref {
					if got, ok := m.get(tc.hash(k), k); !ok || got != v {
						t.Fatalf("get(%q) = %d, %v; want %d, true", k, got, ok, v)
					}
				}
			}
			for i := range 3000 {
				k := fmt.Sprintf("k%d", rng.IntN(400))
				h := tc.hash(k)
				if rng.IntN(3) == 0 {
					var ok bool
					m, ok = m.delete(h, k)
					if _, want := ref[k]; ok != want {
						t.Fatalf("delete(%q) = %v, want %v", k, ok, want)
					}
					delete(ref, k)
				} else {
					m = m.set(h, k, i)
					ref[k] = i
				}
				if _, ok := m.get(h, "absent"+k); ok {
					t.Fatalf("get of an absent key succeeded")
				}
				if i%100 == 0 {
					check(m, ref)
					snap := make(map[string]int, len(ref))
					for k, v := range ref {
						snap[k] = v
					}
					versions = append(versions, version{m, snap})
				}
			}
			check(m, ref)
			// Persistence: every old root still holds exactly what it held.
			for _, v := range versions {
				check(v.m, v.ref)
			}
			for k := range ref {
				m, _ = m.delete(tc.hash(k), k)
			}
			if m != nil {
				t.Fatalf("hamt not nil after deleting every key")
			}
		})
	}
}
