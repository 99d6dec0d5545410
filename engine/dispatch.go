package engine

// This file: what a loop does with each envelope, and the one door into a mailbox.

import "github.com/agentloop/agentloop/lifecycle"

// dispatch handles one envelope on the loop; it reports whether to quit.
func (l *loop) dispatch(env *envelope) bool {
	switch env.op {
	case opMsg:
		l.enqueue(env.a, env.gen, &env.msg, true)
	case opInit:
		l.initAgent(env.a)
	// Each Pause and Resume posts its own envelope, and each runs its hook
	// even when a later move has already changed the state again (Pause
	// then Resume before the loop got here): hooks follow the moves, in
	// order; the runnable queue follows the current state.
	case opPaused:
		a := env.a
		if a.live(env.gen) {
			if a.scheduled && a.lc.State() == lifecycle.Paused { // keep its messages, leave the queue
				a.scheduled = false
				l.runq.Remove(a.se)
			}
			l.callHook(a, "OnPause", hookPause)
		}
	case opResumed:
		a := env.a
		if a.live(env.gen) {
			l.callHook(a, "OnResume", hookResume)
			if a.lc.State() == lifecycle.Running {
				l.schedule(a)
			}
		}
	case opTerminate:
		l.terminate(env.a, env.gen)
	case opPublish:
		reserved := env.gen == publishReserved
		for _, a := range env.subs {
			l.enqueue(a, a.gen.Load(), &env.msg, reserved)
		}
	case opShutdown:
		l.shutdown(env.gen != 0)
	case opQuit:
		return true // run calls quit once the envelope has left the inbox
	case opFunc:
		env.fn()
	case opReply:
		l.runReply(env)
	}
	return false
}

// enqueue puts m into a's mailbox through push, applying the overflow
// policy, and makes a runnable; it dead-letters m when incarnation gen no
// longer takes messages. reserved says the sender already holds a place in
// a Reject or Block mailbox.
func (l *loop) enqueue(a *agent, gen uint32, m *Message, reserved bool) {
	if !a.live(gen) {
		if reserved && a.typ.cfg.reserves() {
			a.rs.give(1)
		}
		l.deadLetterAt(a, gen, *m, a.endReason(gen))
		return
	}
	l.push(a, m, reserved)
}

// push is enqueue for a caller that has checked a.live itself (a send on
// the same loop, after admit). It is the one door into a mailbox, with
// Context.Send's fast path, which fills the slot of a mailbox with room
// in place and then calls pushed as push does.
func (l *loop) push(a *agent, m *Message, reserved bool) {
	switch {
	case a.typ.cfg.reserves():
		if !reserved && !a.reserve() { // a timer tick
			l.refuse(a, *m)
			return
		}
	case a.mb.len() >= a.typ.cfg.capacity:
		if a.typ.cfg.overflow != DropOldest {
			l.refuse(a, *m)
			return
		}
		var old Message
		a.mb.pop(&old)
		a.qbytes -= int64(len(old.Payload))
		a.tc.queued--
		a.tc.dropped++ // received when it was queued
		l.deadLetter(a, old, ErrMailboxFull)
	}
	*a.mb.push() = *m
	l.pushed(a, len(m.Payload))
}

// pushed accounts for a message of size bytes just put into a's mailbox
// and makes a runnable.
func (l *loop) pushed(a *agent, size int) {
	if a.counted(size) {
		l.settle(a)
	}
}

// counted counts a message of size bytes just put into a's mailbox, and
// reports whether settle has to follow: only for the first message of a
// run, after which the counters are dirty and the agent is in the
// runnable queue. It is small enough to be inlined into the send paths.
func (a *agent) counted(size int) bool {
	tc := a.tc
	tc.received++
	tc.queued++
	a.qbytes += int64(size)
	return !tc.dirty || !a.scheduled
}

// settle is the rest of pushed: it marks the counters dirty and queues a
// runnable agent.
func (l *loop) settle(a *agent) {
	l.touch(a.tc)
	if !a.scheduled && a.lc.State() == lifecycle.Running {
		l.makeRunnable(a)
	}
}

// refuse dead-letters m, which a's full mailbox did not take (or pushed
// out), as received and dropped.
func (l *loop) refuse(a *agent, m Message) {
	tc := a.tc
	l.touch(tc)
	tc.received++
	tc.dropped++
	l.deadLetter(a, m, ErrMailboxFull)
}

func (l *loop) schedule(a *agent) {
	if !a.scheduled && a.mb.len() > 0 {
		l.makeRunnable(a)
	}
}

// makeRunnable queues a by its weight. The queue entry is allocated on the
// first schedule, so an agent that never gets a message costs nothing.
func (l *loop) makeRunnable(a *agent) {
	se := a.se
	if se == nil {
		se = &schedEntry{Value: a}
		se.SetPriority(a.typ.cfg.priority) // validated by Priority
		a.se = se
	}
	a.scheduled = true
	l.runq.Push(se)
}
