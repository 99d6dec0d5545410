package engine

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// registryShards spreads the registry's writers over independently locked
// tables, so that spawns and terminations on different agents rarely
// contend.
const registryShards = 64

// registry maps live agent IDs to agents. Lookups take no lock: each shard
// is an open-addressing hash table whose slots readers load atomically,
// while writers (spawn, the end of an agent) serialise on the shard's mutex.
// So resolving a type subscription's key on every publish, or an ID on a
// send by ID, costs a hash and a probe of a few slots, like a plain map,
// without the read lock's shared counter. The hot path (Ref.Send,
// Context.Send) never touches the registry.
//
// A lookup sees each slot as one writer left it (see regSlot) and the
// table as it was when the lookup loaded it, so it answers as the registry
// stood at some instant during the lookup: it may find an agent removed
// meanwhile, or miss one added meanwhile, as a lookup under a lock just
// before the change would. Writers look up under the mutex, so putIfAbsent
// settles every race between spawns of one ID.
type registry struct {
	shards [registryShards]shard
}

type shard struct {
	mu   sync.Mutex               // serialises writers; readers never take it
	tab  atomic.Pointer[regTable] // nil until the first put
	live atomic.Int64             // agents in tab; written with mu held
	used int                      // mu: slots of tab not empty (agents and tombstones)
	_    [32]byte                 // keep neighbouring shards' locks off one cache line
}

// A regTable is a power-of-two array of slots, probed linearly from the
// slot an ID's hash picks. It is replaced, never resized in place, when
// agents and tombstones fill three quarters of it.
type regTable struct {
	slots []regSlot
	shift uint8 // 64 - log2(len(slots))
}

// A regSlot holds one registered incarnation: the agent, its incarnation
// number and the hash of its ID. Writers change a slot only with the
// shard's mutex held and bracket each change with seq (odd while it is
// under way), a seqlock: a reader takes the three fields as one writer left
// them, or reads again. So a reader never pairs one agent with another's
// incarnation, even when a slot is reused while it reads.
//
// a is nil for an empty slot, which ends a probe, and tombstone for a slot
// whose agent left, which a probe passes over and an insert may reuse.
// Emptying a slot (clear) stores a alone, outside the seqlock: readers pay
// no heed to gen and h beside nil or tombstone, so a reader that takes the
// cleared a with the old gen and h has read a consistent slot, and one that
// took the old a reads it with its own gen and h, or sees seq move if an
// insert reuses the slot meanwhile (an insert always brackets its change).
type regSlot struct {
	seq atomic.Uint32
	gen atomic.Uint32
	h   atomic.Uint64
	a   atomic.Pointer[agent]
}

// tombstone marks a slot whose agent was removed.
var tombstone = new(agent)

const minRegSlots = 16

// init readies r. There is nothing to do: a shard's table comes with its
// first agent.
func (r *registry) init() {}

func (r *registry) shard(h uint64) *shard { return &r.shards[(h>>32)%registryShards] }

// index is the slot h probes first: the top bits of h mixed by a
// multiplication (Fibonacci hashing), since the shard took other bits of
// it and FNV's bits are not all equally good.
func (t *regTable) index(h uint64) uint64 { return (h * 0x9e3779b97f4a7c15) >> t.shift }

func (t *regTable) mask() uint64 { return uint64(len(t.slots)) - 1 }

// load returns the slot's contents as one writer left them.
func (s *regSlot) load() (a *agent, gen uint32, h uint64) {
	for spins := 0; ; spins++ {
		if q := s.seq.Load(); q&1 == 0 {
			a, gen, h = s.a.Load(), s.gen.Load(), s.h.Load()
			if s.seq.Load() == q {
				return a, gen, h
			}
		}
		if spins > 16 {
			runtime.Gosched() // the writer was preempted mid-change
		}
	}
}

// store sets the slot. The shard's mutex must be held.
func (s *regSlot) store(a *agent, gen uint32, h uint64) {
	q := s.seq.Load()
	s.seq.Store(q + 1)
	s.h.Store(h)
	s.gen.Store(gen)
	s.a.Store(a)
	s.seq.Store(q + 2)
}

// clear empties the slot (a is nil or tombstone), leaving gen and h as they
// were (see regSlot). The shard's mutex must be held.
func (s *regSlot) clear(a *agent) { s.a.Store(a) }

// keyAt returns the key of incarnation gen of a, or false if a has moved
// on to another incarnation since (its key may then be another's). It
// reads what idAt reads, in the same order.
func keyAt(a *agent, gen uint32) (string, bool) {
	p, n := a.keyp.Load(), a.keyn.Load()
	if a.gen.Load() != gen {
		return "", false
	}
	return unsafe.String(p, int(n)), true
}

// holds reports whether the slot's incarnation (a, gen, hash sh) is the ID
// (typ, key) whose hash is h.
func holds(a *agent, gen uint32, sh uint64, typ, key string, h uint64) bool {
	if sh != h || a.typ.name != typ {
		return false
	}
	k, ok := keyAt(a, gen)
	return ok && k == key
}

