package engine

import "sync"

// registryShards spreads the registry over independently locked maps so
// spawns and lookups on different agents rarely contend.
const registryShards = 64

// registry maps live agent IDs to agents. Lookups take a shard's read lock;
// the hot path (Ref.Send, Context.Send) never touches it.
type registry struct {
	shards [registryShards]shard
}

type shard struct {
	mu sync.RWMutex // protects m
	m  map[AgentID]*agent
	_  [40]byte // keep neighbouring shards' locks off one cache line
}

func (r *registry) init() {
	for i := range r.shards {
		r.shards[i].m = make(map[AgentID]*agent)
	}
}

func (r *registry) shard(h uint64) *shard { return &r.shards[(h>>32)%registryShards] }

func (r *registry) get(id AgentID, h uint64) *agent {
	s := r.shard(h)
	s.mu.RLock()
	a := s.m[id]
	s.mu.RUnlock()
	return a
}

// putIfAbsent stores a unless id is taken; it returns the agent that holds
// the ID afterwards and whether it is a.
func (r *registry) putIfAbsent(id AgentID, h uint64, a *agent) (*agent, bool) {
	s := r.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.m[id]; cur != nil {
		return cur, false
	}
	s.m[id] = a
	return a, true
}

// remove deletes a's entry if the ID still maps to a.
func (r *registry) remove(a *agent) {
	id := a.ident()
	s := r.shard(id.hash())
	s.mu.Lock()
	if s.m[id] == a {
		delete(s.m, id)
	}
	s.mu.Unlock()
}

func (r *registry) count() int {
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
