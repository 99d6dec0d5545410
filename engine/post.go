package engine

// This file: posting into a loop from any goroutine: the inbox, the spill, the
// outbox between loops, wake-ups, and sweeping a stopped loop.

import (
	"runtime"
	"time"

	"github.com/agentloop/agentloop/internal/ring"
	"github.com/agentloop/agentloop/lifecycle"
)

// post hands env to the loop from a goroutine outside the engine. It waits
// (spinning, then yielding, then sleeping briefly) while the inbox is full:
// the inbox is the backpressure point of outside senders. Only after
// waiting spillWait does it spill instead, so that a handler that posts to
// its own loop through the outside API slows down but cannot deadlock it.
// While a spill is pending every post first waits for the loop to take it
// (the same bound), so a spill never turns into an unbounded queue that
// lets outside senders run ahead, and each sender's order is kept.
func (l *loop) post(env *envelope) {
	if l.spilling.Load() {
		if !l.e.started.Load() {
			if l.trySpill(env) { // before Start nobody pops the inbox
				return
			}
		} else if !l.waitSpillTaken() && l.trySpill(env) {
			l.wake()
			return
		}
	}
	var p patience
	for !l.inbox.TryPush(env) {
		if l.sealed.Load() {
			l.sweep()
			continue
		}
		if p.wait() && l.trySpill(env) {
			l.wake()
			return
		}
	}
	l.wake()
	if l.sealed.Load() {
		// The loop is gone; nobody else will pop what we pushed.
		l.sweep()
	}
}

// waitSpillTaken waits up to spillWait for the loop to take a pending
// spill; it reports whether it did.
func (l *loop) waitSpillTaken() bool {
	var p patience
	for l.spilling.Load() {
		if l.sealed.Load() {
			return true // post's loop sweeps
		}
		l.wake()
		if p.wait() {
			return false
		}
	}
	return true
}

// patience paces an outside goroutine waiting on a loop: spin, then
// yield, then sleep briefly (backoff). wait reports true once it has slept
// for spillWait; the clock is read only after spinRounds rounds.
type patience struct {
	i     int
	since time.Time
}

func (p *patience) wait() (expired bool) {
	if p.i >= spinRounds {
		if p.since.IsZero() {
			p.since = time.Now()
		} else if time.Since(p.since) >= spillWait {
			return true
		}
	}
	backoff(p.i)
	p.i++
	return false
}

// spillWait is how long an outside post waits on a full inbox (or a
// pending spill) before it spills; spinRounds how many backoff rounds pass
// before the clock is read at all.
const (
	spillWait  = 10 * time.Millisecond
	spinRounds = 64
)

// postFrom hands env to l from loop src. A loop never waits: when l's inbox
// is full the envelope stays in src's outbox for l, and everything src posts
// to l after it queues behind it, so order between two agents is kept.
//
// The outbox is bounded by the target's overflow policies, as if it were
// part of the target's mailboxes: once it holds as many envelopes as l's
// inbox (and at least minOutbox), a message to a DropNewest agent and a
// publish to DropNewest or DropOldest subscribers are dead-lettered
// (ErrMailboxFull) instead of queued, and a message to a DropOldest agent
// pushes out the oldest message for the same agent at the front of the
// outbox, or else is dropped itself. Messages to Reject and Block agents
// hold mailbox places reserved before sending, so their capacity bounds
// them already; control work (replies, lifecycle steps) is never shed.
func (l *loop) postFrom(src *loop, env *envelope) {
	ob := &src.outbox[l.idx]
	if ob.Len() > 0 || !l.inbox.TryPush(env) {
		if ob.Len() >= max(l.inbox.Cap(), minOutbox) && src.shed(ob, env) {
			return
		}
		ob.PushBack(*env)
		src.pending++
		return
	}
	l.wake()
}

// minOutbox is the least number of envelopes an outbox holds before the
// targets' overflow policies apply to it, so that a small inbox
// (WithInboxSize) does not turn a burst into drops.
const minOutbox = 4096

// shed applies the target's overflow policy to env, bound for a full
// outbox ob of src; it reports whether env was consumed (dead-lettered).
// Drops are counted on src's counters for the target's type, since the
// target's own belong to its loop.
func (src *loop) shed(ob *ring.Deque[envelope], env *envelope) bool {
	switch env.op {
	case opMsg:
		a := env.a
		switch a.typ.cfg.overflow {
		case DropOldest:
			if front := ob.Front(); front.op == opMsg && front.a == a {
				old, _ := ob.PopFront()
				src.pending--
				src.shedMsg(old.a, old.gen, old.msg)
				return false // env takes the freed place
			}
			fallthrough
		case DropNewest:
			src.shedMsg(a, env.gen, env.msg)
			return true
		}
	case opPublish:
		if env.gen == publishReserved {
			return false // bounded by the subscribers' capacity, like a send
		}
		for _, a := range env.subs {
			src.shedMsg(a, a.gen.Load(), env.msg)
		}
		return true
	}
	return false
}

// shedMsg dead-letters a message src could not hand to a's loop.
func (src *loop) shedMsg(a *agent, gen uint32, m Message) {
	tc := a.typ.perLoop[src.idx]
	tc.received++
	tc.dropped++
	src.touch(tc)
	src.deadLetterAt(a, gen, m, ErrMailboxFull)
}

func (l *loop) trySpill(env *envelope) bool {
	l.spillMu.Lock()
	defer l.spillMu.Unlock()
	if l.sealed.Load() {
		return false
	}
	l.spill = append(l.spill, *env)
	l.spilled.Add(1)
	l.spilling.Store(true)
	return true
}

// takeSpill moves the spill into the loop once the inbox is fully drained.
func (l *loop) takeSpill() (quit bool) {
	if !l.inbox.Drained() {
		return false
	}
	l.spillMu.Lock()
	spill := l.spill
	l.spill = nil
	l.spilling.Store(false)
	l.spillMu.Unlock()
	for i := range spill {
		if l.dispatch(&spill[i]) {
			return true
		}
	}
	return false
}

func (l *loop) wake() {
	if l.sleeping.Load() != 0 && l.sleeping.CompareAndSwap(1, 0) {
		select {
		case l.wakeCh <- struct{}{}:
		default:
		}
	}
}

func backoff(i int) {
	switch {
	case i < 16:
		// spin
	case i < 64:
		runtime.Gosched()
	default:
		time.Sleep(20 * time.Microsecond)
	}
}

// sweep dead-letters what is left in the inbox of an exited loop.
func (l *loop) sweep() {
	l.sweepMu.Lock()
	defer l.sweepMu.Unlock()
	var env envelope
	for l.inbox.Pending() {
		if !l.inbox.Pop(&env) {
			runtime.Gosched() // a producer is between reserving and writing
			continue
		}
		if env.op == opInit {
			l.e.transition(env.a, lifecycle.Terminated)
			l.e.registry.remove(env.a)
			continue
		}
		l.e.dropEnvelope(nil, &env, ErrStopped)
	}
	l.inbox.Commit()
}
