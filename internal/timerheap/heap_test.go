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

// TestHeapRandomAgainstSort runs random Push, AddRun, Pop, PopDue and
// Filter operations and compares every Pop with the minimum of a plain
// model. AddRun batches come unsorted, sorted, later than everything
// queued (appended to the run) and earlier (merged into it).
func TestHeapRandomAgainstSort(t *testing.T) {
	for _, seed := range []uint64{1, 7, 99, 2024} {
		r := rand.New(rand.NewPCG(seed, 3*seed+1))
		var h Heap[*item]
		model := map[*item]int64{}
		nextID := 0
		for step := 0; step < 4000; step++ {
			switch op := r.IntN(100); {
			case op < 10:
				n := r.IntN(20)
				batch := make([]Entry[*item], n)
				base := int64(-100)
				if r.IntN(2) == 0 {
					base = 1000 + int64(step) // after all of the model
				}
				for i := range batch {
					batch[i] = Entry[*item]{base + r.Int64N(300), &item{id: nextID, live: true}}
					nextID++
					model[batch[i].V] = batch[i].When
				}
				if r.IntN(2) == 0 {
					slices.SortFunc(batch, func(a, b Entry[*item]) int { return int(a.When - b.When) })
				}
				h.AddRun(batch)
			case op < 20:
				now := r.Int64N(1500) - 200
				e, ok := h.PopDue(now)
				due := false
				for _, w := range model {
					if w <= now {
						due = true
					}
				}
				if ok != due {
					t.Fatalf("seed %d step %d: PopDue(%d) ok = %v, an entry due: %v", seed, step, now, ok, due)
				}
				if !ok {
					break
				}
				for _, w := range model {
					if w < e.When {
						t.Fatalf("seed %d step %d: PopDue returned %d but %d is queued", seed, step, e.When, w)
					}
				}
				if model[e.V] != e.When {
					t.Fatalf("seed %d step %d: PopDue entry id %d has When %d, added with %d", seed, step, e.V.id, e.When, model[e.V])
				}
				delete(model, e.V)
			case op < 55:
				// Small range of deadlines so ties are frequent.
				when := r.Int64N(500) - 100
				it := &item{id: nextID, live: true}
				nextID++
				h.Push(when, it)
				model[it] = when
			case op < 95:
				e, ok := h.Pop()
				if ok != (len(model) > 0) {
					t.Fatalf("seed %d step %d: Pop ok = %v with %d in model", seed, step, ok, len(model))
				}
				if !ok {
					break
				}
				want, present := model[e.V]
				if !present {
					t.Fatalf("seed %d step %d: Pop returned an entry not in the model (id %d)", seed, step, e.V.id)
				}
				if want != e.When {
					t.Fatalf("seed %d step %d: Pop entry id %d has When %d, pushed with %d", seed, step, e.V.id, e.When, want)
				}
				for _, w := range model {
					if w < e.When {
						t.Fatalf("seed %d step %d: Pop returned %d but %d is queued", seed, step, e.When, w)
					}
				}
				delete(model, e.V)
			default:
				// Kill about a third of the entries, then Filter them out.
				for it := range model {
					if r.IntN(3) == 0 {
						it.live = false
						delete(model, it)
					}
				}
				if p := filter(&h, func(it *item) bool { return it.live }); p != nil {
					t.Fatalf("seed %d step %d: Filter leaving %d entries panicked: %v", seed, step, len(model), p)
				}
				seen := map[*item]bool{}
				for _, e := range append(slices.Clone(h.es), h.run[h.head:]...) {
					it := e.V
					if !it.live {
						t.Fatalf("seed %d step %d: Filter kept dead id %d", seed, step, it.id)
					}
					seen[it] = true
				}
				if len(seen) != len(model) {
					t.Fatalf("seed %d step %d: Filter left %d entries, want %d", seed, step, len(seen), len(model))
				}
				// Dropped tail slots are cleared.
				for _, e := range h.es[len(h.es):cap(h.es)] {
					if e.V != nil {
						t.Fatalf("seed %d step %d: Filter left a reference past Len", seed, step)
					}
				}
				for _, e := range h.run[len(h.run):cap(h.run)] {
					if e.V != nil {
						t.Fatalf("seed %d step %d: Filter left a reference past the run", seed, step)
					}
				}
			}
			verify(t, step, &h)
			if h.Len() != len(model) {
				t.Fatalf("seed %d step %d: Len = %d, model %d", seed, step, h.Len(), len(model))
			}
			if e, ok := h.Peek(); ok {
				for _, w := range model {
					if w < e.When {
						t.Fatalf("seed %d step %d: Peek %d but %d is queued", seed, step, e.When, w)
					}
				}
			}
		}
	}
}

