// Package mpsc provides Queue, a bounded lock-free multi-producer
// single-consumer queue.
//
// It is the inbox of an event loop: any goroutine may push, only the loop
// pops. Each slot carries the sequence number of the value in it, which
// tells the consumer whether that value is published (after Dmitry Vyukov's
// bounded array queue); a slot is free for a producer once the consumer's
// committed position has passed the slot's previous lap. Pushing costs one
// compare-and-swap on the tail and one store that publishes the slot;
// popping costs no atomic write at all, because the consumer publishes its
// position once per batch (Commit). Nothing allocates after New.
//
// A full queue makes TryPush return false instead of blocking, so the caller
// chooses: an event loop keeps the value in a local overflow, an outside
// goroutine backs off and retries.
package mpsc

import (
	"sync/atomic"
)

// cacheLine pads the hot counters apart so producers (tail) and the consumer
// (head) do not false-share. 64 bytes is the line size of amd64 and arm64
// (128 on some arm64 parts, where the padding only halves the benefit).
const cacheLine = 64

type slot[T any] struct {
	seq atomic.Uint64
	val T
}

// Queue is a bounded MPSC queue. Create it with New; the zero value is not
// usable (it has no buffer). Push methods are safe from any goroutine; Pop,
// Commit and the consumer-side accessors must be called by one goroutine.
type Queue[T any] struct {
	_    [cacheLine]byte
	tail atomic.Uint64 // next position to reserve; producers only
	_    [cacheLine - 8]byte
	// popped is head published for producers (fullness) and other
	// goroutines (stats, quiescence checks); the consumer stores it once
	// per batch in Commit, so the line stays shared between batches.
	popped atomic.Uint64
	_      [cacheLine - 8]byte
	mask   uint64 // read-only after New
	slots  []slot[T]
	_      [cacheLine - 32]byte
	// The consumer's own line: it writes head per value, which must not
	// evict what producers read per push (popped, mask, slots).
	head      uint64 // next position to pop
	committed uint64 // head at the last Commit
	_         [cacheLine - 16]byte
}

// New returns a queue holding at least capacity values (rounded up to a
// power of two, minimum 2).
func New[T any](capacity int) *Queue[T] {
	c := 2
	for c < capacity {
		c <<= 1
	}
	return &Queue[T]{mask: uint64(c - 1), slots: make([]slot[T], c)}
}

// Cap returns the capacity.
func (q *Queue[T]) Cap() int { return len(q.slots) }

// TryPush appends *v and reports whether there was room. It never blocks.
// Safe from any goroutine.
//
// Fullness is judged against the consumer's committed position, so the
// consumer pays no atomic store per value; it must Commit after each batch
// or producers will see the queue fill up.
func (q *Queue[T]) TryPush(v *T) bool {
	s, pos, ok := q.TryReserve()
	if ok {
		*s = *v
		q.Publish(pos)
	}
	return ok
}

// TryReserve reserves the next position and returns its slot, to be
// filled in place and then published with Publish(pos); ok is false when
// the queue is full. The consumer stops at a reserved slot until it is
// published, so the caller must publish it straight away (nothing that
// can block or panic in between). Safe from any goroutine.
func (q *Queue[T]) TryReserve() (s *T, pos uint64, ok bool) {
	for {
		pos = q.tail.Load()
		if pos-q.popped.Load() >= uint64(len(q.slots)) {
			return nil, 0, false
		}
		if q.tail.CompareAndSwap(pos, pos+1) {
			return &q.slots[pos&q.mask].val, pos, true
		}
	}
}

// Publish hands the slot reserved at pos to the consumer.
func (q *Queue[T]) Publish(pos uint64) {
	q.slots[pos&q.mask].seq.Store(pos + 1)
}

// Pop removes the oldest published value into *out. It reports false when
// the queue is empty or the oldest reserved slot is not yet published (its
// producer is between reserving and writing). Consumer only.
func (q *Queue[T]) Pop(out *T) bool {
	s := &q.slots[q.head&q.mask]
	if s.seq.Load() != q.head+1 {
		return false
	}
	var zero T
	*out = s.val
	s.val = zero // drop references held by the slot
	q.head++
	return true
}

// Peek returns the oldest published value in place, or nil when there is
// none. The pointer is valid until Advance. Consumer only. Peek and Advance
// let the consumer move a value straight to its destination without an
// intermediate copy.
func (q *Queue[T]) Peek() *T {
	s := &q.slots[q.head&q.mask]
	if s.seq.Load() != q.head+1 {
		return nil
	}
	return &s.val
}

// Advance clears the slot Peek returned and moves past it. Consumer only.
func (q *Queue[T]) Advance() {
	var zero T
	q.slots[q.head&q.mask].val = zero
	q.head++
}

// Head returns the position of the next value to pop. Consumer only.
func (q *Queue[T]) Head() uint64 { return q.head }

// PublishedAt reports whether the value at position pos has been
// published. Safe from any goroutine: with pos taken from Head before the
// consumer hands its role to another goroutine, it tells the one handing
// over whether a value arrived after it last looked, without reading the
// consumer's position again. It stays true after the value is popped,
// until the slot is reused a lap later.
func (q *Queue[T]) PublishedAt(pos uint64) bool {
	return q.slots[pos&q.mask].seq.Load() == pos+1
}

// Drained reports whether every reserved value has been popped: no value is
// published and none is being written. Consumer only.
func (q *Queue[T]) Drained() bool { return q.tail.Load() == q.head }

// Commit publishes the consumer's position for producers and for Popped
// readers. Consumer only; call it once per batch of pops. A batch that
// popped nothing stores nothing, so a consumer polling an empty queue does
// not keep taking the line producers read.
func (q *Queue[T]) Commit() {
	if q.head != q.committed {
		q.committed = q.head
		q.popped.Store(q.head)
	}
}

// Pushed returns how many values were ever reserved by producers.
// Safe from any goroutine.
func (q *Queue[T]) Pushed() uint64 { return q.tail.Load() }

// Popped returns how many values the consumer has committed as popped.
// Safe from any goroutine.
func (q *Queue[T]) Popped() uint64 { return q.popped.Load() }

// Pending reports whether a value has been reserved and not yet popped
// (published or still being written). Consumer only: it compares the tail
// with the consumer's own head, so it is exact for the consumer.
func (q *Queue[T]) Pending() bool { return q.tail.Load() != q.head }

// Len returns an estimate of the number of queued values. Safe from any
// goroutine; exact when called by the consumer after Commit.
func (q *Queue[T]) Len() int {
	t, h := q.tail.Load(), q.popped.Load()
	if t < h {
		return 0
	}
	return int(t - h)
}
