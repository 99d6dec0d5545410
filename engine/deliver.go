package engine

// This file: running runnable agents: delivery to Receive and ReceiveBatch,
// handler timing, and publishing the loop's counters.

import (
	"context"
	"runtime/debug"
	"runtime/pprof"

	"github.com/agentloop/agentloop/internal/labels"
	"github.com/agentloop/agentloop/lifecycle"
	"github.com/agentloop/agentloop/pool"
)

// runAgents serves runnable agents in the order of the weighted queue,
// each for up to a quantum of messages (or one batch), until budget
// messages have been handled or none is runnable.
//
// Time is read at most once per run: each timed run's handler time is the
// distance between two consecutive reads. It feeds the agent's weight (through
// Account), its type's handler-latency histogram and the loop's busy time.
func (l *loop) runAgents(budget int) {
	if l.runq.Len() == 0 {
		l.signalSpaceWaiters()
		return
	}
	q := l.e.cfg.quantum
	// With one runnable agent there is nothing to weigh it against, and
	// a loop that serves a lone sender or a ping-pong peer runs one short
	// turn per message: there the clock is read on one turn in
	// timeSampleTurns, and the other runs are charged their type's last
	// measured time per message. A type not yet measured on this loop is
	// always measured.
	timed := l.runq.Len() > 1 || l.turns&(timeSampleTurns-1) == 0
	var t0 int64
	if timed {
		t0 = l.e.runTime()
	}
	for budget > 0 {
		se, ok := l.runq.Pop()
		if !ok {
			break
		}
		a := se.Value
		a.scheduled = false
		st := a.lc.State()
		if st != lifecycle.Running && !(a.drainOnStop && st == lifecycle.Paused) {
			continue // paused (or gone): messages wait in the mailbox
		}
		if labels.Enabled() {
			l.setLabels(a.typ)
		} else if l.label != nil {
			l.clearLabels()
		}
		tc := a.tc
		measure := timed || tc.lastPer == 0
		if measure && !timed {
			t0 = l.e.runTime()
		}
		var done int
		var bytes int64
		if a.batcher {
			done, bytes = l.runBatch(a, min(a.typ.cfg.batch, budget))
		} else {
			done, bytes = l.runAgent(a, min(q, budget))
		}
		var el int64
		if measure {
			t1 := l.e.runTime()
			el, t0 = t1-t0, t1
			if done > 0 {
				tc.lastPer = max(el/int64(done), 1)
			}
		} else {
			el = tc.lastPer * int64(done)
		}
		budget -= done
		a.qbytes -= bytes
		tc.processed += uint64(done)
		tc.queued -= int64(done)
		tc.observe(el, done)
		l.touch(tc)
		l.busy += el
		if a.typ.cfg.reserves() {
			a.rs.give(done) // give the places back, once per run
		}
		if a.lc.State() == lifecycle.Terminated {
			continue // a panic past its restart budget ended it
		}
		if timed {
			l.runq.Account(se, el, done, a.qbytes)
		}
		switch {
		case a.mb.len() > 0:
			if !a.scheduled { // a send to itself may have queued it already
				a.scheduled = true
				l.runq.Push(se)
			}
		case a.terminating:
			l.finalize(a, ErrTerminated)
		}
	}
	l.signalSpaceWaiters()
}

func (l *loop) signalSpaceWaiters() {
	if l.spaceWaiters.Load() > 0 {
		l.signalSpace()
	}
}

// timeSampleTurns: a loop with a single runnable agent reads the clock on
// one turn in this many (a power of two).
const timeSampleTurns = 8

// runAgent delivers up to max messages to a and returns how many, and
// their payload bytes. A panic in Receive is caught here, once per run
// rather than once per message: the panicking message counts as delivered
// and the agent is restarted or terminated. OnMessage plugins, when
// installed, see each message first; without them the loop over them is
// an empty range.
func (l *loop) runAgent(a *agent, max int) (n int, bytes int64) {
	c := &l.ctx
	c.a = a
	var held *pool.Buffer // the reference of the delivery in Receive, if any
	mb := &a.mb
	buf := mb.buf // the slots this run takes, cleared when it ends
	defer func() {
		if r := recover(); r != nil {
			if held != nil {
				held.Release() // the panicking delivery is over too
			}
			l.recovered(a, "Receive", r, debug.Stack())
		}
		mb.clearTaken(buf, n)
		c.a = nil
	}()
	obs := l.e.plugins.Load().onMessage
	var id AgentID
	if len(obs) > 0 {
		id = a.ident()
	}
	impl := a.impl
	for n < max && mb.n > 0 {
		// The slot is Receive's argument itself, copied once; Receive may
		// reuse it (a send to itself), so nothing reads it after the call.
		p := mb.take()
		n++
		bytes += int64(len(p.Payload))
		if len(obs) > 0 {
			for _, o := range obs {
				l.e.observe(o, id, p)
			}
		}
		if p.x == nil {
			impl.Receive(c, *p)
			continue
		}
		if rq := p.req(); rq != nil {
			c.rq, c.rqInc = rq, rq.pending()
			impl.Receive(c, *p)
			l.requestDone(c)
			continue
		}
		held = p.buffer()
		impl.Receive(c, *p)
		if held != nil {
			held.Release() // this delivery's reference
			held = nil
		}
	}
	return n, bytes
}

