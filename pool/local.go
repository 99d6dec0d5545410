package pool

// DefaultLocalMax is the number of free objects a Local keeps when its Max
// is zero or negative.
const DefaultLocalMax = 256

// Local is a bounded free list for a single owner, typically one event loop:
// a slice used as a stack, with no locks and no atomics.
//
// The zero value is ready to use: it constructs objects with new(T), resets
// them to T's zero value and keeps at most DefaultLocalMax of them. Set New,
// Reset and Max before the first Get or Put and do not change them afterwards.
//
// Not concurrency-safe: every method, Stats included, must be called by the
// owner only (the goroutine that runs the loop). Unlike a Pool, a Local keeps
// its objects across garbage collections, up to Max of them.
type Local[T any] struct {
	// New constructs an object when the free list is empty. Nil means new(T).
	New func() *T
	// Reset prepares an object for reuse; Put calls it on every object it
	// is given. Nil means *x = T's zero value.
	Reset func(*T)
	// Max bounds the free list. Zero or negative means DefaultLocalMax.
	Max int

	free  []*T // the free list; top of the stack at the end
	stats Stats
}

// Get returns the most recently Put object, or a new one if the free list is
// empty.
//
// Owner only.
func (l *Local[T]) Get() *T {
	if n := len(l.free); n > 0 {
		x := l.free[n-1]
		l.free[n-1] = nil // do not keep a reference the owner now holds
		l.free = l.free[:n-1]
		l.stats.Hits++
		return x
	}
	l.stats.Misses++
	if l.New != nil {
		return l.New()
	}
	return new(T)
}

// Put resets x and keeps it if the free list holds fewer than Max objects;
// otherwise x is left to the garbage collector and counted in Drops.
// Put(nil) does nothing. The caller must not use x after Put.
//
// Owner only.
func (l *Local[T]) Put(x *T) {
	if x == nil {
		return
	}
	reset(x, l.Reset)
	l.stats.Puts++
	if len(l.free) >= l.max() {
		l.stats.Drops++
		return
	}
	l.free = append(l.free, x)
}

// Len returns the number of objects on the free list.
//
// Owner only.
func (l *Local[T]) Len() int { return len(l.free) }

// Stats returns the free list's counters.
//
// Owner only: the counters are plain integers, so another goroutine must ask
// the owner (for example with a task posted to its loop) rather than call
// Stats itself.
func (l *Local[T]) Stats() Stats { return l.stats }

func (l *Local[T]) max() int {
	if l.Max > 0 {
		return l.Max
	}
	return DefaultLocalMax
}
