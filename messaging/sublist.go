package messaging

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// A Sublist maps subscription patterns to values and finds, for a topic, the
// values of every pattern that matches it. It is the matching core of [Bus],
// generic so that other packages can route to their own types (agent IDs,
// mailboxes) without a Bus.
//
// Matching takes no lock. The list is a trie of immutable nodes published
// through an atomic pointer: [Sublist.Match] loads the current snapshot and
// reads it, while [Sublist.Insert] and [Sublist.Remove] serialize on a mutex,
// copy the path they change, and publish a new snapshot whose generation is
// one higher. Match results are cached per topic in a fixed table of 1024
// entries tagged with the generation they were computed in, so every change
// invalidates them at once; a cached Match allocates nothing. A topic enters
// the cache on its second miss, so topics seen once cannot evict hot ones.
//
// [Sublist.MatchTopic], which takes a topic already split, skips the cache
// while no topic can match two patterns: while no two patterns part, after
// a common prefix, at a wildcard in one and another token in the other ("a.*"
// and "a.b", "a.>" and "a.*"). So it is for any set of exact patterns, or
// "telemetry.*.*", "features.*" and "alerts.>" together: a match is then a
// single slice of the trie, found by a walk that allocates nothing, and
// tens of thousands of distinct topics cost no cache traffic.
//
// A Sublist is a multiset: inserting the same (pattern, value) pair twice
// stores it twice, and Match then returns the value twice.
//
// The zero value is an empty Sublist ready to use. A Sublist must not be
// copied after first use. All methods are safe for concurrent use.
type Sublist[T comparable] struct {
	// mu serializes writers, so that each change starts from the snapshot
	// the previous one published and generations grow by exactly one.
	// Readers never take it.
	mu sync.Mutex
	// snap is the current snapshot, nil until the first Insert. It is
	// stored only with mu held and loaded by anyone.
	snap atomic.Pointer[snapshot[T]]
}

// A snapshot is one generation of a Sublist. It is immutable, except for the
// cache it shares with every other generation of the same list.
type snapshot[T comparable] struct {
	root  *node[T] // nil when the list is empty
	count int
	gen   uint64 // 1 for the first snapshot, then one more per change
	cache *cache[T]
}

// NewSublist returns an empty Sublist. It is the same as new(Sublist[T]).
func NewSublist[T comparable]() *Sublist[T] { return new(Sublist[T]) }

// Insert adds v under pattern (see [ValidatePattern]). It returns an error
// wrapping [ErrInvalidPattern] if pattern is invalid.
//
// Insert is safe for concurrent use; it waits for other writers, never for
// readers.
func (s *Sublist[T]) Insert(pattern string, v T) error {
	// The trie keeps tokens of pattern as keys: copy it so that it does not
	// pin a caller's larger buffer, or change with one built with unsafe.
	return s.insert(strings.Clone(pattern), v)
}

// insert is Insert without the copy, for a pattern the caller owns.
func (s *Sublist[T]) insert(pattern string, v T) error {
	var buf [MaxTokens]string
	toks, err := splitPattern(pattern, buf[:0])
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	s.commit(old, old.trie().insert(toks, v), 1)
	return nil
}

// Remove removes one v from under pattern. It returns an error wrapping
// [ErrNotFound] if v is not there, or [ErrInvalidPattern] if pattern is
// invalid.
//
// Besides copying the trie's path to pattern (O(log n) in the patterns),
// Remove copies the values stored under pattern, since snapshots that
// readers hold must not change: with m values on one pattern it costs O(m),
// and removing all of them one by one O(m²).
//
// Remove is safe for concurrent use; it waits for other writers, never for
// readers.
func (s *Sublist[T]) Remove(pattern string, v T) error {
	var buf [MaxTokens]string
	toks, err := splitPattern(pattern, buf[:0])
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	root, ok := old.trie().remove(toks, v)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, pattern)
	}
	s.commit(old, root, -1)
	return nil
}

// A removal is one (pattern, value) pair for removeAll.
type removal[T comparable] struct {
	pattern string
	v       T
}

// removeAll removes every pair of rs that is present, in one generation, and
// returns how many it removed. Invalid patterns count as absent. A batch
// invalidates the cache once instead of once per pair.
func (s *Sublist[T]) removeAll(rs []removal[T]) int {
	if len(rs) == 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	root, n := old.trie(), 0
	for _, r := range rs {
		var buf [MaxTokens]string
		toks, err := splitPattern(r.pattern, buf[:0])
		if err != nil {
			continue
		}
		var ok bool
		if root, ok = root.remove(toks, r.v); ok {
			n++
		}
	}
	if n > 0 {
		s.commit(old, root, -n)
	}
	return n
}

