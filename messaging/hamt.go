package messaging

import (
	"hash/maphash"
	"math/bits"
)

// seed keys every hash in the package: trie tokens and cached topics. It is
// random per process, so no input can be chosen to collide on purpose.
var seed = maphash.MakeSeed()

func hashString(s string) uint64 { return maphash.String(seed, s) }

// A hamt is a persistent hash array mapped trie from string keys to V: the
// literal children of one trie node. It is immutable: set and delete return
// a new root that shares every untouched node with the old one (path
// copying), so a reader may walk any root it loaded without a lock while a
// writer builds the next one. A nil *hamt is the empty map.
//
// A node at depth d uses bits [5d, 5d+5) of the key's 64-bit hash to pick one
// of 32 slots; only the occupied slots are stored, in bit order, and found
// with a popcount. Copying a path costs O(log32 n) nodes of at most 32
// slots, where a plain Go map would have to be copied whole: a level with
// ten thousand device tokens stays cheap to change. Keys whose whole 64-bit
// hashes are equal end in a collision node below the last level and are
// searched linearly.
type hamt[V any] struct {
	bitmap uint32     // bit i set: slots holds the entry for hash chunk i; unused in a collision node
	slots  []hslot[V] // in bit order; a collision node keeps at least two leaves
}

// An hslot is either a leaf (sub == nil) or a link to the next level.
type hslot[V any] struct {
	hash uint64 // hash of key; leaf only
	key  string // leaf only
	val  V      // leaf only
	sub  *hamt[V]
}

const (
	hamtBits = 5
	hamtMask = 1<<hamtBits - 1
	// hamtCollide is the shift at which a node stops being indexed by hash
	// bits and becomes a collision node.
	hamtCollide = 64
)

// get returns the value stored under key, whose hash is h.
func (m *hamt[V]) get(h uint64, key string) (V, bool) {
	for shift := uint(0); m != nil; shift += hamtBits {
		if shift >= hamtCollide {
			for i := range m.slots {
				if m.slots[i].key == key {
					return m.slots[i].val, true
				}
			}
			break
		}
		bit := uint32(1) << (h >> shift & hamtMask)
		if m.bitmap&bit == 0 {
			break
		}
		s := &m.slots[bits.OnesCount32(m.bitmap&(bit-1))]
		if s.sub != nil {
			m = s.sub
			continue
		}
		if s.hash == h && s.key == key {
			return s.val, true
		}
		break
	}
	var zero V
	return zero, false
}

// set returns a map in which key (hash h) maps to val.
func (m *hamt[V]) set(h uint64, key string, val V) *hamt[V] {
	return m.setAt(h, key, val, 0)
}

func (m *hamt[V]) setAt(h uint64, key string, val V, shift uint) *hamt[V] {
	leaf := hslot[V]{hash: h, key: key, val: val}
	if shift >= hamtCollide {
		var slots []hslot[V]
		if m != nil {
			for i := range m.slots {
				if m.slots[i].key == key {
					slots = append([]hslot[V](nil), m.slots...)
					slots[i] = leaf
					return &hamt[V]{slots: slots}
				}
			}
			slots = m.slots
		}
		return &hamt[V]{slots: append(append(make([]hslot[V], 0, len(slots)+1), slots...), leaf)}
	}
	if m == nil {
		return &hamt[V]{bitmap: 1 << (h >> shift & hamtMask), slots: []hslot[V]{leaf}}
	}
	bit := uint32(1) << (h >> shift & hamtMask)
	pos := bits.OnesCount32(m.bitmap & (bit - 1))
	if m.bitmap&bit == 0 {
		slots := make([]hslot[V], len(m.slots)+1)
		copy(slots, m.slots[:pos])
		slots[pos] = leaf
		copy(slots[pos+1:], m.slots[pos:])
		return &hamt[V]{bitmap: m.bitmap | bit, slots: slots}
	}
	s := &m.slots[pos]
	var ns hslot[V]
	switch {
	case s.sub != nil:
		ns.sub = s.sub.setAt(h, key, val, shift+hamtBits)
	case s.hash == h && s.key == key:
		ns = leaf
	default:
		// Two keys share this chunk: move both one level down, where their
		// next chunks (or, past the last level, a collision node) tell them
		// apart.
		ns.sub = (*hamt[V])(nil).setAt(s.hash, s.key, s.val, shift+hamtBits).setAt(h, key, val, shift+hamtBits)
	}
	slots := append([]hslot[V](nil), m.slots...)
	slots[pos] = ns
	return &hamt[V]{bitmap: m.bitmap, slots: slots}
}

// delete returns a map without key (hash h), and whether key was there. The
// result is nil when the map becomes empty. A level left holding a single
// leaf is folded into its parent, so the map keeps the shape it would have
// had if key had never been added.
func (m *hamt[V]) delete(h uint64, key string) (*hamt[V], bool) {
	return m.deleteAt(h, key, 0)
}

func (m *hamt[V]) deleteAt(h uint64, key string, shift uint) (*hamt[V], bool) {
	if m == nil {
		return nil, false
	}
	if shift >= hamtCollide {
		for i := range m.slots {
			if m.slots[i].key == key {
				return m.without(i, 0), true
			}
		}
		return m, false
	}
	bit := uint32(1) << (h >> shift & hamtMask)
	if m.bitmap&bit == 0 {
		return m, false
	}
	pos := bits.OnesCount32(m.bitmap & (bit - 1))
	s := &m.slots[pos]
	if s.sub == nil {
		if s.hash != h || s.key != key {
			return m, false
		}
		return m.without(pos, bit), true
	}
	sub, ok := s.sub.deleteAt(h, key, shift+hamtBits)
	if !ok {
		return m, false
	}
	if sub == nil {
		return m.without(pos, bit), true
	}
	ns := hslot[V]{sub: sub}
	if len(sub.slots) == 1 && sub.slots[0].sub == nil {
		ns = sub.slots[0] // a lone leaf can live one level up
	}
	slots := append([]hslot[V](nil), m.slots...)
	slots[pos] = ns
	return &hamt[V]{bitmap: m.bitmap, slots: slots}, true
}

// without returns a copy of m without slots[i], whose bitmap bit is bit (0 in
// a collision node), or nil if that was the last slot.
func (m *hamt[V]) without(i int, bit uint32) *hamt[V] {
	if len(m.slots) == 1 {
		return nil
	}
	slots := make([]hslot[V], 0, len(m.slots)-1)
	slots = append(append(slots, m.slots[:i]...), m.slots[i+1:]...)
	return &hamt[V]{bitmap: m.bitmap &^ bit, slots: slots}
}

// each calls f for every entry, in no particular order, until f returns
// false. It reports whether it ran to the end.
func (m *hamt[V]) each(f func(key string, val V) bool) bool {
	if m == nil {
		return true
	}
	for i := range m.slots {
		s := &m.slots[i]
		if s.sub != nil {
			if !s.sub.each(f) {
				return false
			}
		} else if !f(s.key, s.val) {
			return false
		}
	}
	return true
}
