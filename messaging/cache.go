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
// table. A topic is looked for first in the way picked by its hash, so a hit
// usually costs one load.
//
// Admission. A topic is cached on its second miss, not its first: the first
// only leaves its hash in the set's ghost row (8 hashes per set, the last
// 1024 topics that missed once). So a stream of topics seen once, such as
// ten thousand devices reporting in turn, never evicts the hot topics and
// never allocates an entry; the misses it causes cost a walk of the trie but
// no allocation. This is the doorkeeper of TinyLFU. A topic whose entry is
// merely stale (the subscriptions changed) is readmitted on its first miss.
//
// Replacement. A new entry takes, in order, an empty way, a stale way or a
// random way of its set. Eight ways keep hot topics from evicting each other
// unless more than eight of them hash into one set, and random eviction
// cannot lock two topics into evicting each other for ever.
type cache[T any] struct {
	sets   [cacheSets][cacheWays]atomic.Pointer[cacheEntry[T]]
	ghosts [cacheSets][cacheWays]atomic.Uint64 // hash|1 of topics that missed once; 0 is empty
}

// A cacheEntry is immutable once stored.
type cacheEntry[T any] struct {
	hash  uint64
	gen   uint64
	topic string
	res   []T // shared by every caller: read-only, capacity cut to length
}

// get returns the cached result for topic (hash h) in generation gen. On a
// miss, known reports whether the set holds an entry for topic from an
// older generation.
func (c *cache[T]) get(h, gen uint64, topic string) (res []T, ok, known bool) {
	set := &c.sets[h%cacheSets]
	w := h >> 61 // top 3 bits: the preferred way; the low bits chose the set
	for i := range uint64(cacheWays) {
		e := set[(w+i)%cacheWays].Load()
		if e != nil && e.hash == h && e.topic == topic {
			if e.gen == gen {
				return e.res, true, true
			}
			known = true
		}
	}
	return nil, false, known
}

// admit reports whether a topic (hash h) that missed should be cached now,
// because it missed before and its hash is still a ghost. If not, it makes
// the hash a ghost, in place of a random one.
func (c *cache[T]) admit(h uint64) bool {
	ghosts := &c.ghosts[h%cacheSets]
	tag := h | 1
	for i := range ghosts {
		if ghosts[i].Load() == tag {
			ghosts[i].Store(0)
			return true
		}
	}
	ghosts[rand.Uint64()%cacheWays].Store(tag)
	return false
}

// put stores e in place of, by preference, an entry for the same topic, an
// empty or stale way, or a random way. It drops e if the set already holds a
// newer generation: e was computed from a snapshot that has been replaced.
func (c *cache[T]) put(e *cacheEntry[T]) {
	set := &c.sets[e.hash%cacheSets]
	w, victim := e.hash>>61, -1
	for i := range uint64(cacheWays) {
		j := int((w + i) % cacheWays)
		old := set[j].Load()
		switch {
		case old == nil:
		case old.gen > e.gen:
			return
		case old.hash == e.hash && old.topic == e.topic:
			set[j].Store(e)
			return
		case old.gen == e.gen:
			continue
		}
		if victim < 0 {
			victim = j
		}
	}
	if victim < 0 {
		victim = int(rand.Uint64() % cacheWays)
	}
	set[victim].Store(e)
}
