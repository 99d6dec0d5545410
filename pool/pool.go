package pool

import (
	"sync"
	"sync/atomic"
)

// Stats counts the traffic of a Pool.
type Stats struct {
	// Hits counts Gets served by a recycled object.
	Hits uint64
	// Misses counts Gets that had to construct a new object.
	Misses uint64
	// Puts counts objects given back (nil Puts are ignored and not counted).
	Puts uint64
}

// Pool is a typed object pool over sync.Pool, with a Reset hook and hit/miss
// counters.
//
// The zero value is ready to use: it constructs objects with new(T) and
// resets them to T's zero value. Set New and Reset before the first Get or
// Put and do not change them afterwards. A Pool must not be copied after
// first use.
//
// Concurrency-safe: Get, Put and Stats may be called from any goroutine. Like
// sync.Pool, a Pool keeps objects only until the garbage collector decides
// otherwise, and discards without counting.
//
// Cost: the counters are shared atomics, one per Get and one per Put. Alone
// on a core that roughly doubles the price of a bare sync.Pool (about 28 ns
// against 14 ns per Get/Put pair); when several cores hammer the same Pool
// the counters' cache line bounces between them and dominates (about 100 ns
// against 6 ns on two cores; figures from a 2-core Xeon VM). A single owner
// recycling on a hot path is better served by a slice of free objects of
// its own, with no atomics at all.
type Pool[T any] struct {
	// New constructs an object when the pool is empty. Nil means new(T).
	New func() *T
	// Reset prepares an object for reuse; Put calls it before keeping the
	// object. Nil means *x = T's zero value.
	Reset func(*T)

	p sync.Pool // of *T

	hits   atomic.Uint64
	misses atomic.Uint64
	puts   atomic.Uint64
}

// Get returns a recycled object if one is available, or a new one. A recycled
// object has been through Reset.
//
// Concurrency-safe.
func (p *Pool[T]) Get() *T {
	if x, _ := p.p.Get().(*T); x != nil {
		p.hits.Add(1)
		return x
	}
	p.misses.Add(1)
	if p.New != nil {
		return p.New()
	}
	return new(T)
}

// Put resets x and keeps it for a later Get. Put(nil) does nothing. The caller
// must not use x after Put.
//
// Concurrency-safe.
func (p *Pool[T]) Put(x *T) {
	if x == nil {
		return
	}
	reset(x, p.Reset)
	p.puts.Add(1)
	p.p.Put(x)
}

// Stats returns the pool's counters. Each counter is read atomically, but not
// all of them at the same instant.
//
// Concurrency-safe.
func (p *Pool[T]) Stats() Stats {
	return Stats{Hits: p.hits.Load(), Misses: p.misses.Load(), Puts: p.puts.Load()}
}

// reset applies fn to x, or zeroes *x when fn is nil.
func reset[T any](x *T, fn func(*T)) {
	if fn != nil {
		fn(x)
		return
	}
	var zero T
	*x = zero
}
