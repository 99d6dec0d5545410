package engine

// This file: the figures Stats leaves out because they cost more than a
// counter per message, or than a lock-free read, to keep current: dead
// letters by reason, the largest mailboxes and the scheduling weights
// (gathered by each loop scanning its own agents when asked), and the
// agent pools. They are read on demand, by a dashboard or an operator, and
// add nothing to the message path.

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/agentloop/agentloop/pool"
)

// DeadLetterReason is why a message was dead-lettered, as counted by
// DeadLetterStats: the engine error the dead letter carried.
type DeadLetterReason uint8

// The reasons, each the class of the errors that match one sentinel.
const (
	// ReasonMailboxFull: ErrMailboxFull, a full mailbox (DropNewest,
	// DropOldest) or an outbox to a full inbox that shed the message.
	ReasonMailboxFull DeadLetterReason = iota
	// ReasonTerminated: ErrTerminated, left in the mailbox of an agent
	// that terminated, or sent to one that had.
	ReasonTerminated
	// ReasonStopped: ErrStopped, left behind by Stop.
	ReasonStopped
	// ReasonInitFailed: ErrInitFailed, queued for an agent whose Init
	// failed.
	ReasonInitFailed
	// ReasonPanicked: ErrPanicked, queued for an agent that exceeded its
	// restart budget.
	ReasonPanicked
	// ReasonOther: any other error.
	ReasonOther

	// NumDeadLetterReasons is the number of reasons.
	NumDeadLetterReasons = int(ReasonOther) + 1
)

// String returns the reason's name in snake case ("mailbox_full", ...), as
// a dashboard or a metric label shows it.
func (r DeadLetterReason) String() string {
	switch r {
	case ReasonMailboxFull:
		return "mailbox_full"
	case ReasonTerminated:
		return "terminated"
	case ReasonStopped:
		return "stopped"
	case ReasonInitFailed:
		return "init_failed"
	case ReasonPanicked:
		return "panicked"
	case ReasonOther:
		return "other"
	}
	return fmt.Sprintf("DeadLetterReason(%d)", uint8(r))
}

// reasonOf classifies a dead letter's reason. The engine passes its
// sentinels unwrapped on every common path, so the switch decides; the
// errors.Is walk is for the wrapped causes of an agent that ended.
func reasonOf(err error) DeadLetterReason {
	switch err {
	case ErrMailboxFull:
		return ReasonMailboxFull
	case ErrTerminated:
		return ReasonTerminated
	case ErrStopped:
		return ReasonStopped
	}
	for _, c := range [...]struct {
		target error
		r      DeadLetterReason
	}{
		{ErrMailboxFull, ReasonMailboxFull}, {ErrTerminated, ReasonTerminated},
		{ErrStopped, ReasonStopped}, {ErrInitFailed, ReasonInitFailed},
		{ErrPanicked, ReasonPanicked},
	} {
		if errors.Is(err, c.target) {
			return c.r
		}
	}
	return ReasonOther
}

// countDeadLetter counts one dead letter to a by reason, on the counters of
// a's type on the loop it happens on (cur), or on a's own loop off the
// loops. The counters are atomics: the loop that dead-letters owns them
// except after Stop, when whoever sweeps a sealed loop adds to them too.
func (e *Engine) countDeadLetter(cur *loop, a *agent, reason error) {
	li := a.loop.idx
	if cur != nil {
		li = cur.idx
	}
	a.typ.perLoop[li].deadBy[reasonOf(reason)].Add(1)
	e.noteDeadLetter()
}

// DeadLetterCounts are dead letters counted by reason, indexed by
// DeadLetterReason.
type DeadLetterCounts [NumDeadLetterReasons]uint64

// Total returns the sum over all reasons.
func (c *DeadLetterCounts) Total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// TypeDeadLetters are the dead letters addressed to agents of one type.
type TypeDeadLetters struct {
	Type string
	DeadLetterCounts
}

// DeadLetterStats are the dead letters counted by reason: in total and per
// agent type, each message once. Total() of the totals moves with
// Stats().DeadLetters, counted at the same place: the two agree whenever
// no dead letter is being recorded in between.
type DeadLetterStats struct {
	DeadLetterCounts                   // over all types
	Types            []TypeDeadLetters // per type, sorted by name, every registered type
}

