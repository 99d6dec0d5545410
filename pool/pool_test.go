package pool

import (
	"sync"
	"testing"
)

type item struct {
	id    int
	owner int
	data  []int
}

func TestPoolZeroValue(t *testing.T) {
	var p Pool[item]
	x := p.Get()
	if x == nil {
		t.Fatal("Get on a zero Pool returned nil")
	}
	x.id, x.data = 7, []int{1}
	p.Put(x)
	y := p.Get()
	if y.id != 0 || y.data != nil {
		t.Fatalf("Get after Put = %+v, want the zero item (default Reset zeroes)", *y)
	}
	p.Put(nil) // ignored
	if s := p.Stats(); s.Puts != 1 || s.Hits+s.Misses != 2 {
		t.Fatalf("Stats = %+v, want Puts 1 and 2 Gets", s)
	}
}

func TestPoolCounts(t *testing.T) {
	cases := []struct {
		name string
		ops  string // g = Get, p = Put of the last object got
		want Stats
	}{
		{"empty", "", Stats{}},
		{"miss", "g", Stats{Misses: 1}},
		{"put then hit", "gpg", Stats{Hits: 1, Misses: 1, Puts: 1}},
		{"two misses", "gg", Stats{Misses: 2}},
		{"reuse loop", "gpgpgp", Stats{Hits: 2, Misses: 1, Puts: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var news, resets int
			p := Pool[item]{
				New:   func() *item { news++; return &item{} },
				Reset: func(x *item) { resets++; x.id = 0 },
			}
			var held []*item
			for _, op := range tc.ops {
				switch op {
				case 'g':
					held = append(held, p.Get())
				case 'p':
					p.Put(held[len(held)-1])
					held = held[:len(held)-1]
				}
			}
			got := p.Stats()
			if got.Puts != tc.want.Puts || got.Hits+got.Misses != tc.want.Hits+tc.want.Misses {
				t.Fatalf("Stats = %+v, want %+v", got, tc.want)
			}
			if resets != int(got.Puts) || news != int(got.Misses) {
				t.Fatalf("Reset called %d times, New %d times; Stats %+v", resets, news, got)
			}
			// Under -race sync.Pool drops Puts at random: only the totals hold.
			if !raceEnabled && got != tc.want {
				t.Fatalf("Stats = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestPoolConcurrent hammers one Pool from many goroutines: no object is
// ever handed to two holders at once, and the counters add up.
func TestPoolConcurrent(t *testing.T) {
	const goroutines, rounds = 8, 2000
	var p Pool[item]
	var wg sync.WaitGroup
	for g := 1; g <= goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				x := p.Get()
				if x.owner != 0 {
					t.Errorf("object held by %d handed to %d", x.owner, g)
					return
				}
				x.owner = g
				p.Put(x)
			}
		}()
	}
	wg.Wait()
	s := p.Stats()
	if s.Hits+s.Misses != goroutines*rounds || s.Puts != goroutines*rounds {
		t.Fatalf("Stats = %+v, want %d Gets and Puts", s, goroutines*rounds)
	}
}
