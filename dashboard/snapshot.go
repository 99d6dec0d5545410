package dashboard

import (
	"context"
	"math"
	"runtime/metrics"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// A Snapshot is one sample of the engine, as the events stream sends it
// (JSON, the field names below). Rates and percentiles are over the
// interval since the previous sample (Elapsed); counters named Total are
// since the engine started. The first sample has no previous one: its
// rates and interval percentiles are zero.
type Snapshot struct {
	Time        int64   `json:"t"`       // Unix milliseconds
	Elapsed     float64 `json:"elapsed"` // seconds since the previous sample
	Agents      int     `json:"agents"`
	DeadLetters uint64  `json:"deadLetters"` // total
	Panics      uint64  `json:"panics"`      // total

	Loops []LoopSample `json:"loops"`
	Types []TypeSample `json:"types"`
	// Dead are the dead letters by reason, in engine.DeadLetterReason
	// order: every reason, with zeros.
	Dead []DeadSample `json:"dead"`
	// Mailboxes are the largest mailboxes (Options.TopMailboxes), most
	// queued first. MailboxesStale is set when the loops did not all
	// answer the survey within the interval (one is stuck in a handler):
	// the list is then the last complete one.
	Mailboxes      []MailboxSample `json:"mailboxes"`
	MailboxesStale bool            `json:"mailboxesStale"`

	Memory MemorySample `json:"memory"`
}

// LoopSample is one loop in a Snapshot.
type LoopSample struct {
	Loop int `json:"loop"`
	// Util is the share of wall time the loop spent running agents, 0..1,
	// over the last second (or Interval, if longer): since the previous
	// samples within it.
	Util     float64 `json:"util"`
	Inbox    int     `json:"inbox"`    // envelopes waiting in its inbox
	Runnable int64   `json:"runnable"` // agents waiting for a turn
	Timers   int64   `json:"timers"`
	// Queued is the number of messages waiting in the loop's mailboxes, per
	// agent type (types with none are left out).
	Queued map[string]int64 `json:"queued"`
}

// TypeSample is one agent type in a Snapshot.
type TypeSample struct {
	Type      string  `json:"type"`
	Rate      float64 `json:"rate"`      // messages processed per second
	Queued    int64   `json:"queued"`    // messages waiting in its mailboxes
	P50       float64 `json:"p50"`       // handler time, seconds, over the interval
	P99       float64 `json:"p99"`       // handler time, seconds, over the interval
	DropRate  float64 `json:"dropRate"`  // messages dropped by full mailboxes per second
	Dropped   uint64  `json:"dropped"`   // total
	Restarts  uint64  `json:"restarts"`  // total
	Processed uint64  `json:"processed"` // total

	// From the survey (see engine.Survey): the configuration and the
	// scheduling weights of its agents.
	Agents   int     `json:"agents"`
	Priority int     `json:"priority"`
	Capacity int     `json:"capacity"`
	Overflow string  `json:"overflow"`
	Weight   float64 `json:"weight"` // mean weight of its weighted agents
	WeightLo float64 `json:"weightLo"`
	WeightHi float64 `json:"weightHi"`
}

// DeadSample is the dead letters of one reason.
type DeadSample struct {
	Reason string  `json:"reason"` // engine.DeadLetterReason.String()
	Total  uint64  `json:"total"`
	Rate   float64 `json:"rate"` // per second over the interval
}

// MailboxSample is one of the largest mailboxes.
type MailboxSample struct {
	Agent  string  `json:"agent"` // the agent's ID, type/key
	Type   string  `json:"type"`
	Loop   int     `json:"loop"`
	Queued int     `json:"queued"`
	Bytes  int64   `json:"bytes"`
	Weight float64 `json:"weight"`
}

// MemorySample is the process's memory and the engine's pools.
type MemorySample struct {
	Heap       uint64 `json:"heap"`       // bytes of heap objects (live and not yet swept)
	HeapGoal   uint64 `json:"heapGoal"`   // the collector's heap goal, bytes
	Goroutines uint64 `json:"goroutines"` // live goroutines
	GCCycles   uint64 `json:"gcCycles"`   // total
	// GCPauseMax is the longest stop-the-world pause for the collector in
	// the interval, in seconds (an upper bound from the runtime's
	// histogram buckets), 0 if there was none; GCPauses is how many there
	// were.
	GCPauseMax float64 `json:"gcPauseMax"`
	GCPauses   uint64  `json:"gcPauses"`
	// Pools are the record pools of the Pooled agent types (engine.PoolStats).
	Pools []PoolSample `json:"pools"`
	// Buffers are the counters of Options.Buffers, nil without one.
	Buffers *BufferSample `json:"buffers"`
}

// PoolSample is one Pooled type's record pool.
type PoolSample struct {
	Type   string `json:"type"`
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
	Puts   uint64 `json:"puts"`
}

// BufferSample are the counters of a pool.Buffers.
type BufferSample struct {
	Gets      uint64 `json:"gets"`
	Returns   uint64 `json:"returns"`
	Live      int64  `json:"live"` // handed out, not yet released
	Allocs    uint64 `json:"allocs"`
	Oversized uint64 `json:"oversized"`
}

// The runtime/metrics the sampler reads.
const (
	mHeap       = "/memory/classes/heap/objects:bytes"
	mHeapGoal   = "/gc/heap/goal:bytes"
	mGoroutines = "/sched/goroutines:goroutines"
	mGCCycles   = "/gc/cycles/total:gc-cycles"
	mGCPauses   = "/sched/pauses/total/gc:seconds"
)

// sampler holds what one sample needs of the previous one. It is used by
// one goroutine at a time (the sampler's, or a test's through tick).
type sampler struct {
	e     *engine.Engine
	opts  Options
	prev  engine.Stats
	prevD engine.DeadLetterStats
	prevT time.Time
	have  bool
	pause []uint64 // the GC pause histogram's counts at the previous sample
	rm    []metrics.Sample
	last  []MailboxSample // the last complete survey
	lastS engine.Survey
	marks []busyMark // the loops' busy time at the samples of the last utilWindow
}

// busyMark is the loops' busy time at one sample.
type busyMark struct {
	t    time.Time
	busy []time.Duration
}

// utilWindow is the period a loop's utilisation is measured over: its
// busy time grows in steps (see engine.Stats), which a window of a second
// smooths while still following a change within a second or two.
const utilWindow = time.Second

func newSampler(e *engine.Engine, opts Options) *sampler {
	s := &sampler{e: e, opts: opts}
	for _, n := range []string{mHeap, mHeapGoal, mGoroutines, mGCCycles, mGCPauses} {
		s.rm = append(s.rm, metrics.Sample{Name: n})
	}
	return s
}

// sample takes one snapshot at now.
func (s *sampler) sample(now time.Time) Snapshot {
	st := s.e.Stats()
	ds := s.e.DeadLetterStats()
	snap := Snapshot{
		Time:        now.UnixMilli(),
		Agents:      st.Agents,
		DeadLetters: st.DeadLetters,
		Panics:      st.Panics,
	}
	dt := 0.0
	if s.have {
		dt = now.Sub(s.prevT).Seconds()
	}
	snap.Elapsed = dt
	rate := func(cur, old uint64) float64 {
		if dt <= 0 || cur < old {
			return 0
		}
		return float64(cur-old) / dt
	}

	// The survey waits for every loop; a loop stuck in a handler must not
	// hold up the sampler, so it gets one interval at most.
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Interval)
	sv, err := s.e.Survey(ctx, s.opts.TopMailboxes)
	cancel()
	if err != nil {
		sv = s.lastS
		snap.MailboxesStale = true
	} else {
		s.lastS = sv
		s.last = s.last[:0]
		for _, m := range sv.Mailboxes {
			s.last = append(s.last, MailboxSample{
				Agent: m.ID.String(), Type: m.ID.Type, Loop: m.Loop,
				Queued: m.Queued, Bytes: m.Bytes, Weight: m.Weight,
			})
		}
	}
	snap.Mailboxes = append([]MailboxSample{}, s.last...)
	survey := map[string]engine.TypeSurvey{}
	for _, t := range sv.Types {
		survey[t.Type] = t
	}

	// A busy loop publishes its busy time every 64 turns, so between two
	// close samples it moves in steps: the utilisation is taken over the
	// oldest mark within utilWindow.
	mark := busyMark{t: now}
	for _, l := range st.Loops {
		mark.busy = append(mark.busy, l.Busy)
	}
	var from *busyMark
	for i := range s.marks {
		if now.Sub(s.marks[i].t) <= max(utilWindow, s.opts.Interval) {
			from = &s.marks[i]
			break
		}
	}
	for i, l := range st.Loops {
		ls := LoopSample{Loop: l.Loop, Inbox: l.Inbox, Runnable: l.Runnable, Timers: l.Timers, Queued: map[string]int64{}}
		if from != nil && i < len(from.busy) {
			if wall := now.Sub(from.t).Seconds(); wall > 0 {
				ls.Util = min(max((l.Busy-from.busy[i]).Seconds()/wall, 0), 1)
			}
		}
		for _, t := range l.Types {
			if t.Queued != 0 {
				ls.Queued[t.Type] = t.Queued
			}
		}
		snap.Loops = append(snap.Loops, ls)
	}

	prevTypes := map[string]engine.TypeStats{}
	for _, t := range s.prev.Types {
		prevTypes[t.Type] = t
	}
	for _, t := range st.Types {
		p, had := prevTypes[t.Type]
		ts := TypeSample{
			Type: t.Type, Queued: t.Queued, Dropped: t.Dropped, Restarts: t.Restarts, Processed: t.Processed,
		}
		if s.have && had {
			ts.Rate = rate(t.Processed, p.Processed)
			ts.DropRate = rate(t.Dropped, p.Dropped)
			var h engine.HandlerStats
			for i := range h.Buckets {
				if t.Handler.Buckets[i] >= p.Handler.Buckets[i] {
					h.Buckets[i] = t.Handler.Buckets[i] - p.Handler.Buckets[i]
				}
			}
			ts.P50 = Quantile(&h.Buckets, 0.5).Seconds()
			ts.P99 = Quantile(&h.Buckets, 0.99).Seconds()
		}
		if sv, ok := survey[t.Type]; ok {
			ts.Agents, ts.Priority, ts.Capacity, ts.Overflow = sv.Agents, sv.Priority, sv.Capacity, sv.Overflow.String()
			ts.Weight, ts.WeightLo, ts.WeightHi = sv.MeanWeight, sv.MinWeight, sv.MaxWeight
		}
		snap.Types = append(snap.Types, ts)
	}

	for r := range ds.DeadLetterCounts {
		d := DeadSample{Reason: engine.DeadLetterReason(r).String(), Total: ds.DeadLetterCounts[r]}
		if s.have {
			d.Rate = rate(ds.DeadLetterCounts[r], s.prevD.DeadLetterCounts[r])
		}
		snap.Dead = append(snap.Dead, d)
	}

	snap.Memory = s.memory()
	s.prev, s.prevD, s.prevT, s.have = st, ds, now, true
	// Keep the marks within the window, and the one just before it.
	keep := 0
	for keep+1 < len(s.marks) && now.Sub(s.marks[keep+1].t) > max(utilWindow, s.opts.Interval) {
		keep++
	}
	s.marks = append(s.marks[keep:], mark)
	return snap
}

