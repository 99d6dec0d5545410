package engine

// This file: posting into a loop from any goroutine: the inbox, the spill, the
// outbox between loops, wake-ups, and sweeping a stopped loop.

import (
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/agentloop/agentloop/internal/ring"
	"github.com/agentloop/agentloop/lifecycle"
)

// post hands env to the loop from a goroutine outside the engine. While
// the inbox is full the poster parks until the loop commits a drained
// batch (see awaitRoom): the inbox is the backpressure point of outside
// senders, and a waiting sender takes no CPU from the loop it waits on.
// Only after waiting spillWait does it spill instead, so that a handler
// that posts to its own loop through the outside API (or to a loop whose
// handler posts back) slows down but cannot deadlock it. While a spill is
// pending every post first waits for the loop to take it (the same bound),
// so a spill never turns into an unbounded queue that lets outside senders
// run ahead, and each sender's order is kept.
func (l *loop) post(env *envelope) {
	if l.spilling.Load() && l.postSpilling(env) {
		return
	}
	if !l.tryPush(env) && l.postFull(env) {
		return
	}
	l.wake()
	if l.sealed.Load() {
		// The loop is gone; nobody else will pop what we pushed.
		l.sweep()
	}
}

// postMsg is post for message m to incarnation gen of a, the path of
// every send from outside: it packs the message straight into an inbox
// slot, and builds an envelope only for post's slower paths.
func (l *loop) postMsg(a *agent, gen uint32, m *Message) {
	if !l.spilling.Load() {
		if s, pos, ok := l.inbox.TryReserve(); ok {
			s.p, s.n, s.op, s.msg = unsafe.Pointer(a), gen, opMsg, *m
			l.inbox.Publish(pos)
			l.wake()
			if l.sealed.Load() {
				l.sweep()
			}
			return
		}
	}
	l.post(&envelope{a: a, gen: gen, op: opMsg, msg: *m})
}

// postSpilling is post while a spill is pending; it reports whether env
// went to the spill. Otherwise the spill has been taken (or the loop is
// gone) and env still has to be pushed.
func (l *loop) postSpilling(env *envelope) bool {
	if !l.e.started.Load() {
		return l.trySpill(env) // before Start nobody pops the inbox
	}
	var w roomWait
	defer w.release()
	if !l.awaitSpillTaken(&w) && l.trySpill(env) {
		l.wake()
		return true
	}
	return false
}

// postFull is post once the inbox was found full: it parks until the loop
// frees room, and pushes env then; it reports whether env was spilled
// instead, after spillWait.
func (l *loop) postFull(env *envelope) (spilled bool) {
	var w roomWait
	defer w.release()
	for {
		if l.sealed.Load() {
			l.sweep()
			if l.tryPush(env) {
				return false
			}
			continue
		}
		// Announce the wait before the last try: the loop commits a
		// batch before it looks for waiters, so either this push sees
		// the room or the loop sees the waiter. sweep does the same once
		// the loop is gone, hence the second look at sealed.
		l.roomWaiters.Add(1)
		if l.tryPush(env) {
			l.roomWaiters.Add(-1)
			return false
		}
		if l.sealed.Load() {
			l.roomWaiters.Add(-1)
			continue
		}
		expired := l.awaitRoom(&w)
		l.roomWaiters.Add(-1)
		if expired && l.trySpill(env) {
			l.wake()
			return true
		}
	}
}

// awaitSpillTaken waits, up to the wait's spillWait, for the loop to take
// a pending spill; it reports whether it did (or the loop is gone, which
// post's push then finds).
func (l *loop) awaitSpillTaken(w *roomWait) bool {
	for l.spilling.Load() {
		if l.sealed.Load() {
			return true
		}
		l.roomWaiters.Add(1) // before the last look, as in postFull
		if !l.spilling.Load() || l.sealed.Load() {
			l.roomWaiters.Add(-1)
			return true
		}
		l.wake()
		expired := l.awaitRoom(w)
		l.roomWaiters.Add(-1)
		if expired {
			return false
		}
	}
	return true
}

// roomWait is one post's wait for its loop to make progress: the timer
// that bounds it, taken from timers on the first park, and whether the
// bound has passed.
type roomWait struct {
	t       *time.Timer
	expired bool
}

// timers holds stopped timers for roomWait, so that a parking poster
// allocates nothing in the steady state.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// awaitRoom parks the caller, which has announced itself in roomWaiters,
// until the loop hands it a token (signalRoom) or w's spillWait has passed
// since its first park; it reports the latter. A token may be stale (meant
// for a waiter that found room without parking): the caller looks again
// either way.
func (l *loop) awaitRoom(w *roomWait) (expired bool) {
	if w.expired {
		return true
	}
	if w.t == nil {
		w.t = timers.Get().(*time.Timer)
		w.t.Reset(spillWait)
	}
	select {
	case <-l.roomCh:
		return false
	case <-w.t.C:
		w.expired = true
		return true
	}
}

