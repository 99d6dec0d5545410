package engine

import (
	"math/bits"
	"runtime"
	"sort"
	"sync/atomic"
	"time"

	"github.com/agentloop/agentloop/scheduler"
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
	hist                                   handlerHist
	hchanged                               uint32 // bit i: hist.buckets[i] moved since publish
	lastPer                                int64  // handler ns per message of the last timed run

	// published
	pReceived, pProcessed, pDropped, pRestarts atomic.Uint64
	pQueued                                    atomic.Int64
	pSum                                       atomic.Uint64
	pBuckets                                   [HandlerBuckets]atomic.Uint64

	// deadBy counts dead letters by reason (see countDeadLetter): atomics
	// added to where a message is given up, never on the delivery path.
	deadBy [NumDeadLetterReasons]atomic.Uint64
}

// HandlerBuckets is the number of buckets of a handler-latency histogram:
// bucket i counts messages whose handler time was at most
// HandlerBucketBound(i); the last bucket has no bound (+Inf).
const HandlerBuckets = 24

// handlerMinShift sets the first bound: 2^8 ns = 256 ns. Bounds double
// from there to 2^30 ns (about 1.07 s).
const handlerMinShift = 8

// HandlerBucketBound returns the upper bound of handler-latency bucket i,
// or -1 for the last bucket, which is unbounded.
func HandlerBucketBound(i int) time.Duration {
	if i < 0 || i >= HandlerBuckets-1 {
		return -1
	}
	return time.Duration(1) << (handlerMinShift + i)
}

// handlerHist is a log2 histogram of handler time per message.
type handlerHist struct {
	sum     uint64
	buckets [HandlerBuckets]uint64
}

// observe records a run of n messages that took elapsed nanoseconds: n
// messages of elapsed/n each. The loop reads the clock once per run, so
// messages of one run share their mean.
func (tc *typeCounters) observe(elapsed int64, n int) {
	if n <= 0 {
		return
	}
	if elapsed < 0 {
		elapsed = 0
	}
	per := uint64(elapsed) / uint64(n)
	i := 0
	if per > 1<<handlerMinShift {
		i = min(bits.Len64(per-1)-handlerMinShift, HandlerBuckets-1)
	}
	h := &tc.hist
	h.sum += uint64(elapsed)
	h.buckets[i] += uint64(n)
	tc.hchanged |= 1 << i
}

