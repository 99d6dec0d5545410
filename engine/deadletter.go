package engine

// This file: dead letters: the one way every path gives up on a message.

import "fmt"

// dropEnvelope dead-letters the messages env holds with reason: one dead
// letter for a message, one per subscriber for a publish (each releasing
// its buffer reference), so that every path that gives up on an envelope
// keeps "accepted = delivered + dead-lettered". Control work (replies,
// lifecycle steps, functions) holds no message and is dropped. cur is the
// loop it runs on, nil off the loops.
func (e *Engine) dropEnvelope(cur *loop, env *envelope, reason error) {
	switch env.op {
	case opMsg:
		e.deadLetterOn(cur, env.a, env.gen, env.msg, reason)
	case opPublish:
		for _, a := range env.subs {
			e.deadLetterOn(cur, a, a.gen.Load(), env.msg, reason)
		}
	}
}

// deadLetterOn records a dead letter on loop cur, or off the loops.
func (e *Engine) deadLetterOn(cur *loop, a *agent, gen uint32, m Message, reason error) {
	if cur != nil {
		cur.deadLetterAt(a, gen, m, reason)
		return
	}
	e.deadLetter(nil, a, gen, m, reason)
}

// deadLetter records an undeliverable message on the loop.
func (l *loop) deadLetter(a *agent, m Message, reason error) {
	l.deadLetterAt(a, a.gen.Load(), m, reason)
}

// deadLetterAt is deadLetter for a message addressed to incarnation gen.
func (l *loop) deadLetterAt(a *agent, gen uint32, m Message, reason error) {
	l.stats.deadLetters.Add(1)
	l.e.deadLetter(l, a, gen, m, reason)
}

// deadLetter records a dead letter: a request in it is failed, the engine
// counters move (the log's by reason, for its summary) and the plugins see
// it. cur is the loop it happens on, nil
// outside the loops (after Stop).
func (e *Engine) deadLetter(cur *loop, a *agent, gen uint32, m Message, reason error) {
	if m.x != nil {
		if rq := m.req(); rq != nil {
			// The message holds the request: its incarnation is current.
			rq.fail(cur, rq.pending(), fmt.Errorf("%w: request to %s", reason, a.idAt(gen)))
		} else if b := m.buffer(); b != nil {
			defer b.Release() // after the plugins have seen the payload
		}
	}
	e.deadLetters.Add(1)
	e.countDeadLetter(cur, a, reason)
	if ps := e.plugins.Load().onDeadLetter; ps != nil {
		d := DeadLetter{To: a.idAt(gen), Message: m, Reason: reason}
		for _, p := range ps {
			e.safePlugin(func() { p.OnDeadLetter(d) })
		}
	}
}
