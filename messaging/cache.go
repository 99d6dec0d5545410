package messaging

import (
	"math/rand/v2"
	"sync/atomic"
)

// Size of the match cache: cacheSets sets of cacheWays entries.
const (
	cacheWays = 8
	cacheSets = 128
	// cacheSize is the number of topics whose match results a Sublist keeps.
	// The cache is a fixed table, so it never holds more.
	cacheSize = cacheSets * cacheWays
)

// A cache remembers the results of recent matches, per topic. It is a fixed
// table of atomic pointers to immutable entries, 8-way set associative, so
// that readers and the goroutines that fill it never take a lock, and it can
// neither grow nor need a sweep: nats caps its map at 1024 entries and sweeps
// it back to 512 from a goroutine, this table is simply 1024 slots.
//
// Entries are never updated, only replaced. Each carries the generation of
// the snapshot it was computed from, and a lookup accepts only entries of the
// generation it is reading: a change to the subscriptions bumps the
// generation, which invalidates every entry at once without touching the
// table. Stale entries are the first to be replaced. A topic is looked for
// first in the way picked by its hash, so a hit usually costs one load.
//
// Eight ways per set keep hot topics from evicting each other: a set
// thrashes only when more than eight hot topics hash into it. When a set has
// no free or stale way, a random way is evicted, which cannot lock two topics
// into evicting each other forever.
type cache[T any] struct {
	sets [cacheSets][cacheWays]atomic.Pointer[cacheEntry[T]]
}

// A cacheEntry is immutable once stored.
type cacheEntry[T any] struct {
	hash  uint64
	gen   uint64
	topic string
	res   []T // shared by every caller: read-only, capacity cut to length
}

// get returns the cached result for topic (hash h) in generation gen.
func (c *cache[T]) get(h, gen uint64, topic string) ([]T, bool) {
	set := &c.sets[h%cacheSets]
	w := h >> 61 // top 3 bits: the preferred way; the low bits chose the set
	for i := range uint64(cacheWays) {
		e := set[(w+i)%cacheWays].Load()
		if e != nil && e.hash == h && e.gen == gen && e.topic == topic {
			return e.res, true
		}
	}
	return nil, false
}

// put stores e, replacing in order of preference: an empty way, a way of an
// older generation or holding the same topic, then a random way. It drops e
// if the set already holds a newer generation: e was computed from a
// snapshot that has since been replaced.
func (c *cache[T]) put(e *cacheEntry[T]) {
	set := &c.sets[e.hash%cacheSets]
	w := e.hash >> 61
	for i := range uint64(cacheWays) {
		slot := &set[(w+i)%cacheWays]
		old := slot.Load()
		switch {
		case old == nil || old.gen < e.gen || old.topic == e.topic && old.gen == e.gen:
			slot.Store(e)
			return
		case old.gen > e.gen:
			return
		}
	}
	set[rand.Uint64()%cacheWays].Store(e)
}
