package timerheap

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// item is a value with an identity, so the test can tell equal deadlines
// apart and check that Filter keeps exactly the right entries.
type item struct {
	id   int
	live bool
}

// TestHeapSortsLikeSort pushes a random batch and pops it all: the output
// must equal sort's order of the same deadlines.
func TestHeapSortsLikeSort(t *testing.T) {
	cases := []struct {
		name string
		n    int
		max  int64
	}{
		{"empty", 0, 1},
		{"one", 1, 10},
		{"five", 5, 3},
		{"ties", 300, 4},
		{"wide", 1000, 1 << 40},
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h Heap[int]
			want := make([]int64, c.n)
			for i := range want {
				want[i] = r.Int64N(c.max)
				h.Push(want[i], i)
				verify0(t, i, &h)
			}
			slices.Sort(want)
			got := make([]int64, 0, c.n)
			for {
				e, ok := h.Pop()
				if !ok {
					break
				}
				got = append(got, e.When)
				verify0(t, len(got), &h)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pop order %v, want %v", got, want)
			}
		})
	}
}

func verify0(t *testing.T, step int, h *Heap[int]) {
	t.Helper()
	if i := h.Verify(); i != -1 {
		t.Fatalf("step %d: heap property broken at index %d", step, i)
	}
}

func TestHeapClear(t *testing.T) {
	var h Heap[*item]
	for i := 0; i < 50; i++ {
		h.Push(int64(50-i), &item{id: i, live: true})
	}
	called := 0
	h.Clear(func(it *item) {
		called++
		it.live = false
	})
	if called != 50 {
		t.Fatalf("Clear called fn %d times, want 50", called)
	}
	if h.Len() != 0 {
		t.Fatalf("Len after Clear = %d", h.Len())
	}
	for _, e := range h.es[:cap(h.es)] {
		if e.V != nil {
			t.Fatal("Clear left a reference in the backing array")
		}
	}
	if _, ok := h.Peek(); ok {
		t.Fatal("Peek after Clear reported ok")
	}
	h.Clear(nil) // nil fn is allowed
	h.Push(3, &item{})
	if e, ok := h.Pop(); !ok || e.When != 3 {
		t.Fatalf("heap unusable after Clear: %v %v", e, ok)
	}
}

func TestVerifyDetectsBrokenHeap(t *testing.T) {
	h := Heap[int]{es: []Entry[int]{{When: 1}, {When: 5}, {When: 2}, {When: 3}, {When: 4}, {When: 0}}}
	// Index 5's parent is index 1 (When 5 > 0).
	if got := h.Verify(); got != 5 {
		t.Fatalf("Verify() = %d, want 5", got)
	}
}

func TestHeapPopAllocatesNothing(t *testing.T) {
	var h Heap[int]
	for i := 0; i < 256; i++ {
		h.Push(int64(i), i)
	}
	for h.Len() > 0 {
		h.Pop()
	}
	r := rand.New(rand.NewPCG(1, 1))
	allocs := testing.AllocsPerRun(100, func() {
		for i := 0; i < 128; i++ {
			h.Push(r.Int64N(1000), i)
		}
		for h.Len() > 0 {
			h.Pop()
		}
	})
	if allocs != 0 {
		t.Fatalf("Push/Pop at working size: %v allocs per run, want 0", allocs)
	}
}

// stdHeap is container/heap over the same entries: the baseline.
type stdHeap []Entry[int]

func (s stdHeap) Len() int           { return len(s) }
func (s stdHeap) Less(i, j int) bool { return s[i].When < s[j].When }
func (s stdHeap) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *stdHeap) Push(x any)        { *s = append(*s, x.(Entry[int])) }
func (s *stdHeap) Pop() any {
	old := *s
	e := old[len(old)-1]
	*s = old[:len(old)-1]
	return e
}

func BenchmarkHeap(b *testing.B) {
	for _, size := range []int{64, 4096} {
		whens := make([]int64, size)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range whens {
			whens[i] = r.Int64N(1 << 30)
		}
		b.Run("PushPop/n="+strconv.Itoa(size), func(b *testing.B) {
			var h Heap[int]
			for i, w := range whens {
				h.Push(w, i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e, _ := h.Pop()
				h.Push(e.When+whens[i%size], e.V)
			}
		})
		b.Run("container-heap/n="+strconv.Itoa(size), func(b *testing.B) {
			s := make(stdHeap, 0, size)
			for i, w := range whens {
				s = append(s, Entry[int]{w, i})
			}
			heap.Init(&s)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e := heap.Pop(&s).(Entry[int])
				e.When += whens[i%size]
				heap.Push(&s, e)
			}
		})
	}
}