// runBatch hands a batch receiver up to max queued messages in one
// ReceiveBatch call, from the loop's reused slice, which is cleared after
// the call so that it keeps no payload alive. A request at the front of
// the mailbox goes alone through Receive; a request behind ordinary
// messages ends the batch and waits for the next run.
func (l *loop) runBatch(a *agent, max int) (n int, bytes int64) {
	if front := a.mb.front(); front != nil && front.req() != nil {
		return l.runAgent(a, 1)
	}
	batch := l.batch[:0]
	for len(batch) < max {
		p := a.mb.front()
		if p == nil || p.req() != nil {
			break
		}
		batch = append(batch, Message{})
		m := &batch[len(batch)-1]
		a.mb.pop(m)
		bytes += int64(len(m.Payload))
	}
	l.batch = batch
	n = len(batch)
	c := &l.ctx
	c.a = a
	defer func() {
		if r := recover(); r != nil {
			l.recovered(a, "ReceiveBatch", r, debug.Stack())
		}
		c.a = nil
		for i := range batch {
			if b := batch[i].buffer(); b != nil {
				b.Release()
			}
		}
		clear(batch)
	}()
	if obs := l.e.plugins.Load().onMessage; len(obs) > 0 {
		id := a.ident()
		for i := range batch {
			for _, p := range obs {
				l.e.observe(p, id, &batch[i])
			}
		}
	}
	a.impl.(BatchReceiver).ReceiveBatch(c, batch)
	return n, bytes
}

func (l *loop) setLabels(t *agentType) {
	if l.label != t {
		pprof.SetGoroutineLabels(t.labelCtx)
		l.label = t
	}
}

func (l *loop) clearLabels() {
	pprof.SetGoroutineLabels(context.Background())
	l.label = nil
}

// signalSpace wakes every outside sender waiting for room in a Block
// mailbox of this loop (see waitForRoom): it takes the list of waiters and
// hands each one token; each looks again and reserves or waits anew.
// Loop only; it allocates nothing.
func (l *loop) signalSpace() {
	l.spaceMu.Lock()
	ws := l.spaceList
	l.spaceList, l.spaceSpare = l.spaceSpare, nil
	l.spaceWaiters.Store(0)
	l.spaceMu.Unlock()
	for _, w := range ws {
		select {
		case w.ch <- struct{}{}:
		default: // a token is waiting already
		}
	}
	clear(ws)
	l.spaceSpare = ws[:0]
}

// publish copies the loop-owned counters that changed into their atomic
// mirrors, once per turn rather than once per message. The message counts
// go out every time; the handler histograms, busy time and scheduler
// counters (a dozen stores, each an exchange on amd64) only when full is
// set: every publishEvery turns, when the engine stops or someone waits
// for idleness, and when Stats asks (fullWanted). A loop that parks after
// every message, as in a ping-pong, would otherwise pay them per message.
func (l *loop) publish(full bool) {
	keep := l.dirty[:0]
	for _, tc := range l.dirty {
		if tc.publish(full) {
			keep = append(keep, tc)
		}
	}
	clear(l.dirty[len(keep):])
	l.dirty = keep
	storeIfChanged(&l.stats.turns, l.turns)
	if n := int64(l.runq.Len()); l.stats.runnable.Load() != n {
		l.stats.runnable.Store(n)
	}
	if n := int64(l.timers.Len()); l.stats.timers.Load() != n {
		l.stats.timers.Store(n)
	}
	if !full {
		if l.turns != l.lastFull && !l.stale.Load() {
			l.stale.Store(true)
		}
		return
	}
	l.lastFull = l.turns
	if l.stats.busy.Load() != l.busy {
		l.stats.busy.Store(l.busy)
	}
	if st := l.runq.Stats(); st.Picks != l.stats.sched[0].Load() {
		for i, v := range [...]uint64{st.Picks, st.AgedPicks, st.Epochs, st.Reweighs, st.Messages, st.LongestWait} {
			storeIfChanged(&l.stats.sched[i], v)
		}
	}
	if l.stale.Load() {
		l.stale.Store(false)
	}
	if l.fullWanted.Load() {
		l.fullWanted.Store(false)
	}
}

func (l *loop) touch(tc *typeCounters) {
	if !tc.dirty {
		tc.dirty = true
		l.dirty = append(l.dirty, tc)
	}
}
