package engine

// This file: send admission, the one rule every send path applies.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/agentloop/agentloop/lifecycle"
)

// Send delivers payload to the agent r refers to, from outside the engine:
// the same as r.Send. Concurrency-safe. The payload is not copied: do not
// modify it after Send. With a full Block mailbox Send waits for room
// until the agent terminates or the engine stops; SendContext bounds the
// wait.
func (e *Engine) Send(r Ref, payload []byte) error { return r.Send(payload) }

// SendContext is Send with a context, the same as r.SendContext.
func (e *Engine) SendContext(ctx context.Context, r Ref, payload []byte) error {
	return r.SendContext(ctx, payload)
}

// SendID is Send by ID: it finds the agent id, spawning it first when its
// type is registered and it does not exist (a virtual actor), and sends.
// Prefer Send with a Ref kept from an earlier lookup on hot paths.
// Concurrency-safe.
func (e *Engine) SendID(id AgentID, payload []byte) error {
	if e.remote(id) {
		return e.sendRemote(context.Background(), nil, id, payload)
	}
	r, err := e.resolve(id)
	if err != nil {
		return err
	}
	return e.sendExternal(context.Background(), r, Message{Payload: payload})
}

// SendIDContext is SendID with a context: while a full Block mailbox makes
// it wait for room, it gives up when ctx ends and returns an error
// matching both ErrMailboxFull and ctx.Err(); the message is then not
// sent. With the other policies it never waits.
func (e *Engine) SendIDContext(ctx context.Context, id AgentID, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("engine: send to %s: %w", id, err)
	}
	if e.remote(id) {
		return e.sendRemote(ctx, nil, id, payload)
	}
	r, err := e.resolve(id)
	if err != nil {
		return err
	}
	return e.sendExternal(ctx, r, Message{Payload: payload})
}

// sendExternal is the path of every send from a goroutine outside the
// loops: admission, then the target loop's inbox. ctx bounds a Block wait
// (context.Background() for none).
func (e *Engine) sendExternal(ctx context.Context, r Ref, m Message) error {
	if err := e.admit(ctx, nil, r.a, r.gen); err != nil {
		return err
	}
	r.a.loop.postMsg(r.a, r.gen, &m)
	return nil
}

// send is the path of every send from a handler: admission, then straight
// into the mailbox on the same loop, else through the target loop's inbox.
func (c *Context) send(to Ref, m Message) error {
	a := to.a
	if a == nil {
		return ErrUnknownAgent
	}
	if a.loop == c.l && !a.terminating && !a.typ.cfg.reserves() && a.admits(to.gen) {
		// admit's rule for this case, inlined: the hot path of W1.
		c.l.push(a, &m, true)
		return nil
	}
	if err := c.l.e.admit(context.Background(), c, a, to.gen); err != nil {
		return err
	}
	if a.loop == c.l {
		c.l.push(a, &m, true)
		return nil
	}
	a.loop.postFrom(c.l, &envelope{a: a, gen: to.gen, op: opMsg, msg: m})
	return nil
}

// admit is send admission, the one rule of every send path (Ref.Send,
// Engine.Send, Context.Send, requests, type-subscription publishes, and
// per subscriber the publishes to Reject and Block agents): the engine
// takes outside work only until Stop (from is nil outside the loops;
// handlers may still send while their engine drains); incarnation gen of
// a must still admit sends; and a Reject or Block mailbox must have a
// place, which admit reserves: at once from a handler (a loop never
// waits), waiting for room with Block from outside until ctx ends, a
// terminates or the engine stops. On success the message must
// be handed over with reserved set.
func (e *Engine) admit(ctx context.Context, from *Context, a *agent, gen uint32) error {
	if from == nil && e.state.Load() >= stateStopping {
		return fmt.Errorf("%w: send to %s", ErrStopped, a.idAt(gen))
	}
	if !a.admits(gen) || (from != nil && a.loop == from.l && a.terminating) {
		return fmt.Errorf("%w: send to %s", ErrTerminated, a.idAt(gen))
	}
	switch {
	case !a.typ.cfg.reserves() || a.reserve():
		return nil
	case from != nil || a.typ.cfg.overflow == Reject:
		return fmt.Errorf("%w: %s (capacity %d)", ErrMailboxFull, a.idAt(gen), a.typ.cfg.capacity)
	}
	return e.waitForRoom(ctx, a, gen)
}

// admits reports whether incarnation gen of a still accepts sends. It
// reads only atomics, so it holds from any goroutine; the loop checks
// again on arrival (live), which also sees a terminate in progress.
func (a *agent) admits(gen uint32) bool {
	return a.gen.Load() == gen && !a.stopReq.Load() && a.lc.State() != lifecycle.Terminated
}