// release gives w's timer back (stopped: since Go 1.23 a stopped timer's
// channel holds no stale tick).
func (w *roomWait) release() {
	if w.t != nil {
		w.t.Stop()
		timers.Put(w.t)
		w.t = nil
	}
}

// signalRoom wakes the posters parked on l: one token each, as far as
// roomCh holds them; tokens already waiting in it wake the rest, which
// look again and, finding the inbox still full, wait for the next batch.
// The loop calls it after committing a batch that freed room, after taking
// a spill and after exiting; sweep after a sealed loop's last pops.
func (l *loop) signalRoom() {
	for n := l.roomWaiters.Load(); n > 0; n-- {
		select {
		case l.roomCh <- struct{}{}:
		default:
			return
		}
	}
}

// spillWait is how long an outside post waits on a full inbox (or a
// pending spill) before it spills. A variable only so that tests can
// lengthen it, to tell a wake-up by the loop from the bound's.
var spillWait = 10 * time.Millisecond

// roomTokens is the capacity of a loop's roomCh: how many parked posters
// one signalRoom can wake at once.
const roomTokens = 64

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
	if ob.Len() > 0 || !l.tryPush(env) {
		if ob.Len() >= max(l.inbox.Cap(), minOutbox) && src.shed(ob, env) {
			return
		}
		ob.PushBack(*env)
		src.pending++
		return
	}
	l.wakeFrom(src)
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
	if l.roomWaiters.Load() > 0 {
		l.signalRoom() // posters waiting for the spill to be taken
	}
	for i := range spill {
		if l.dispatch(&spill[i]) {
			return true
		}
	}
	return false
}

// tryPush packs env into l's inbox; false when the inbox is full. Safe
// from any goroutine.
func (l *loop) tryPush(env *envelope) bool {
	s, pos, ok := l.inbox.TryReserve()
	if ok {
		s.pack(env)
		l.inbox.Publish(pos)
	}
	return ok
}

// popInbox takes the oldest published envelope out of l's inbox; false
// when there is none. For the inbox's one consumer only: the loop, or a
// sweep once the loop is gone.
func (l *loop) popInbox(env *envelope) bool {
	p := l.inbox.Peek()
	if p == nil {
		return false
	}
	*env = p.unpack()
	l.inbox.Advance()
	return true
}

// wake makes sure the loop will look at its inbox: it hands a parked loop's
// goroutine a token, taking over a wake-up a peer loop holds (see
// wakeFrom), and leaves an awake or borrowed loop alone.
func (l *loop) wake() {
	for {
		s := l.sleeping.Load()
		if s != sleepParked && s != sleepHeld {
			return
		}
		if l.sleeping.CompareAndSwap(s, sleepAwake) {
			l.signalWake()
			return
		}
	}
}

// signalWake gives the loop's goroutine its token; whoever moves sleeping
// to sleepAwake from another state sends exactly one.
func (l *loop) signalWake() {
	select {
	case l.wakeCh <- struct{}{}:
	default:
	}
}

// sweep dead-letters what is left in the inbox and the spill of an exited
// loop. The spill matters too: a post that waited out spillWait while the
// loop was quitting can spill after quit took the spill for the last time;
// trySpill refuses once sealed is set, so Stop's sweep after sealing finds
// every such envelope.
func (l *loop) sweep() {
	l.sweepMu.Lock()
	defer l.sweepMu.Unlock()
	l.spillMu.Lock()
	spill := l.spill
	l.spill = nil
	l.spilling.Store(false)
	l.spillMu.Unlock()
	for i := range spill {
		l.sweepOne(&spill[i])
	}
	var env envelope
	for l.inbox.Pending() {
		if !l.popInbox(&env) {
			runtime.Gosched() // a producer is between reserving and writing
			continue
		}
		l.sweepOne(&env)
	}
	l.inbox.Commit()
	if l.roomWaiters.Load() > 0 {
		l.signalRoom() // they find the loop sealed and sweep what they push
	}
}

// sweepOne gives up on one envelope of an exited loop: an agent that never
// started leaves the registry, messages are dead-lettered.
func (l *loop) sweepOne(env *envelope) {
	if env.op == opInit {
		l.e.transition(env.a, lifecycle.Terminated)
		l.e.notifyTerminated(env.a, ErrStopped) // TerminationObservers see every end
		l.e.registry.remove(env.a)
		return
	}
	l.e.dropEnvelope(nil, env, ErrStopped)
}
