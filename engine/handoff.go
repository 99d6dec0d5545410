package engine

// This file: handing a parked loop's turns to the loop that woke it.
//
// A loop's state belongs to whoever holds the loop, not to a goroutine: its
// own goroutine while it is awake, and, while it is parked, a peer loop
// that borrowed it. When loop A posts to a parked loop B and A is about to
// run out of work itself (a ping-pong, a request answered on another
// loop), waking B would cost a goroutine park and ready on each side, as
// much as the rest of the round trip together. Instead A holds B's wake-up
// and, when its own turn ends with nothing to do, runs B's turns on its own
// goroutine; B's reply lands in A's inbox, A's next turn handles it, and
// the exchange goes on without either goroutine parking. As soon as A has
// work of its own, or B has none left, A hands B back: to its goroutine
// with a token when B still has something to do, or to sleep.
//
// The word sleeping says who holds a loop:
//
//	sleepAwake     its goroutine runs it
//	sleepParked    parked (or about to): the first poster wakes it
//	sleepHeld      parked, its wake-up held by the peer named in that
//	               peer's handoff; an outside poster takes the wake-up over
//	               (wake), so no goroutine outside the loops ever waits on a
//	               peer that might be blocked
//	sleepBorrowed  a peer runs its turns; the peer looks at its inbox when
//	               it hands it back, so posters need do nothing
//
// Every change of holder is an atomic operation on sleeping or a token on
// wakeCh, so each holder sees everything the previous one wrote.
const (
	sleepAwake int32 = iota
	sleepParked
	sleepHeld
	sleepBorrowed
)

// WithHandoff sets whether a loop may run a parked peer's turns on its own
// goroutine (on by default). A loop whose handler posts to an agent on a
// parked loop, as the last thing it has to do, then runs that loop's next
// turns itself instead of waking its goroutine, and the two exchange
// messages without a goroutine parking: a ping-pong across loops, or a
// request answered on another loop, costs a fraction of the wake-ups.
// Everything the engine promises holds either way (order, isolation of an
// agent's state, one handler at a time per loop); what changes is the
// goroutine a handler runs on, and that an agent on the parked loop waits
// for the posting handler to return. Turn it off when handlers keep
// computing long after such a post, or block, so that the peer starts at
// once on its own goroutine. Handoffs are always off under a Clock other
// than the system one (WithClock).
func WithHandoff(on bool) Option {
	return optionFunc(func(c *config) error {
		c.noHandoff = !on
		return nil
	})
}

// borrowTurns bounds how many turns in a row a loop runs for a peer before
// it hands the peer back to its own goroutine, so that a peer with a
// steady stream of outside work runs where it always does.
const borrowTurns = 64

// wakeFrom is wake for a post by loop src. When src is about to run out of
// work (the handler posting has no more messages and src nothing else
// queued), it holds the wake-up instead of sending it. Under a virtual
// clock handoffs are off: the enginetest harness steps time only once
// every loop is parked on its own goroutine.
func (l *loop) wakeFrom(src *loop) {
	if l.sleeping.Load() != sleepParked {
		return // awake, or held or borrowed by a peer that will look
	}
	if src.handoff == nil && l.e.handoff && src.idleAfterRun() &&
		l.sleeping.CompareAndSwap(sleepParked, sleepHeld) {
		src.handoff = l
		return
	}
	l.wake()
}

// idleAfterRun reports whether the loop looks like it will park after the
// handler it is running: nothing else to run, nothing in its inbox.
func (l *loop) idleAfterRun() bool {
	if a := l.ctx.a; a != nil && a.mb.len() > 0 {
		return false
	}
	return l.runq.Len() == 0 && l.ready.Len() == 0 && l.inbox.Peek() == nil
}

// borrowHandoff runs the turns of the peer whose wake-up l holds, on l's
// goroutine, until l has work of its own or the peer has none; it reports
// whether it ran any. An outside poster may have taken the wake-up over
// meanwhile: then the peer's goroutine runs it and there is nothing to do.
func (l *loop) borrowHandoff() bool {
	b := l.handoff
	l.handoff = nil
	if !b.sleeping.CompareAndSwap(sleepHeld, sleepBorrowed) {
		return false
	}
	// pprof labels belong to the goroutine: b's turns run under l's, and
	// each loop's record of what its goroutine carries follows suit.
	own := b.label
	b.label = l.label
	b.stats.borrowed.Add(1)
	for i := 0; ; i++ {
		if b.turn() {
			// Stop's last step ran here; b's goroutine quits.
			l.label, b.label = b.label, own
			b.quitting = true
			b.handOver()
			b.resume()
			return true
		}
		b.handOver() // whatever b's handlers held on other loops
		if l.hasWork() || !b.hasWork() || i == borrowTurns {
			break
		}
	}
	l.label, b.label = b.label, own
	b.giveBack()
	return true
}

// handOver wakes the peer whose wake-up l holds, if any: l has work of
// its own (or is quitting), so the peer is better off on its goroutine.
func (l *loop) handOver() {
	if b := l.handoff; b != nil {
		l.handoff = nil
		if b.sleeping.CompareAndSwap(sleepHeld, sleepAwake) {
			b.signalWake()
		}
	}
}

// resume hands a borrowed loop back to its goroutine, which runs from
// where it parked.
func (b *loop) resume() {
	b.sleeping.Store(sleepAwake)
	b.signalWake()
}

// giveBack ends a borrow: a loop with something to do, or with timers or a
// retry its goroutine's wait was not armed for, goes back to its
// goroutine; an idle one goes back to sleep as park would leave it, with
// the same last look at its inbox.
func (b *loop) giveBack() {
	if b.hasWork() || b.inbox.Pending() || b.timers.Len() > 0 || b.pending > 0 {
		b.resume()
		return
	}
	b.publish(b.turns-b.lastFull >= publishEvery || b.fullWanted.Load() ||
		b.e.stopping.Load() || b.e.idleWaiters.Load() > 0)
	b.idle.Store(true)
	head := b.inbox.Head()
	b.sleeping.Store(sleepParked)
	if b.inbox.PublishedAt(head) || b.spilling.Load() {
		if b.sleeping.CompareAndSwap(sleepParked, sleepAwake) {
			b.signalWake()
		}
		return // else someone else woke or took it
	}
	if b.e.stopping.Load() || b.e.idleWaiters.Load() > 0 {
		b.e.signalIdle()
	}
}