// DeadLetterStats returns the dead letters by reason and type, current to
// the last one recorded: the counters are atomics, read without waking any
// loop. Concurrency-safe.
func (e *Engine) DeadLetterStats() DeadLetterStats {
	var s DeadLetterStats
	for _, t := range e.sortedTypes() {
		td := TypeDeadLetters{Type: t.name}
		for _, tc := range t.perLoop {
			for r := range tc.deadBy {
				td.DeadLetterCounts[r] += tc.deadBy[r].Load()
			}
		}
		for r, v := range td.DeadLetterCounts {
			s.DeadLetterCounts[r] += v
		}
		s.Types = append(s.Types, td)
	}
	return s
}

// sortedTypes returns the registered types sorted by name.
func (e *Engine) sortedTypes() []*agentType {
	ts := *e.types.Load()
	out := make([]*agentType, 0, len(ts))
	for _, t := range ts {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// TypePoolStats are the counters of a Pooled type's agent-record pools,
// summed over its loops (see Pooled): a Spawn served by a recycled record
// is a hit, one that built a record a miss.
type TypePoolStats struct {
	Type string
	pool.Stats
}

// PoolStats returns the record pools of the Pooled types, sorted by type
// name; types that are not pooled are left out. Concurrency-safe.
func (e *Engine) PoolStats() []TypePoolStats {
	var out []TypePoolStats
	for _, t := range e.sortedTypes() {
		if !t.cfg.pooled {
			continue
		}
		ps := TypePoolStats{Type: t.name}
		for i := range t.pools {
			st := t.pools[i].stats()
			ps.Hits += st.Hits
			ps.Misses += st.Misses
			ps.Puts += st.Puts
		}
		out = append(out, ps)
	}
	return out
}

// MaxSurveyTop bounds Survey's top: the number of mailboxes each loop
// keeps while it scans, and so the memory and time of one survey beyond
// the scan itself.
const MaxSurveyTop = 1000

// ErrInLoop occurs when a call that waits for every loop (Survey) is made
// on one of the engine's loops, from a handler or hook, where it would
// wait for itself.
var ErrInLoop = errors.New("engine: called from an agent's loop")

// MailboxInfo is one agent's mailbox, as a survey found it.
type MailboxInfo struct {
	ID     AgentID
	Loop   int
	Queued int   // messages in its mailbox
	Bytes  int64 // payload bytes of those messages
	// Weight is the agent's scheduling weight in its loop's runnable queue
	// (package scheduler), 0 for an agent that has never been runnable
	// (one that never had a message while Running).
	Weight float64
}

// TypeSurvey is what a survey found of one agent type: its configuration
// and the scheduling weights of its started agents.
type TypeSurvey struct {
	Type     string
	Priority int      // the configured priority, 0..100 (see Priority)
	Capacity int      // the mailbox bound (see Mailbox)
	Overflow Overflow // what a full mailbox does
	Agents   int      // started agents, on all loops
	Queued   int      // messages in their mailboxes
	// Weighted counts the agents that have a weight (those that have been
	// runnable at least once); MeanWeight, MinWeight and MaxWeight are over them, and
	// 0 when there are none.
	Weighted                         int
	MeanWeight, MinWeight, MaxWeight float64
}

// Survey is a scan of every loop's started agents.
type Survey struct {
	// Mailboxes are the largest mailboxes, most queued messages first (ties
	// by ID), at most the top asked for; empty mailboxes are left out.
	Mailboxes []MailboxInfo
	// Types are every registered type, sorted by name.
	Types []TypeSurvey
}

// loopSurvey is one loop's share of a survey.
type loopSurvey struct {
	top   mailboxHeap
	types map[*agentType]*TypeSurvey
	sum   map[*agentType]float64
}

// Survey asks every loop to scan its agents and returns the top largest
// mailboxes and, per type, the scheduling weights. Each loop scans on its
// own goroutine, between two turns, so the figures of one loop are
// consistent with each other; a loop's scan costs it time in proportion
// to its agents (a few nanoseconds each), and Survey waits for every loop
// to take its turn: a loop stuck in a handler holds it up until ctx ends.
//
// Before Start there is nothing to scan: Survey returns the types with no
// agents. It returns an error wrapping ErrInvalidArgument for a top
// outside 0..MaxSurveyTop, ErrInLoop when called from a handler or hook,
// ErrStopped once Stop has begun, or ctx.Err(). Concurrency-safe.
func (e *Engine) Survey(ctx context.Context, top int) (Survey, error) {
	if top < 0 || top > MaxSurveyTop {
		return Survey{}, fmt.Errorf("%w: Survey: top %d, want 0..%d", ErrInvalidArgument, top, MaxSurveyTop)
	}
	if e.onLoop() {
		return Survey{}, fmt.Errorf("%w: Survey", ErrInLoop)
	}
	if e.state.Load() >= stateStopping {
		return Survey{}, fmt.Errorf("%w: Survey", ErrStopped)
	}
	var parts []*loopSurvey
	if e.started.Load() {
		done := make(chan *loopSurvey, len(e.loops)) // room for all: a late loop never blocks
		for _, l := range e.loops {
			l.post(&envelope{op: opFunc, fn: func() { done <- l.survey(top) }})
		}
		for range e.loops {
			select {
			case p := <-done:
				parts = append(parts, p)
			case <-e.stopCh:
				return Survey{}, fmt.Errorf("%w: Survey", ErrStopped)
			case <-ctx.Done():
				return Survey{}, fmt.Errorf("engine: Survey: %w", ctx.Err())
			}
		}
	}
	return e.mergeSurveys(parts, top), nil
}

// survey scans the loop's started agents. Loop only.
func (l *loop) survey(top int) *loopSurvey {
	s := &loopSurvey{types: make(map[*agentType]*TypeSurvey), sum: make(map[*agentType]float64)}
	for a := l.agents; a != nil; a = a.next {
		ts := s.types[a.typ]
		if ts == nil {
			ts = &TypeSurvey{}
			s.types[a.typ] = ts
		}
		q := a.mb.len()
		ts.Agents++
		ts.Queued += q
		w := 0.0
		if a.se != nil {
			w = a.se.Weight()
			if ts.Weighted == 0 || w < ts.MinWeight {
				ts.MinWeight = w
			}
			if ts.Weighted == 0 || w > ts.MaxWeight {
				ts.MaxWeight = w
			}
			ts.Weighted++
			s.sum[a.typ] += w
		}
		if q == 0 || top == 0 {
			continue
		}
		m := MailboxInfo{ID: a.ident(), Loop: l.idx, Queued: q, Bytes: a.qbytes, Weight: w}
		switch {
		case len(s.top) < top:
			heap.Push(&s.top, m)
		case worse(s.top[0], m):
			s.top[0] = m
			heap.Fix(&s.top, 0)
		}
	}
	return s
}

// mergeSurveys adds up the loops' surveys.
func (e *Engine) mergeSurveys(parts []*loopSurvey, top int) Survey {
	var out Survey
	var all []MailboxInfo
	for _, p := range parts {
		all = append(all, p.top...)
	}
	sort.Slice(all, func(i, j int) bool { return worse(all[j], all[i]) })
	if len(all) > top {
		all = all[:top]
	}
	out.Mailboxes = all
	for _, t := range e.sortedTypes() {
		ts := TypeSurvey{Type: t.name, Priority: t.cfg.priority, Capacity: t.cfg.capacity, Overflow: t.cfg.overflow}
		var sum float64
		for _, p := range parts {
			lt := p.types[t]
			if lt == nil {
				continue
			}
			ts.Agents += lt.Agents
			ts.Queued += lt.Queued
			if lt.Weighted > 0 {
				if ts.Weighted == 0 || lt.MinWeight < ts.MinWeight {
					ts.MinWeight = lt.MinWeight
				}
				if ts.Weighted == 0 || lt.MaxWeight > ts.MaxWeight {
					ts.MaxWeight = lt.MaxWeight
				}
				ts.Weighted += lt.Weighted
				sum += p.sum[t]
			}
		}
		if ts.Weighted > 0 {
			ts.MeanWeight = sum / float64(ts.Weighted)
		}
		out.Types = append(out.Types, ts)
	}
	return out
}

// worse orders mailboxes for a survey: x comes after y if it holds fewer
// messages, or as many and a greater ID (type, then key), so that the
// order is total and a survey of the same agents keeps the same ones.
func worse(x, y MailboxInfo) bool {
	if x.Queued != y.Queued {
		return x.Queued < y.Queued
	}
	if x.ID.Type != y.ID.Type {
		return x.ID.Type > y.ID.Type
	}
	return x.ID.Key > y.ID.Key
}

// mailboxHeap keeps the largest mailboxes seen so far, the worst on top.
type mailboxHeap []MailboxInfo

func (h mailboxHeap) Len() int           { return len(h) }
func (h mailboxHeap) Less(i, j int) bool { return worse(h[i], h[j]) }
func (h mailboxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *mailboxHeap) Push(x any)        { *h = append(*h, x.(MailboxInfo)) }
func (h *mailboxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
