// Package timerheap provides Heap, a 4-ary min-heap of deadlines.
//
// It is laid out like the Go runtime's timer heap: entries are {when, value}
// pairs stored inline, so sifting compares integers without following
// pointers, and a 4-ary tree halves the depth of a binary one. Removal is
// lazy: owners mark cancelled entries and skip them when they surface, and
// compact the heap with Filter once dead entries pass a fraction of it.
//
// Beside the tree a Heap keeps a sorted run: a slice of entries in due
// order, consumed front to back, which AddRun fills with a whole batch at
// once (a timing wheel's bucket). Peek and Pop take the earlier of the
// tree's minimum and the run's head, so a batch of n entries costs one
// sort when it is added and nothing per entry when it comes due: no
// sifting, however many of them are due at one instant.
//
// A Heap has one owner and is not safe for concurrent use.
package timerheap

import "slices"

// Entry is one deadline and the value it belongs to.
type Entry[T any] struct {
	When int64
	V    T
}

// Heap is a 4-ary min-heap ordered by Entry.When. The zero value is empty
// and ready to use.
type Heap[T any] struct {
	es   []Entry[T] // the 4-ary tree
	run  []Entry[T] // the sorted run: run[head:] in due order
	head int
}

// Len returns the number of entries, live or not, in the tree and the run.
func (h *Heap[T]) Len() int { return len(h.es) + len(h.run) - h.head }

// AddRun adds the entries of es at once and takes es over: the caller
// must not use it again. They are sorted by When (entries with equal When
// keep no particular order, as in the tree) and kept as a run beside the
// tree, merged with the run already there. A batch whose entries are all
// due no earlier than the last of the run, as the buckets of a timing
// wheel are when they come in order, is appended without a merge.
func (h *Heap[T]) AddRun(es []Entry[T]) {
	if len(es) == 0 {
		return
	}
	cmp := func(a, b Entry[T]) int {
		switch {
		case a.When < b.When:
			return -1
		case a.When > b.When:
			return 1
		}
		return 0
	}
	if !slices.IsSortedFunc(es, cmp) {
		slices.SortFunc(es, cmp)
	}
	live := h.run[h.head:]
	switch {
	case len(live) == 0:
		clear(h.run[:h.head])
		h.run, h.head = es, 0
	case live[len(live)-1].When <= es[0].When:
		if h.head > 0 && h.head >= len(live) {
			// More of the slice is consumed than live: move the live part
			// down instead of growing behind a dead prefix.
			n := copy(h.run, live)
			clear(h.run[n:])
			h.run, h.head = h.run[:n], 0
		}
		h.run = append(h.run, es...)
	default:
		merged := make([]Entry[T], 0, len(live)+len(es))
		i, j := 0, 0
		for i < len(live) && j < len(es) {
			if es[j].When < live[i].When {
				merged = append(merged, es[j])
				j++
			} else {
				merged = append(merged, live[i])
				i++
			}
		}
		merged = append(merged, live[i:]...)
		merged = append(merged, es[j:]...)
		clear(h.run)
		h.run, h.head = merged, 0
	}
}

// fromRun reports whether the earliest entry is the run's head rather
// than the tree's minimum; there is at least one entry.
func (h *Heap[T]) fromRun() bool {
	if h.head == len(h.run) {
		return false
	}
	return len(h.es) == 0 || h.run[h.head].When <= h.es[0].When
}

// popRun removes the run's head.
func (h *Heap[T]) popRun() Entry[T] {
	e := h.run[h.head]
	h.run[h.head] = Entry[T]{}
	h.head++
	if h.head == len(h.run) {
		h.run, h.head = nil, 0 // a spent run keeps no memory
	}
	return e
}

// Push adds an entry.
func (h *Heap[T]) Push(when int64, v T) {
	h.es = append(h.es, Entry[T]{when, v})
	h.siftUp(len(h.es) - 1)
}

// Peek returns the earliest entry. ok is false when the heap is empty.
func (h *Heap[T]) Peek() (e Entry[T], ok bool) {
	if h.fromRun() {
		return h.run[h.head], true
	}
	if len(h.es) == 0 {
		return e, false
	}
	return h.es[0], true
}

// Pop removes and returns the earliest entry.
func (h *Heap[T]) Pop() (e Entry[T], ok bool) {
	if h.fromRun() {
		return h.popRun(), true
	}
	return h.popTree()
}

// PopDue removes and returns the earliest entry if it is due at now
// (When ≤ now); ok is false when there is none. It is Peek and Pop in one.
func (h *Heap[T]) PopDue(now int64) (e Entry[T], ok bool) {
	if h.fromRun() {
		if h.run[h.head].When > now {
			return e, false
		}
		return h.popRun(), true
	}
	if len(h.es) == 0 || h.es[0].When > now {
		return e, false
	}
	return h.popTree()
}

func (h *Heap[T]) popTree() (e Entry[T], ok bool) {
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
	r := 0
	for i := h.head; i < len(h.run); i++ {
		if keep(h.run[i].V) {
			h.run[r] = h.run[i]
			r++
		}
	}
	clear(h.run[r:])
	h.run, h.head = h.run[:r], 0
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
		for i := h.head; i < len(h.run); i++ {
			fn(h.run[i].V)
		}
	}
	clear(h.es)
	h.es = h.es[:0]
	clear(h.run)
	h.run, h.head = h.run[:0], 0
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

// Verify checks the heap property of the tree and the order of the run,
// and returns the index of the first entry that breaks either (an index
// into the tree, or len of the tree plus the position in the run), or -1.
// Tests call it after every operation.
func (h *Heap[T]) Verify() int {
	for i := 1; i < len(h.es); i++ {
		if h.es[(i-1)/4].When > h.es[i].When {
			return i
		}
	}
	for i := h.head + 1; i < len(h.run); i++ {
		if h.run[i-1].When > h.run[i].When {
			return len(h.es) + i - h.head
		}
	}
	return -1
}
