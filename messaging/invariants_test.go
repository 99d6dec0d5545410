package messaging

import (
	"fmt"
	"math/bits"
	"strings"
)

// This file holds the invariant checkers the tests call after changes, as
// container/heap's tests call verify.

// verify checks the structure of m: bitmaps agree with slots, every leaf sits
// where its hash puts it, interior slots lead to nodes that are neither
// empty nor a lone leaf (those fold into the parent), collision nodes hold
// two or more leaves of one hash, and keys are unique. It returns the number
// of entries.
func (m *hamt[V]) verify() (int, error) {
	seen := make(map[string]bool)
	err := m.verifyAt(0, 0, seen)
	return len(seen), err
}

func (m *hamt[V]) verifyAt(shift uint, prefix uint64, seen map[string]bool) error {
	if m == nil {
		return nil
	}
	if len(m.slots) == 0 {
		return fmt.Errorf("hamt: empty node at shift %d", shift)
	}
	leaf := func(s *hslot[V]) error {
		if seen[s.key] {
			return fmt.Errorf("hamt: key %q twice", s.key)
		}
		seen[s.key] = true
		mask := ^uint64(0) // below the last level the whole hash is the path
		if shift < hamtCollide {
			mask = 1<<shift - 1
		}
		if s.hash&mask != prefix {
			return fmt.Errorf("hamt: key %q hash %#x off its path %#x at shift %d", s.key, s.hash, prefix, shift)
		}
		return nil
	}
	if shift >= hamtCollide {
		if m.bitmap != 0 || len(m.slots) < 2 {
			return fmt.Errorf("hamt: collision node with bitmap %#x and %d slots", m.bitmap, len(m.slots))
		}
		for i := range m.slots {
			s := &m.slots[i]
			if s.sub != nil || s.hash != m.slots[0].hash {
				return fmt.Errorf("hamt: collision node slot %d is not a leaf of hash %#x", i, m.slots[0].hash)
			}
			if err := leaf(s); err != nil {
				return err
			}
		}
		return nil
	}
	if bits.OnesCount32(m.bitmap) != len(m.slots) {
		return fmt.Errorf("hamt: bitmap %#x for %d slots at shift %d", m.bitmap, len(m.slots), shift)
	}
	i := 0
	for chunk := range uint64(32) {
		if m.bitmap&(1<<chunk) == 0 {
			continue
		}
		s := &m.slots[i]
		i++
		path := prefix | chunk<<shift
		if s.sub == nil {
			if s.hash>>shift&hamtMask != chunk {
				return fmt.Errorf("hamt: key %q in chunk %d at shift %d", s.key, chunk, shift)
			}
			if err := leaf(s); err != nil {
				return err
			}
			continue
		}
		if len(s.sub.slots) == 1 && s.sub.slots[0].sub == nil {
			return fmt.Errorf("hamt: lone leaf %q not folded at shift %d", s.sub.slots[0].key, shift+hamtBits)
		}
		if err := s.sub.verifyAt(shift+hamtBits, path, seen); err != nil {
			return err
		}
	}
	return nil
}

// verify checks the trie under n: no empty node is kept, literal keys are
// literal tokens hashed with the package seed, and the trie holds count
// values.
func (sn *snapshot[T]) verify() error {
	if sn == nil {
		return nil
	}
	n, err := sn.root.verify("")
	if err != nil {
		return err
	}
	if n != sn.count {
		return fmt.Errorf("trie holds %d values, snapshot counts %d", n, sn.count)
	}
	return nil
}

func (n *node[T]) verify(path string) (int, error) {
	if n == nil {
		return 0, nil
	}
	if n.empty() {
		return 0, fmt.Errorf("trie: empty node at %q", path)
	}
	count := len(n.subs) + len(n.rest)
	if _, err := n.lits.verify(); err != nil {
		return 0, fmt.Errorf("trie at %q: %w", path, err)
	}
	var err error
	n.lits.each(func(key string, child *node[T]) bool {
		switch {
		case key == "" || key == wildOne || key == wildRest || strings.ContainsAny(key, ".*> "):
			err = fmt.Errorf("trie: literal key %q at %q", key, path)
		case child == nil:
			err = fmt.Errorf("trie: nil child %q at %q", key, path)
		default:
			if got, _ := n.lits.get(hashString(key), key); got != child {
				err = fmt.Errorf("trie: key %q at %q not found by its hash", key, path)
				break
			}
			var c int
			c, err = child.verify(path + "." + key)
			count += c
		}
		return err == nil
	})
	if err != nil {
		return 0, err
	}
	c, err := n.one.verify(path + ".*")
	if err != nil {
		return 0, err
	}
	// over, recomputed from the children, which are verified by now.
	overLits := int32(0)
	n.lits.each(func(_ string, child *node[T]) bool {
		overLits += overOf(child)
		return true
	})
	ways := 0
	for _, w := range []bool{len(n.rest) > 0, n.one != nil, n.lits != nil} {
		if w {
			ways++
		}
	}
	if want := ways > 1 || overOf(n.one) > 0 || overLits > 0; n.over != want || n.overLits != overLits {
		return 0, fmt.Errorf("trie: over %v with %d children over at %q, want %v with %d", n.over, n.overLits, path, want, overLits)
	}
	return count + c, nil
}

// verify checks s's current snapshot.
func (s *Sublist[T]) verify() error { return s.snap.Load().verify() }

// cached counts the cache entries of the current generation.
func (s *Sublist[T]) cached() int {
	sn := s.snap.Load()
	if sn == nil {
		return 0
	}
	n := 0
	for i := range sn.cache.sets {
		for w := range sn.cache.sets[i] {
			if e := sn.cache.sets[i][w].Load(); e != nil && e.gen == sn.gen {
				n++
			}
		}
	}
	return n
}

// gen returns the current generation.
func (s *Sublist[T]) gen() uint64 {
	if sn := s.snap.Load(); sn != nil {
		return sn.gen
	}
	return 0
}