// publish stores the counters that changed, and with full the histogram
// too; it reports whether a histogram change is still unpublished (tc
// stays dirty). An atomic store is an exchange on amd64, while a load is a
// plain read: comparing first keeps a publish that follows a single
// message down to the two counters it moved.
func (tc *typeCounters) publish(full bool) (pending bool) {
	storeIfChanged(&tc.pReceived, tc.received)
	storeIfChanged(&tc.pProcessed, tc.processed)
	storeIfChanged(&tc.pDropped, tc.dropped)
	storeIfChanged(&tc.pRestarts, tc.restarts)
	if tc.pQueued.Load() != tc.queued {
		tc.pQueued.Store(tc.queued)
	}
	if m := tc.hchanged; m != 0 {
		if !full {
			return true
		}
		for ; m != 0; m &= m - 1 {
			i := bits.TrailingZeros32(m)
			tc.pBuckets[i].Store(tc.hist.buckets[i])
		}
		tc.pSum.Store(tc.hist.sum)
		tc.hchanged = 0
	}
	tc.dirty = false
	return false
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
// waiting in mailboxes now, Restarts the restarts after panics. A message
// that another loop shed because its outbox to the target's loop was full
// (see WithInboxSize) counts as received and dropped on the shedding loop.
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

// HandlerStats is a histogram of handler time per message. The loop reads
// the clock once per run of an agent (up to a quantum of messages, or one
// batch), so each message of a run counts with the run's mean. A loop with a
// single runnable agent reads it on one turn in eight, and counts the
// messages of the other turns with the type's last measured mean; Count and
// Sum include them. Bucket i holds the messages of at most
// HandlerBucketBound(i); buckets are not cumulative.
type HandlerStats struct {
	Count   uint64        // messages in the buckets, their sum
	Sum     time.Duration // total handler time
	Buckets [HandlerBuckets]uint64
}

func (h *HandlerStats) add(o HandlerStats) {
	h.Count += o.Count
	h.Sum += o.Sum
	for i, v := range o.Buckets {
		h.Buckets[i] += v
	}
}

// TypeStats are the counts of one agent type.
type TypeStats struct {
	Type string
	Counts
	Handler HandlerStats
}

// LoopStats are the counts of one loop.
type LoopStats struct {
	Loop     int
	Inbox    int   // envelopes waiting in the inbox
	Runnable int64 // agents waiting for a turn
	// Timers counts the timers on the precise heap: stopped ones not yet
	// removed included, far ones still waiting on the timing wheel not.
	Timers int64
	Turns  uint64
	Parks  uint64
	// Borrowed counts the times a peer loop ran this loop's turns on its
	// own goroutine instead of waking this one's (see WithHandoff).
	Borrowed uint64
	// Busy is the time the loop has spent running agents since it started:
	// its utilisation is the rate at which Busy grows against wall time.
	Busy time.Duration
	// Scheduler are the counters of the loop's runnable queue; its
	// LongestWait is the worst wait seen, in picks of other agents.
	Scheduler scheduler.Stats
	Counts
	Types []TypeStats // per type on this loop, sorted by type name
}

// statsWait bounds how long Stats waits for the loops' full publish.
const statsWait = 5 * time.Millisecond

func (e *Engine) refreshStats() {
	if !e.started.Load() || e.state.Load() == stateStopped {
		return
	}
	for _, l := range e.loops {
		if l.stale.Load() { // a loop that published fully since its last turn is left asleep
			l.fullWanted.Store(true)
			l.wake()
		}
	}
	var deadline time.Time
	for _, l := range e.loops {
		for i := 0; l.fullWanted.Load() && !l.sealed.Load(); i++ {
			if i < 64 {
				runtime.Gosched()
				continue
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(statsWait)
			} else if time.Now().After(deadline) {
				return
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// Stats is a snapshot of the engine's counters. Message counts are
// published by each loop every 64 turns and before it parks; handler
// histograms, busy time and scheduler counters every 64 turns (or at the
// first park after them), when a loop parks while Stop or WaitIdle waits,
// and on request by Engine.Stats. A snapshot of busy loops may lag by up to
// 64 turns, and the histograms and busy time may be a few turns behind the
// counts.
type Stats struct {
	Agents      int // live agents
	DeadLetters uint64
	Panics      uint64
	Loops       []LoopStats
	Types       []TypeStats // totals per type over all loops, sorted by name
	Counts                  // totals over all loops
}

// Stats returns a snapshot. Concurrency-safe. It first asks every loop
// that parked with its histograms, busy time or scheduler counters not
// yet published to publish them, waking it, and waits up to statsWait
// (5ms) for them; a loop that has been busy since its last full publish is
// not asked and is reported as of that publish (at most 64 turns old), and
// a loop stuck in a handler as it last published.
func (e *Engine) Stats() Stats {
	e.refreshStats()
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
			Borrowed: l.stats.borrowed.Load(),
			Busy:     time.Duration(l.stats.busy.Load()),
		}
		sc := &l.stats.sched
		ls.Scheduler = scheduler.Stats{
			Picks: sc[0].Load(), AgedPicks: sc[1].Load(), Epochs: sc[2].Load(),
			Reweighs: sc[3].Load(), Messages: sc[4].Load(), LongestWait: sc[5].Load(),
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
			var h HandlerStats
			for b := range h.Buckets {
				h.Buckets[b] = tc.pBuckets[b].Load()
				h.Count += h.Buckets[b] // so that Count is always the buckets' sum
			}
			h.Sum = time.Duration(tc.pSum.Load())
			ls.Types = append(ls.Types, TypeStats{Type: n, Counts: c, Handler: h})
			ls.Counts.add(c)
			totals[i].Counts.add(c)
			totals[i].Handler.add(h)
		}
		s.Counts.add(ls.Counts)
		s.Loops = append(s.Loops, ls)
	}
	s.Types = totals
	return s
}
