// Package ring provides Deque, a growable ring-buffer queue: values go in at
// the back and come out at the front.
//
// It is the building block of the engine loop's ready queue and of its
// outboxes (posts waiting for room in another loop's inbox). It is not safe
// for concurrent use: every Deque has one owner (an event loop), so it needs
// no locks and no atomics. Compared with container/list it stores values
// inline in one power-of-two array, so pushes and pops allocate nothing once
// the buffer has grown to its working size. It offers only what the engine
// uses: push at the back, peek and pop at the front.
package ring

// minCap is the first allocation of a Deque that grows from empty.
const minCap = 8

// Deque is a FIFO queue over a power-of-two ring buffer.
// The zero value is an empty deque ready to use; it allocates on first push.
// A Deque must not be copied after first use.
type Deque[T any] struct {
	buf  []T
	head int // index of the front element
	n    int // number of elements
}

// Len returns the number of elements.
func (d *Deque[T]) Len() int { return d.n }

// PushBack appends v at the back.
func (d *Deque[T]) PushBack(v T) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.buf[(d.head+d.n)&(len(d.buf)-1)] = v
	d.n++
}

// PopFront removes and returns the front element. ok is false when empty.
// The vacated slot is zeroed so the deque keeps no reference alive.
func (d *Deque[T]) PopFront() (v T, ok bool) {
	if d.n == 0 {
		return v, false
	}
	var zero T
	v = d.buf[d.head]
	d.buf[d.head] = zero
	d.head = (d.head + 1) & (len(d.buf) - 1)
	d.n--
	return v, true
}

// Front returns a pointer to the front element, or nil when empty. The
// pointer is valid until the next push or pop.
func (d *Deque[T]) Front() *T {
	if d.n == 0 {
		return nil
	}
	return &d.buf[d.head]
}

func (d *Deque[T]) grow() {
	c := len(d.buf) * 2
	if c == 0 {
		c = minCap
	}
	buf := make([]T, c)
	if d.n > 0 {
		// Copy in two runs: head..end and 0..wrap.
		k := copy(buf, d.buf[d.head:])
		if k < d.n {
			copy(buf[k:], d.buf[:d.n-k])
		}
	}
	d.buf = buf
	d.head = 0
}

// verify checks the structural invariants; tests call it after every step.
func (d *Deque[T]) verify() error {
	if d.n < 0 || d.n > len(d.buf) {
		return errLen
	}
	if len(d.buf)&(len(d.buf)-1) != 0 {
		return errPow2
	}
	if len(d.buf) > 0 && (d.head < 0 || d.head >= len(d.buf)) {
		return errHead
	}
	return nil
}

type invariantError string

func (e invariantError) Error() string { return string(e) }

const (
	errLen  invariantError = "ring: length outside buffer"
	errPow2 invariantError = "ring: capacity not a power of two"
	errHead invariantError = "ring: head outside buffer"
)