// commit publishes root, which holds count(old)+delta values, as the next
// generation after old. s.mu must be held, and old must be the current
// snapshot.
func (s *Sublist[T]) commit(old *snapshot[T], root *node[T], delta int) {
	next := &snapshot[T]{root: root, count: delta, gen: 1}
	if old == nil {
		next.cache = new(cache[T])
	} else {
		next.count += old.count
		next.gen += old.gen
		next.cache = old.cache
	}
	s.snap.Store(next)
}

func (sn *snapshot[T]) trie() *node[T] {
	if sn == nil {
		return nil
	}
	return sn.root
}

// Match returns the values of every pattern that matches topic, or nil if
// none does or topic is invalid (see [ValidateTopic]). Values inserted under
// one pattern come in insertion order; the order between patterns is
// unspecified.
//
// The returned slice is shared with every other caller that matches the same
// topic and with the list itself: it is read-only. Do not modify its
// elements. Appending to it is safe (its capacity equals its length, so
// append copies). It is a snapshot: later changes to the list do not change
// it.
//
// Match takes no lock and is safe for concurrent use with every other
// method. A topic is cached from its second Match on (see the package
// documentation); on a cached topic Match allocates nothing, and it is not
// even split. To match one topic against several lists, parse it once into
// a [Topic] and use [Sublist.MatchTopic].
func (s *Sublist[T]) Match(topic string) []T {
	var buf [4][]T
	res, parts, _ := s.lookup(topic, buf[:0])
	if parts != nil {
		return join(parts)
	}
	return res
}

// MatchTopic is [Sublist.Match] for a parsed topic: the same result, without
// validating and splitting the topic again, and with the hashes t recorded
// for an earlier list. It records those it computes, for the next list. An
// empty Topic matches nothing.
//
// A topic already split is walked through the trie about as fast as it is
// found in the cache, so MatchTopic uses the cache only on a list where a
// topic may match patterns stored apart (see the type's documentation), to
// avoid joining their values again; elsewhere it allocates nothing and
// caches nothing, however many distinct topics it sees.
//
// MatchTopic is safe for concurrent use with every method of s; t is the
// caller's own.
func (s *Sublist[T]) MatchTopic(t *Topic) []T {
	var buf [4][]T
	res, parts := s.snap.Load().lookupTopic(t, buf[:0])
	if parts != nil {
		return join(parts)
	}
	return res
}

// lookup finds the values matching topic. It returns them as res when it
// found them in the cache or cached them now, and otherwise as parts,
// appended to buf, whose concatenation is the result: a topic that is not
// cached costs no allocation unless it matches more patterns than buf holds.
// An invalid topic is never cached, so a cache hit proves the topic valid
// without checking it again.
func (s *Sublist[T]) lookup(topic string, buf [][]T) (res []T, parts [][]T, err error) {
	sn := s.snap.Load()
	if sn == nil || sn.root == nil {
		return nil, nil, ValidateTopic(topic)
	}
	h := hashString(topic)
	res, ok, known := sn.cache.get(h, sn.gen, topic)
	if ok {
		return res, nil, nil
	}
	var t Topic
	if err := t.Parse(topic); err != nil {
		return nil, nil, err
	}
	res, parts = sn.fill(&t, h, known, buf)
	return res, parts, nil
}

// lookupTopic is lookup for a parsed topic. Where the trie lets a topic
// match at most one pattern (root.over unset) it walks the trie and returns
// the one slice found, if any, as res, and never touches the cache.
func (sn *snapshot[T]) lookupTopic(t *Topic, buf [][]T) (res []T, parts [][]T) {
	if sn == nil || sn.root == nil || t.n == 0 {
		return nil, nil
	}
	if !sn.root.over {
		if parts = sn.root.match(t, 0, buf); len(parts) == 0 {
			return nil, nil
		}
		p := parts[0] // the only one: see node.over
		return p[:len(p):len(p)], nil
	}
	h := t.topicHash()
	res, ok, known := sn.cache.get(h, sn.gen, t.s)
	if ok {
		return res, nil
	}
	return sn.fill(t, h, known, buf)
}

// fill walks the trie for t (hash h), which missed the cache, and caches
// the result if the cache admits it (known: the set holds a stale entry for
// t). It returns the result as lookup does.
func (sn *snapshot[T]) fill(t *Topic, h uint64, known bool, buf [][]T) (res []T, parts [][]T) {
	parts = sn.root.match(t, 0, buf)
	if !known && !sn.cache.admit(h) {
		return nil, parts
	}
	res = join(parts)
	// Copy the topic for the same reason Insert copies patterns.
	sn.cache.put(&cacheEntry[T]{hash: h, gen: sn.gen, topic: strings.Clone(t.s), res: res})
	return res, nil
}

// Count returns the number of (pattern, value) pairs in the list. It takes no
// lock.
func (s *Sublist[T]) Count() int {
	if sn := s.snap.Load(); sn != nil {
		return sn.count
	}
	return 0
}