// TestHeapFilter keeps exactly the entries keep selects, whatever their
// number, including none at all.
func TestHeapFilter(t *testing.T) {
	cases := []struct {
		name string
		n    int
		keep func(v int) bool
	}{
		{"empty heap", 0, func(int) bool { return true }},
		{"keep one of one", 1, func(int) bool { return true }},
		{"keep none of one", 1, func(int) bool { return false }},
		{"keep none of two", 2, func(int) bool { return false }},
		{"keep none of many", 100, func(int) bool { return false }},
		{"keep all", 100, func(int) bool { return true }},
		{"keep odd", 100, func(v int) bool { return v%2 == 1 }},
		{"keep first", 100, func(v int) bool { return v == 0 }},
		{"keep last five", 100, func(v int) bool { return v >= 95 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h Heap[int]
			var want []int64
			r := rand.New(rand.NewPCG(uint64(c.n), 9))
			for i := 0; i < c.n; i++ {
				w := r.Int64N(50)
				h.Push(w, i)
				if c.keep(i) {
					want = append(want, w)
				}
			}
			if p := filter(&h, c.keep); p != nil {
				t.Fatalf("Filter panicked with %d of %d entries kept: %v", len(want), c.n, p)
			}
			verify0(t, 0, &h)
			if h.Len() != len(want) {
				t.Fatalf("Len after Filter = %d, want %d", h.Len(), len(want))
			}
			slices.Sort(want)
			for i, w := range want {
				e, ok := h.Pop()
				if !ok || e.When != w || !c.keep(e.V) {
					t.Fatalf("pop %d = %+v %v, want When %d of a kept entry", i, e, ok, w)
				}
				verify0(t, i, &h)
			}
			if _, ok := h.Pop(); ok {
				t.Fatal("heap not empty after popping the kept entries")
			}
		})
	}
}

func verify(t *testing.T, step int, h *Heap[*item]) {
	t.Helper()
	if i := h.Verify(); i != -1 {
		t.Fatalf("step %d: heap property broken at index %d", step, i)
	}
}

// filter runs h.Filter and returns what it panicked with, if anything, so
// that a broken Filter fails one test instead of the whole binary.
func filter[T any](h *Heap[T], keep func(T) bool) (p any) {
	defer func() { p = recover() }()
	h.Filter(keep)
	return nil
}

// TestHeapRunBesideTree: a run of entries all due at one instant
// leaves through the run, in due order, with the tree's entries
// interleaved by When, and a spent run holds no references.
func TestHeapRunBesideTree(t *testing.T) {
	var h Heap[int]
	run := []Entry[int]{{30, 3}, {10, 1}, {20, 2}, {20, 22}, {40, 4}}
	h.AddRun(run)
	h.Push(15, 15)
	h.Push(35, 35)
	h.Push(5, 5)
	if h.Len() != 8 {
		t.Fatalf("Len = %d, want 8", h.Len())
	}
	verify0(t, 0, &h)
	if e, ok := h.PopDue(4); ok {
		t.Fatalf("PopDue(4) = %+v, nothing is due before 5", e)
	}
	var got []int64
	for {
		e, ok := h.PopDue(40)
		if !ok {
			break
		}
		got = append(got, e.When)
		verify0(t, len(got), &h)
	}
	if want := []int64{5, 10, 15, 20, 20, 30, 35, 40}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if h.run != nil || h.Len() != 0 {
		t.Fatalf("spent run kept: %v (Len %d)", h.run, h.Len())
	}
	for _, e := range run {
		if e.V != 0 {
			t.Fatalf("the run's slots still hold %+v after being popped", e)
		}
	}
}

// TestVerifyDetectsUnsortedRun: Verify checks the run's order too.
func TestVerifyDetectsUnsortedRun(t *testing.T) {
	var h Heap[int]
	h.Push(1, 1)
	h.AddRun([]Entry[int]{{1, 1}, {2, 2}, {3, 3}})
	h.run[2].When = 0
	if got := h.Verify(); got != 3 {
		t.Fatalf("Verify() = %d, want 3 (tree of 1, then the run's third entry)", got)
	}
}

// TestHeapClearEmptiesRun: Clear calls fn for the run's entries too.
func TestHeapClearEmptiesRun(t *testing.T) {
	var h Heap[*item]
	var its []*item
	for i := 0; i < 10; i++ {
		its = append(its, &item{id: i, live: true})
	}
	h.Push(1, its[0])
	h.AddRun([]Entry[*item]{{3, its[1]}, {2, its[2]}})
	h.Pop() // its[0]
	called := 0
	h.Clear(func(it *item) { called++; it.live = false })
	if called != 2 || its[1].live || its[2].live || h.Len() != 0 {
		t.Fatalf("Clear called fn %d times (want 2), Len %d", called, h.Len())
	}
	if _, ok := h.Pop(); ok {
		t.Fatal("Pop after Clear found an entry")
	}
}

func BenchmarkHeapBurst(b *testing.B) {
	const n = 50000
	r := rand.New(rand.NewPCG(3, 4))
	whens := make([]int64, n)
	for i := range whens {
		whens[i] = 1000 + r.Int64N(100)
	}
	b.Run("tree", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var h Heap[int]
			for j, w := range whens {
				h.Push(w, j)
			}
			for {
				if _, ok := h.PopDue(2000); !ok {
					break
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
	})
	b.Run("run", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var h Heap[int]
			es := make([]Entry[int], n)
			for j, w := range whens {
				es[j] = Entry[int]{w, j}
			}
			h.AddRun(es)
			for {
				if _, ok := h.PopDue(2000); !ok {
					break
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
	})
}