// reservation counts the places of a Reject or Block mailbox as two
// counters that only grow: taken, the places ever taken (by senders, before
// sending, and by the loop for a timer's tick), and freed, the places ever
// given back (by the loop, once per run of the agent, and for messages that
// end without delivery). The occupancy, taken - freed, covers every queued
// message and every one still on its way, so the bound is exact whatever
// goroutine sends.
//
// The two counters sit on lines of their own: a sender's reservation then
// writes a line the loop never reads per message, and the loop's give-back
// one that senders read only when the mailbox looks full. For that a sender
// compares taken with seen, a value of freed read earlier and never above
// it, and reads freed itself only when that comparison says full: a
// mailbox far from full costs a sender one compare-and-swap on a line no
// other goroutine is writing, and a refusal still rests on a fresh look.
type reservation struct {
	taken atomic.Uint64
	seen  atomic.Uint64 // a recent value of freed, for senders
	_     [cacheLine - 16]byte
	freed atomic.Uint64
	_     [cacheLine - 8]byte
}

// cacheLine is the size the engine pads shared counters apart by.
const cacheLine = 64

// newReservation returns the place counters of an agent of type t: nil
// unless its mailbox is Reject or Block.
func newReservation(t *agentType) *reservation {
	if !t.cfg.reserves() {
		return nil
	}
	return new(reservation)
}

// reserve takes a place in a Reject or Block mailbox; false when full.
//
// A place is taken by a compare-and-swap from t to t+1 once t - freed is
// below the capacity, with freed read (as seen or afresh) before the swap;
// freed only grows, so at the swap the places in use are at most t - freed
// and the bound holds. A refusal reads taken before freed, and taken only
// grows, so when the difference reaches the capacity the mailbox was full
// at the moment freed was read: every place counted belongs to an accepted
// message, none to a sender that is about to be refused.
func (a *agent) reserve() bool {
	rs, capacity := a.rs, uint64(a.typ.cfg.capacity)
	for {
		t := rs.taken.Load()
		if t-rs.seen.Load() >= capacity {
			f := rs.freed.Load()
			if t-f >= capacity {
				return false
			}
			rs.seen.Store(f) // an older value from a racing sender is still at most freed
		}
		if rs.taken.CompareAndSwap(t, t+1) {
			return true
		}
	}
}

// full reports whether a Reject or Block mailbox has no place free.
func (rs *reservation) full(capacity int) bool {
	t := rs.taken.Load() // before freed, as in reserve
	return t-rs.freed.Load() >= uint64(capacity)
}

// give gives n places back. The agent's loop (or whoever holds it) only.
func (rs *reservation) give(n int) {
	rs.freed.Add(uint64(n))
}

// waitForRoom takes a place in a full Block mailbox for an outside sender,
// waiting until one is freed, the engine stops, the agent terminates, or
// ctx ends.
func (e *Engine) waitForRoom(ctx context.Context, a *agent, gen uint32) error {
	capacity := a.typ.cfg.capacity
	done := ctx.Done() // nil, never ready, for context.Background()
	w := spaceWaiters.Get().(*spaceWaiter)
	defer spaceWaiters.Put(w)
	for {
		l := a.loop
		// Register before the last check; the loop frees places before it
		// looks for waiters, so one of us sees the other.
		l.addSpaceWaiter(w)
		var ctxErr error
		if a.rs.full(capacity) && a.admits(gen) {
			select {
			case <-w.ch:
			case <-e.stopCh:
			case <-done:
				ctxErr = ctx.Err()
			}
		}
		l.removeSpaceWaiter(w)
		switch {
		case ctxErr != nil:
			return fmt.Errorf("%w: %s (capacity %d): %w", ErrMailboxFull, a.idAt(gen), capacity, ctxErr)
		case e.state.Load() >= stateStopping:
			return fmt.Errorf("%w: send to %s", ErrStopped, a.idAt(gen))
		case !a.admits(gen):
			return fmt.Errorf("%w: send to %s", ErrTerminated, a.idAt(gen))
		}
		if a.reserve() {
			return nil
		}
	}
}

// spaceWaiter is one outside sender's place in its loop's spaceList: the
// channel signalSpace sends its token on. A token may arrive late, after
// the sender has left (signalSpace took the list before the sender
// removed itself): the next sender to use the waiter then wakes once for
// nothing and looks again, which every waiter does anyway.
type spaceWaiter struct{ ch chan struct{} }

// spaceWaiters holds idle waiters, so that waiting for room allocates
// nothing in the steady state.
var spaceWaiters = sync.Pool{New: func() any { return &spaceWaiter{ch: make(chan struct{}, 1)} }}

func (l *loop) addSpaceWaiter(w *spaceWaiter) {
	l.spaceMu.Lock()
	l.spaceList = append(l.spaceList, w)
	l.spaceWaiters.Add(1)
	l.spaceMu.Unlock()
}

// removeSpaceWaiter takes w off l's list unless signalSpace already did.
func (l *loop) removeSpaceWaiter(w *spaceWaiter) {
	l.spaceMu.Lock()
	for i, x := range l.spaceList {
		if x == w {
			last := len(l.spaceList) - 1
			l.spaceList[i] = l.spaceList[last]
			l.spaceList[last] = nil
			l.spaceList = l.spaceList[:last]
			l.spaceWaiters.Add(-1)
			break
		}
	}
	l.spaceMu.Unlock()
}
