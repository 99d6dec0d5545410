// Package timerheap provides Heap, a 4-ary min-heap of deadlines.
//
// It is laid out like the Go runtime's timer heap: entries are {when, value}
// pairs stored inline, so sifting compares integers without following
// pointers, and a 4-ary tree halves the depth of a binary one. Removal is
// lazy: owners mark cancelled entries and skip them when they surface, and
// compact the heap with Filter once dead entries pass a fraction of it.
//
// A Heap has one owner and is not safe for concurrent use.
package timerheap

// Entry is one deadline and the value it belongs to.
type Entry[T any] struct {
	When int64
	V    T
}

// Heap is a 4-ary min-heap ordered by Entry.When. The zero value is empty
// and ready to use.
type Heap[T any] struct {
	es []Entry[T]
}

// Len returns the number of entries, live or not.
func (h *Heap[T]) Len() int { return len(h.es) }

// Push adds an entry.
func (h *Heap[T]) Push(when int64, v T) {
	h.es = append(h.es, Entry[T]{when, v})
	h.siftUp(len(h.es) - 1)
}

// Peek returns the earliest entry. ok is false when the heap is empty.
func (h *Heap[T]) Peek() (e Entry[T], ok bool) {
	if len(h.es) == 0 {
		return e, false
	}
	return h.es[0], true
}

// Pop removes and returns the earliest entry.
func (h *Heap[T]) Pop() (e Entry[T], ok bool) {
	n := len(h.es)
	if n == 0 {
		return e, false
	}
	e = h.es[0]
	last := n - 1
	h.es[0] = h.es[last]
	h.es[last] = Entry[T]{}
	h.es = h.es[:last]
	if last > 0 {
		h.siftDown(0)
	}
	return e, true
}

// Filter keeps only the entries for which keep returns true and restores the
// heap order in O(n). It is how owners drop cancelled entries in bulk.
func (h *Heap[T]) Filter(keep func(T) bool) {
	j := 0
	for i := range h.es {
		if keep(h.es[i].V) {
			h.es[j] = h.es[i]
			j++
		}
	}
	clear(h.es[j:])
	h.es = h.es[:j]
	if len(h.es) < 2 {
		return
	}
	for i := (len(h.es) - 2) / 4; i >= 0; i-- {
		h.siftDown(i)
	}
}

// Clear removes every entry and calls fn (if not nil) for each.
func (h *Heap[T]) Clear(fn func(T)) {
	if fn != nil {
		for i := range h.es {
			fn(h.es[i].V)
		}
	}
	clear(h.es)
	h.es = h.es[:0]
}

func (h *Heap[T]) siftUp(i int) {
	es := h.es
	e := es[i]
	for i > 0 {
		p := (i - 1) / 4
		if es[p].When <= e.When {
			break
		}
		es[i] = es[p]
		i = p
	}
	es[i] = e
}

func (h *Heap[T]) siftDown(i int) {
	es := h.es
	n := len(es)
	e := es[i]
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if es[k].When < es[m].When {
				m = k
			}
		}
		if es[m].When >= e.When {
			break
		}
		es[i] = es[m]
		i = m
	}
	es[i] = e
}

// Verify checks the heap property and returns the index of the first entry
// that breaks it, or -1. Tests call it after every operation.
func (h *Heap[T]) Verify() int {
	for i := 1; i < len(h.es); i++ {
		if h.es[(i-1)/4].When > h.es[i].When {
			return i
		}
	}
	return -1
}
