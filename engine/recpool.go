package engine

// This file: the recycled records of a Pooled type.

import (
	"sync"

	"github.com/agentloop/agentloop/pool"
)

// maxPooledRecords bounds the records one loop keeps for one type; a
// record finalized beyond that is left to the collector.
const maxPooledRecords = 1024

// recordPool holds a Pooled type's recycled records for one loop: the
// loop puts the records it finalized (recycleAgents), spawners placed on
// that loop take them. A stack under a mutex rather than a sync.Pool:
// the two sides run on different goroutines, so a sync.Pool's per-P
// caches never serve the spawner and every Get took the slow path that
// searches the other Ps, and the shared hit and put counters bounced
// between them on top. Here a take costs a lock, the loop puts back the
// records of a turn under one lock (putAll), the counters live under it,
// and a record put back is found by the next spawn for certain, whatever
// the collector does.
type recordPool struct {
	mu           sync.Mutex
	free         []*agent
	hits, misses uint64 // mu
	puts         uint64 // mu
	_            [16]byte
}

// get takes the most recently put record, or returns nil.
func (p *recordPool) get() *agent {
	p.mu.Lock()
	n := len(p.free)
	if n == 0 {
		p.misses++
		p.mu.Unlock()
		return nil
	}
	a := p.free[n-1]
	p.free[n-1] = nil
	p.free = p.free[:n-1]
	p.hits++
	p.mu.Unlock()
	return a
}

// putAll keeps the records of as for later gets, under one lock, as far
// as the pool has room (maxPooledRecords); it keeps no reference to the
// slice as itself.
func (p *recordPool) putAll(as []*agent) {
	p.mu.Lock()
	n := min(len(as), maxPooledRecords-len(p.free))
	if n > 0 {
		p.free = append(p.free, as[:n]...)
		p.puts += uint64(n)
	}
	p.mu.Unlock()
}

func (p *recordPool) stats() pool.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return pool.Stats{Hits: p.hits, Misses: p.misses, Puts: p.puts}
}
