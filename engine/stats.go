package engine

import (
	"sort"
	"sync/atomic"
)

// typeCounters are one loop's counters for one agent type. The loop updates
// the plain fields per message and copies them to the atomic mirror once per
// turn, so Stats never races and the hot path pays no atomic operation.
type typeCounters struct {
	typ *agentType

	// loop-owned
	received, processed, dropped, restarts uint64
	queued                                 int64
	dirty                                  bool

	// published
	pReceived, pProcessed, pDropped, pRestarts atomic.Uint64
	pQueued                                    atomic.Int64
}

// publish stores what changed. An atomic store is an exchange on amd64,
// while a load is a plain read: comparing first keeps a publish that
// follows a single message down to the two counters it moved.
func (tc *typeCounters) publish() {
	storeIfChanged(&tc.pReceived, tc.received)
	storeIfChanged(&tc.pProcessed, tc.processed)
	storeIfChanged(&tc.pDropped, tc.dropped)
	storeIfChanged(&tc.pRestarts, tc.restarts)
	if tc.pQueued.Load() != tc.queued {
		tc.pQueued.Store(tc.queued)
	}
	tc.dirty = false
}

// storeIfChanged is for counters with a single writer.
func storeIfChanged(p *atomic.Uint64, v uint64) {
	if p.Load() != v {
		p.Store(v)
	}
}

// Counts are message counters. Received counts messages that reached a
// mailbox door (including those then dropped), Processed those handed to a
// handler, Dropped those dead-lettered by a full mailbox, Queued those
// waiting in mailboxes now, Restarts the restarts after panics.
type Counts struct {
	Received  uint64
	Processed uint64
	Dropped   uint64
	Queued    int64
	Restarts  uint64
}

func (c *Counts) add(o Counts) {
	c.Received += o.Received
	c.Processed += o.Processed
	c.Dropped += o.Dropped
	c.Queued += o.Queued
	c.Restarts += o.Restarts
}

// TypeStats are the counts of one agent type.
type TypeStats struct {
	Type string
	Counts
}

// LoopStats are the counts of one loop.
type LoopStats struct {
	Loop     int
	Inbox    int   // envelopes waiting in the inbox
	Runnable int64 // agents waiting for a turn
	Timers   int64 // timers on the precise heap
	Turns    uint64
	Parks    uint64
	Counts
	Types []TypeStats // per type on this loop, sorted by type name
}

// Stats is a snapshot of the engine's counters. Figures are published by
// each loop once per turn, so a snapshot taken while loops are busy may lag
// by one turn.
type Stats struct {
	Agents      int // live agents
	DeadLetters uint64
	Panics      uint64
	Loops       []LoopStats
	Types       []TypeStats // totals per type over all loops, sorted by name
	Counts                  // totals over all loops
}

// Stats returns a snapshot. Concurrency-safe.
func (e *Engine) Stats() Stats {
	s := Stats{
		Agents:      e.registry.count(),
		DeadLetters: e.deadLetters.Load(),
		Panics:      e.panics.Load(),
	}
	ts := *e.types.Load()
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	totals := make([]TypeStats, len(names))
	for i, n := range names {
		totals[i].Type = n
	}
	for li, l := range e.loops {
		ls := LoopStats{
			Loop:     li,
			Inbox:    l.inbox.Len(),
			Runnable: l.stats.runnable.Load(),
			Timers:   l.stats.timers.Load(),
			Turns:    l.stats.turns.Load(),
			Parks:    l.stats.parks.Load(),
		}
		for i, n := range names {
			tc := ts[n].perLoop[li]
			c := Counts{
				Received:  tc.pReceived.Load(),
				Processed: tc.pProcessed.Load(),
				Dropped:   tc.pDropped.Load(),
				Queued:    tc.pQueued.Load(),
				Restarts:  tc.pRestarts.Load(),
			}
			ls.Types = append(ls.Types, TypeStats{Type: n, Counts: c})
			ls.Counts.add(c)
			totals[i].Counts.add(c)
		}
		s.Counts.add(ls.Counts)
		s.Loops = append(s.Loops, ls)
	}
	s.Types = totals
	return s
}