// memory reads the runtime's figures and the pools.
func (s *sampler) memory() MemorySample {
	metrics.Read(s.rm)
	var m MemorySample
	u := func(i int) uint64 {
		if s.rm[i].Value.Kind() == metrics.KindUint64 {
			return s.rm[i].Value.Uint64()
		}
		return 0
	}
	m.Heap, m.HeapGoal, m.Goroutines, m.GCCycles = u(0), u(1), u(2), u(3)
	if s.rm[4].Value.Kind() == metrics.KindFloat64Histogram {
		h := s.rm[4].Value.Float64Histogram()
		if len(s.pause) == len(h.Counts) {
			// The highest bucket that moved bounds the longest pause.
			for i := len(h.Counts) - 1; i >= 0; i-- {
				if d := h.Counts[i] - s.pause[i]; d > 0 {
					if m.GCPauseMax == 0 {
						m.GCPauseMax = h.Buckets[i+1]    // the bucket's upper bound
						if math.IsInf(m.GCPauseMax, 1) { // unbounded: its lower bound
							m.GCPauseMax = h.Buckets[i]
						}
					}
					m.GCPauses += d
				}
			}
		}
		s.pause = append(s.pause[:0], h.Counts...)
	}
	m.Pools = []PoolSample{}
	for _, p := range s.e.PoolStats() {
		m.Pools = append(m.Pools, PoolSample{Type: p.Type, Hits: p.Hits, Misses: p.Misses, Puts: p.Puts})
	}
	if b := s.opts.Buffers; b != nil {
		st := b.Stats()
		m.Buffers = &BufferSample{Gets: st.Gets, Returns: st.Returns, Live: st.Live, Allocs: st.Allocs, Oversized: st.Oversized}
	}
	return m
}

// Quantile returns the q-quantile (0 < q ≤ 1) of a handler histogram with
// the engine's buckets (engine.HandlerBucketBound), interpolated linearly
// inside the bucket that holds it, as Prometheus's histogram_quantile
// does; a quantile in the last, unbounded bucket is reported as that
// bucket's lower bound. It returns 0 for an empty histogram.
func Quantile(buckets *[engine.HandlerBuckets]uint64, q float64) time.Duration {
	var n uint64
	for _, c := range buckets {
		n += c
	}
	if n == 0 || !(q > 0) {
		return 0
	}
	q = min(q, 1)
	rank := q * float64(n)
	var cum uint64
	for i, c := range buckets {
		if c == 0 || float64(cum+c) < rank {
			cum += c
			continue
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = engine.HandlerBucketBound(i - 1)
		}
		hi := engine.HandlerBucketBound(i)
		if hi < 0 {
			return lo
		}
		frac := (rank - float64(cum)) / float64(c)
		return lo + time.Duration(frac*float64(hi-lo))
	}
	return engine.HandlerBucketBound(engine.HandlerBuckets - 2)
}