// find returns the incarnation registered under (typ, key), whose ID hash
// is h, without a lock.
func (r *registry) find(typ, key string, h uint64) (Ref, bool) {
	t := r.shard(h).tab.Load()
	if t == nil {
		return Ref{}, false
	}
	mask := t.mask()
	for i := t.index(h); ; i = (i + 1) & mask {
		a, gen, sh := t.slots[i].load()
		switch {
		case a == nil:
			return Ref{}, false
		case a == tombstone:
		case holds(a, gen, sh, typ, key, h):
			return Ref{a: a, gen: gen}, true
		}
	}
}

// get returns the agent registered under id, whose hash is h, or nil.
func (r *registry) get(id AgentID, h uint64) *agent {
	ref, _ := r.find(id.Type, id.Key, h)
	return ref.a
}

// putIfAbsent stores a unless id is taken; it returns the Ref of the
// incarnation that holds the ID afterwards, as the registry records it
// (not as the record may read by the time the caller looks), and whether
// it is a's. The caller owns a: its current incarnation is the one
// registered.
func (r *registry) putIfAbsent(id AgentID, h uint64, a *agent) (Ref, bool) {
	s := r.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tab.Load()
	if t != nil {
		mask, free := t.mask(), -1
		for i := t.index(h); ; i = (i + 1) & mask {
			cur, gen, sh := t.slots[i].load()
			if cur == nil {
				if free < 0 {
					free = int(i)
				}
				break
			}
			if cur == tombstone {
				if free < 0 {
					free = int(i)
				}
				continue
			}
			if holds(cur, gen, sh, id.Type, id.Key, h) {
				return Ref{a: cur, gen: gen}, false
			}
		}
		if t.slots[free].a.Load() == tombstone || 4*(s.used+1) <= 3*len(t.slots) {
			if t.slots[free].a.Load() == nil {
				s.used++
			}
			gen := a.gen.Load()
			t.slots[free].store(a, gen, h)
			s.live.Add(1)
			return Ref{a: a, gen: gen}, true
		}
	}
	t = s.rebuild(t, int(s.live.Load())+1)
	gen := a.gen.Load()
	t.insert(a, gen, h)
	s.used++
	s.live.Add(1)
	return Ref{a: a, gen: gen}, true
}

// rebuild publishes a new table holding the agents of old (nil: none),
// with room for at least n, and returns it. s.mu must be held. Readers that
// loaded old go on reading it; it no longer changes, so they see the
// registry as it stood before the rebuild, and the collector frees it
// after them.
func (s *shard) rebuild(old *regTable, n int) *regTable {
	size := minRegSlots
	for size < 2*n {
		size *= 2
	}
	t := &regTable{slots: make([]regSlot, size), shift: uint8(64 - log2(size))}
	s.used = 0
	if old != nil {
		for i := range old.slots {
			if a, gen, h := old.slots[i].load(); a != nil && a != tombstone {
				t.insert(a, gen, h)
				s.used++
			}
		}
	}
	s.tab.Store(t)
	return t
}

// insert stores an agent in the first empty slot of its probe, in a table
// no reader has seen yet or with the shard's mutex held.
func (t *regTable) insert(a *agent, gen uint32, h uint64) {
	mask := t.mask()
	i := t.index(h)
	for t.slots[i].a.Load() != nil {
		i = (i + 1) & mask
	}
	t.slots[i].store(a, gen, h)
}

// FNV-1a, as AgentID.hash computes it, in two steps: typeHashPrefix hashes
// the type and the separator once, and keyHash goes on over a key. So the
// hash of a type subscription's key costs only the key's bytes.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// typeHashPrefix returns AgentID.hash's state after the type and the
// separator.
func typeHashPrefix(typ string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(typ); i++ {
		h = (h ^ uint64(typ[i])) * fnvPrime
	}
	return (h ^ 0xff) * fnvPrime
}

// keyHash returns AgentID{typ, key}.hash() given typeHashPrefix(typ).
func keyHash(prefix uint64, key string) uint64 {
	h := prefix
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * fnvPrime
	}
	return h
}

func log2(n int) int {
	k := 0
	for ; n > 1; n >>= 1 {
		k++
	}
	return k
}

// remove deletes a's entry if the ID still maps to a. A slot whose
// successor is empty becomes empty itself, and so do the tombstones before
// it: no probe goes on past them, so a shard whose agents come and go under
// fresh IDs (spawn/terminate churn) keeps its table instead of filling it
// with tombstones and rebuilding it.
func (r *registry) remove(a *agent) {
	id := a.ident()
	h := id.hash()
	s := r.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tab.Load()
	if t == nil {
		return
	}
	mask := t.mask()
	for i := t.index(h); ; i = (i + 1) & mask {
		cur, gen, _ := t.slots[i].load()
		if cur == nil {
			return
		}
		if cur != a || gen != a.gen.Load() {
			continue
		}
		s.live.Add(-1)
		if next, _, _ := t.slots[(i+1)&mask].load(); next != nil {
			t.slots[i].clear(tombstone)
			return
		}
		// Nothing probes past i: empty it, and the tombstones before it.
		for {
			t.slots[i].clear(nil)
			s.used--
			i = (i - 1) & mask
			if prev, _, _ := t.slots[i].load(); prev != tombstone {
				return
			}
		}
	}
}

func (r *registry) count() int {
	n := 0
	for i := range r.shards {
		n += int(r.shards[i].live.Load())
	}
	return n
}
