package pool

import (
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"
)

// Size classes of Buffers: every power of two from MinBufferSize to
// MaxBufferSize.
const (
	// MinBufferSize is the smallest size class, 64 bytes.
	MinBufferSize = 1 << minClassShift
	// MaxBufferSize is the largest size class, 64 KiB. Larger requests are
	// served unpooled (see Buffers.Get).
	MaxBufferSize = 1 << maxClassShift

	minClassShift = 6
	maxClassShift = 16
	numClasses    = maxClassShift - minClassShift + 1

	// unpooled marks a Buffer larger than MaxBufferSize.
	unpooled = -1
)

// BufferStats counts the traffic of a Buffers.
type BufferStats struct {
	// Gets counts buffers handed out, oversized ones included.
	Gets uint64
	// Returns counts buffers given back to their size class by a final
	// Release.
	Returns uint64
	// Live counts buffers handed out whose last reference is not released
	// yet.
	Live int64
	// Allocs counts Gets that allocated a new buffer (a size-class miss or
	// an oversized request).
	Allocs uint64
	// Oversized counts Gets larger than MaxBufferSize, served unpooled.
	Oversized uint64
}

// Buffers is a size-classed pool of reference-counted byte buffers. Each
// class is a sync.Pool, so Buffers holds no memory that the garbage collector
// cannot reclaim.
//
// The zero value is ready to use. A Buffers must not be copied after first
// use.
//
// Concurrency-safe: Get and Stats may be called from any goroutine.
type Buffers struct {
	classes [numClasses]sync.Pool // of *Buffer; class i holds MinBufferSize<<i bytes

	gets      atomic.Uint64
	returns   atomic.Uint64 // final Releases of pooled buffers
	discards  atomic.Uint64 // final Releases of oversized buffers
	allocs    atomic.Uint64
	oversized atomic.Uint64

	// onReturn, when set (by tests only), sees every buffer that goes back
	// to a class, after its last Release and before any Get can reuse it.
	onReturn func(*Buffer)
}

// Get returns a buffer whose Bytes has length n, holding one reference that
// the caller owns. Its contents are unspecified (not zeroed): write before
// reading.
//
// A request larger than MaxBufferSize does not fail: it is served by a fresh
// allocation that Release leaves to the garbage collector instead of pooling
// (counted in Stats as Oversized). Callers that must bound payload sizes
// check n themselves before calling Get.
//
// Get panics if n is negative, as make does.
//
// Concurrency-safe.
func (bs *Buffers) Get(n int) *Buffer {
	if n < 0 {
		panic("pool: Buffers.Get: negative size " + strconv.Itoa(n))
	}
	bs.gets.Add(1)
	if n > MaxBufferSize {
		bs.oversized.Add(1)
		bs.allocs.Add(1)
		b := &Buffer{buf: make([]byte, n), class: unpooled, owner: bs}
		b.n = n
		b.refs.Store(1)
		return b
	}
	c := classOf(n)
	b, _ := bs.classes[c].Get().(*Buffer)
	if b == nil {
		bs.allocs.Add(1)
		b = &Buffer{buf: make([]byte, MinBufferSize<<c), class: int8(c), owner: bs}
	}
	b.n = n
	b.refs.Store(1)
	return b
}

// Stats returns the counters. Each is read atomically, but not all at the
// same instant; Live is derived so that it never reads below zero.
//
// Concurrency-safe.
func (bs *Buffers) Stats() BufferStats {
	// Read the release counters before gets: gets only grows, so Live
	// computed this way is never negative.
	returns := bs.returns.Load()
	discards := bs.discards.Load()
	gets := bs.gets.Load()
	return BufferStats{
		Gets:      gets,
		Returns:   returns,
		Live:      int64(gets - returns - discards),
		Allocs:    bs.allocs.Load(),
		Oversized: bs.oversized.Load(),
	}
}

// put takes back b after its last Release.
func (bs *Buffers) put(b *Buffer) {
	if b.class == unpooled {
		bs.discards.Add(1)
		return
	}
	if bs.onReturn != nil {
		bs.onReturn(b)
	}
	bs.returns.Add(1)
	bs.classes[b.class].Put(b)
}

// classOf returns the index of the smallest class that holds n bytes,
// for 0 <= n <= MaxBufferSize.
func classOf(n int) int {
	if n <= MinBufferSize {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// Buffer is a byte buffer from Buffers with a reference count.
//
// The contract: Get returns a Buffer holding one reference. Whoever shares it
// calls Retain first, once per additional holder; every holder calls Release
// exactly once when it has finished reading. The last Release returns the
// buffer to its size class, and from then on neither the Buffer nor any
// slice obtained from Bytes may be used: the memory may already belong to
// another Get. Holders treat the bytes as read-only once the buffer is
// shared.
//
// Concurrency-safe: Retain and Release may be called from any goroutine;
// Bytes and Len may be called by any holder of a reference.
type Buffer struct {
	buf   []byte       // the whole class-sized allocation
	n     int          // length requested from Get
	refs  atomic.Int32 // outstanding references; 0 once returned
	class int8         // index in owner.classes, or unpooled
	owner *Buffers
}

// Bytes returns the buffer's contents, of the length requested from Get. The
// slice is valid only until the caller's reference is released. Its capacity
// is capped at its length, so appending to it copies instead of writing past
// the end.
func (b *Buffer) Bytes() []byte { return b.buf[:b.n:b.n] }

// Len returns len(b.Bytes()).
func (b *Buffer) Len() int { return b.n }

// Retain adds k references, one for each additional holder, for example
// before publishing the buffer to k more subscribers. The caller must itself
// hold a reference. Retain(0) does nothing.
//
// Retain panics if k is negative or if the buffer was already fully released:
// both are misuse, as releasing a semaphore more than it was acquired is.
func (b *Buffer) Retain(k int) {
	if k < 0 {
		panic("pool: Buffer.Retain: negative count " + strconv.Itoa(k))
	}
	if k == 0 {
		return
	}
	if prev := b.refs.Add(int32(k)) - int32(k); prev <= 0 {
		panic("pool: Buffer.Retain after the final Release")
	}
}

// Release drops one reference. The release that drops the last one returns
// the buffer to its size class (or, for an oversized buffer, to the garbage
// collector); the caller must not use the buffer or its bytes afterwards.
//
// Release panics if the buffer is released more times than it was retained
// (counting the reference Get gave).
func (b *Buffer) Release() {
	switch refs := b.refs.Add(-1); {
	case refs == 0:
		b.owner.put(b)
	case refs < 0:
		panic("pool: Buffer released more times than retained")
	}
}
