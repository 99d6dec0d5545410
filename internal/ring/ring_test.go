package ring

import (
	"math/rand/v2"
	"testing"
)

// check compares d with the slice model and verifies the invariants.
func check[T comparable](t *testing.T, step int, d *Deque[T], model []T) {
	t.Helper()
	if err := d.verify(); err != nil {
		t.Fatalf("step %d: verify: %v", step, err)
	}
	if d.Len() != len(model) {
		t.Fatalf("step %d: Len = %d, model has %d", step, d.Len(), len(model))
	}
	for i, want := range model {
		if got := d.buf[(d.head+i)&(len(d.buf)-1)]; got != want {
			t.Fatalf("step %d: element %d = %v, want %v", step, i, got, want)
		}
	}
	f := d.Front()
	switch {
	case len(model) == 0 && f != nil:
		t.Fatalf("step %d: Front of empty deque = %v, want nil", step, *f)
	case len(model) > 0 && (f == nil || *f != model[0]):
		t.Fatalf("step %d: Front = %v, want %v", step, f, model[0])
	}
}

func TestDequeRandomAgainstModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42, 1234} {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		var d Deque[int]
		var model []int
		next := 0
		for step := 0; step < 5000; step++ {
			// Grow for the first half, then drain: the deque wraps,
			// grows while wrapped, and empties again.
			push := 60
			if step >= 2500 {
				push = 40
			}
			switch op := r.IntN(100); {
			case op < push:
				d.PushBack(next)
				model = append(model, next)
				next++
			default:
				v, ok := d.PopFront()
				if ok != (len(model) > 0) {
					t.Fatalf("seed %d step %d: PopFront ok = %v with %d in model", seed, step, ok, len(model))
				}
				if ok {
					if v != model[0] {
						t.Fatalf("seed %d step %d: PopFront = %d, want %d", seed, step, v, model[0])
					}
					model = model[1:]
				}
			}
			check(t, step, &d, model)
		}
	}
}

func TestDequeZeroValue(t *testing.T) {
	var d Deque[string]
	if d.Len() != 0 || len(d.buf) != 0 || d.Front() != nil {
		t.Fatalf("zero Deque: Len %d buffer %d Front %v", d.Len(), len(d.buf), d.Front())
	}
	if _, ok := d.PopFront(); ok {
		t.Fatal("PopFront on zero Deque reported ok")
	}
	if err := d.verify(); err != nil {
		t.Fatal(err)
	}
	d.PushBack("a")
	if len(d.buf) != minCap {
		t.Fatalf("first allocation holds %d, want %d", len(d.buf), minCap)
	}
}

// TestDequeWrapAround moves the head around the buffer many times at a
// fixed capacity, then grows while the contents wrap, so both copy runs of
// grow are exercised.
func TestDequeWrapAround(t *testing.T) {
	var d Deque[int]
	var model []int
	for i := 0; i < 6; i++ {
		d.PushBack(i)
		model = append(model, i)
	}
	c := len(d.buf)
	next := 6
	for step := 0; step < 10*c+3; step++ {
		v, _ := d.PopFront()
		if v != model[0] {
			t.Fatalf("step %d: PopFront = %d, want %d", step, v, model[0])
		}
		model = model[1:]
		d.PushBack(next)
		model = append(model, next)
		next++
		if len(d.buf) != c {
			t.Fatalf("step %d: buffer grew to %d at constant length", step, len(d.buf))
		}
		check(t, step, &d, model)
	}
	// Fill while wrapped: the head is not at 0 and grow must unwrap.
	if d.head == 0 {
		t.Fatal("test setup: head is 0, contents do not wrap")
	}
	for d.Len() < 5*c {
		d.PushBack(next)
		model = append(model, next)
		next++
		check(t, next, &d, model)
	}
}

// TestDequePopDropsReferences: popped slots are zeroed, so the deque keeps
// nothing alive that its owner has taken out.
func TestDequePopDropsReferences(t *testing.T) {
	var d Deque[*int]
	for i := 0; i < 20; i++ {
		v := i
		d.PushBack(&v)
	}
	for i := 0; i < 5; i++ {
		d.PopFront()
	}
	for i := range d.buf {
		in := (i-d.head)&(len(d.buf)-1) < d.n
		if !in && d.buf[i] != nil {
			t.Fatalf("slot %d outside the live range still holds a pointer", i)
		}
	}
	for d.Len() > 0 {
		d.PopFront()
	}
	for i := range d.buf {
		if d.buf[i] != nil {
			t.Fatalf("slot %d of an emptied deque still holds a pointer", i)
		}
	}
	if err := d.verify(); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDetectsCorruption(t *testing.T) {
	cases := []struct {
		name string
		d    Deque[int]
		want error
	}{
		{"len beyond buffer", Deque[int]{buf: make([]int, 8), n: 9}, errLen},
		{"negative len", Deque[int]{buf: make([]int, 8), n: -1}, errLen},
		{"not power of two", Deque[int]{buf: make([]int, 6)}, errPow2},
		{"head outside", Deque[int]{buf: make([]int, 8), head: 8}, errHead},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.d.verify(); got != c.want {
				t.Fatalf("verify() = %v, want %v", got, c.want)
			}
		})
	}
}

func TestDequeSteadyStateAllocatesNothing(t *testing.T) {
	var d Deque[[2]int64]
	for i := 0; i < 64; i++ {
		d.PushBack([2]int64{})
	}
	for d.Len() > 0 {
		d.PopFront()
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for i := 0; i < 32; i++ {
			d.PushBack([2]int64{int64(i)})
		}
		for i := 0; i < 32; i++ {
			d.PopFront()
		}
	})
	if allocs != 0 {
		t.Fatalf("PushBack/PopFront at working size: %v allocs per run, want 0", allocs)
	}
}

func BenchmarkDeque(b *testing.B) {
	b.Run("PushBackPopFront", func(b *testing.B) {
		var d Deque[int]
		d.PushBack(0)
		d.PopFront()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			d.PushBack(i)
			d.PopFront()
		}
	})
	b.Run("Burst64", func(b *testing.B) {
		var d Deque[int]
		for i := 0; i < 64; i++ {
			d.PushBack(i)
		}
		for d.Len() > 0 {
			d.PopFront()
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for j := 0; j < 64; j++ {
				d.PushBack(j)
			}
			for j := 0; j < 64; j++ {
				d.PopFront()
			}
		}
	})
	// Baseline: a slice used as a FIFO queue.
	b.Run("SliceBaseline", func(b *testing.B) {
		base := make([]int, 0, 64)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			q := base[:0]
			for j := 0; j < 64; j++ {
				q = append(q, j)
			}
			for len(q) > 0 {
				q = q[1:]
			}
		}
	})
}
