package pool

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestClassOf(t *testing.T) {
	cases := []struct {
		n, size int
	}{
		{0, 64}, {1, 64}, {64, 64}, {65, 128}, {128, 128}, {129, 256},
		{1000, 1024}, {4096, 4096}, {4097, 8192}, {MaxBufferSize - 1, MaxBufferSize},
		{MaxBufferSize, MaxBufferSize},
	}
	for _, tc := range cases {
		if got := MinBufferSize << classOf(tc.n); got != tc.size {
			t.Errorf("class size for %d = %d, want %d", tc.n, got, tc.size)
		}
	}
}

func TestBuffersGet(t *testing.T) {
	cases := []struct {
		name      string
		n         int
		wantCap   int // of the backing allocation
		oversized bool
	}{
		{"empty", 0, 64, false},
		{"small", 10, 64, false},
		{"exact class", 256, 256, false},
		{"between classes", 3000, 4096, false},
		{"largest class", MaxBufferSize, MaxBufferSize, false},
		{"oversized", MaxBufferSize + 1, MaxBufferSize + 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var bs Buffers // the zero value is usable
			var returned int
			bs.onReturn = func(*Buffer) { returned++ }
			b := bs.Get(tc.n)
			if len(b.Bytes()) != tc.n || b.Len() != tc.n || cap(b.Bytes()) != tc.n {
				t.Fatalf("len %d cap %d Len %d, want %d", len(b.Bytes()), cap(b.Bytes()), b.Len(), tc.n)
			}
			if cap(b.buf) != tc.wantCap {
				t.Fatalf("backing capacity %d, want %d", cap(b.buf), tc.wantCap)
			}
			s := bs.Stats()
			if s.Gets != 1 || s.Live != 1 || s.Allocs != 1 || (s.Oversized == 1) != tc.oversized {
				t.Fatalf("after Get: %+v", s)
			}
			b.Release()
			s = bs.Stats()
			wantReturns := uint64(1)
			if tc.oversized {
				wantReturns = 0 // left to the garbage collector, never pooled
			}
			if s.Live != 0 || s.Returns != wantReturns || uint64(returned) != wantReturns {
				t.Fatalf("after Release: %+v (hook saw %d returns), want Live 0, Returns %d", s, returned, wantReturns)
			}
		})
	}
}

func TestBufferRefcount(t *testing.T) {
	cases := []struct {
		name   string
		retain []int // Retain calls after Get
	}{
		{"owner only", nil},
		{"retain zero", []int{0}},
		{"retain one", []int{1}},
		{"retain three", []int{3}},
		{"retain in steps", []int{1, 2, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var bs Buffers
			var returned int
			bs.onReturn = func(*Buffer) { returned++ }
			b := bs.Get(100)
			refs := 1
			for _, k := range tc.retain {
				b.Retain(k)
				refs += k
			}
			for i := 1; i <= refs; i++ {
				b.Release()
				s := bs.Stats()
				last := i == refs
				if (returned == 1) != last || (s.Live == 0) != last || (s.Returns == 1) != last {
					t.Fatalf("after release %d of %d: hook saw %d returns, %+v", i, refs, returned, s)
				}
			}
		})
	}
}

func TestBufferMisuse(t *testing.T) {
	cases := []struct {
		name string
		do   func(bs *Buffers)
		want string
	}{
		{"over-release", func(bs *Buffers) {
			b := bs.Get(10)
			b.Release()
			b.Release()
		}, "released more times than retained"},
		{"over-release after retain", func(bs *Buffers) {
			b := bs.Get(10)
			b.Retain(1)
			b.Release()
			b.Release()
			b.Release()
		}, "released more times than retained"},
		{"retain after release", func(bs *Buffers) {
			b := bs.Get(10)
			b.Release()
			b.Retain(1)
		}, "Retain after the final Release"},
		{"negative retain", func(bs *Buffers) { bs.Get(10).Retain(-1) }, "negative count -1"},
		{"negative size", func(bs *Buffers) { bs.Get(-2) }, "negative size -2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var bs Buffers
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "pool: ") || !strings.Contains(msg, tc.want) {
					t.Fatalf("panic %q, want one with %q", msg, tc.want)
				}
			}()
			tc.do(&bs)
		})
	}
}

// TestBufferSharedRace shares one buffer among 8 reader goroutines, as a
// publish to 8 subscribers does. Each reader checks the contents and then
// releases its reference. The buffer must go back to its class exactly once,
// and only after every reader is done: the return hook poisons the bytes,
// so a premature return would also show up as a corrupt read (and, under
// -race, as a data race between the poisoning and the read).
func TestBufferSharedRace(t *testing.T) {
	const readers, rounds = 8, 200
	var bs Buffers
	var returns, reads atomic.Int64
	var premature atomic.Bool
	bs.onReturn = func(b *Buffer) {
		returns.Add(1)
		if reads.Load()%readers != 0 {
			premature.Store(true)
		}
		full := b.buf[:cap(b.buf)]
		for i := range full {
			full[i] = 0xDE // poison
		}
	}
	pattern := bytes.Repeat([]byte("agentloop"), 100)[:700]
	for round := range rounds {
		b := bs.Get(len(pattern))
		copy(b.Bytes(), pattern)
		b.Retain(readers - 1) // the owner's reference goes to the last reader
		var wg sync.WaitGroup
		for range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !bytes.Equal(b.Bytes(), pattern) {
					t.Errorf("round %d: a reader saw corrupt bytes", round)
				}
				reads.Add(1)
				b.Release()
			}()
		}
		wg.Wait()
		if got := returns.Load(); got != int64(round+1) {
			t.Fatalf("round %d: %d returns to the pool, want %d", round, got, round+1)
		}
	}
	if premature.Load() {
		t.Fatal("a buffer went back to the pool before all its readers released it")
	}
	if s := bs.Stats(); s.Live != 0 || s.Returns != rounds || s.Gets != rounds {
		t.Fatalf("Stats = %+v, want %d Gets and Returns, Live 0", s, rounds)
	}
}

// TestBuffersConcurrent hammers the classes from many goroutines.
func TestBuffersConcurrent(t *testing.T) {
	const goroutines, rounds = 8, 1000
	var bs Buffers
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				n := (g*rounds + i) % (2 * MaxBufferSize / 8)
				b := bs.Get(n)
				p := b.Bytes()
				if len(p) > 0 {
					p[0], p[len(p)-1] = byte(g), byte(g)
				}
				b.Retain(1)
				b.Release()
				b.Release()
			}
		}()
	}
	wg.Wait()
	if s := bs.Stats(); s.Live != 0 || s.Gets != goroutines*rounds {
		t.Fatalf("Stats = %+v, want %d Gets, Live 0", s, goroutines*rounds)
	}
}
