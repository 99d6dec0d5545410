package engine

import (
	"context"
	"fmt"
	"time"
)

// Context is an agent's handle on the engine while one of its handlers or
// hooks runs. It belongs to the agent's loop and is reused for every call:
// it is valid only until the handler returns, and must not be kept or
// shared with other goroutines.
type Context struct {
	l *loop
	a *agent

	rq       *request // the request being handled, if any
	rqInc    uint64   // the incarnation of rq this handler answers
	answered bool     // rq was replied to or handed to a ReplyHandle
}

// Self returns a Ref to the running agent.
func (c *Context) Self() Ref { return c.a.ref() }

// ID returns the running agent's ID.
func (c *Context) ID() AgentID { return c.a.ident() }

// Engine returns the engine the agent runs in.
func (c *Context) Engine() *Engine { return c.l.e }

// Loop returns the index of the loop the agent runs on.
func (c *Context) Loop() int { return c.l.idx }

// Context returns the running agent's context.Context: the one to hand to
// I/O the agent starts (and to carry its trace). Unlike the *Context it
// may be kept and used from any goroutine. It is cancelled when the
// agent's incarnation ends, right after its OnTerminate hook returns, or
// when Stop begins, whichever comes first; a restart after a panic keeps
// it, since the agent keeps its ID, Refs and mailbox. context.Cause tells
// why it ended: ErrTerminated when the agent was asked to end, ErrStopped
// when the engine stopped, otherwise what ended the agent (an error
// matching ErrInitFailed, or the *PanicError past its restart budget).
// Context.Go work gets this context.
//
// It costs nothing until the first call, which makes it (a few small
// allocations); later calls of the incarnation return the same context.
// A pooled agent's next incarnation gets a new one.
func (c *Context) Context() context.Context { return c.a.context(c.l) }

// lifetime is an agent incarnation's context.
type lifetime struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// context returns the incarnation's context, making it on first use. Loop
// only.
func (a *agent) context(l *loop) context.Context {
	if a.life == nil {
		ctx, cancel := context.WithCancelCause(l.e.base)
		a.life = &lifetime{ctx: ctx, cancel: cancel}
	}
	return a.life.ctx
}

// endContext cancels the incarnation's context, if it has one, with
// reason, and forgets it so that a recycled record makes a new one. Loop
// only.
func (a *agent) endContext(reason error) {
	if a.life != nil {
		a.life.cancel(reason)
		a.life = nil
	}
}

// Send delivers payload to the agent to. When to lives on the same loop the
// message goes straight into its mailbox (no lock, no allocation once the
// mailbox has grown, and no atomic write but the place a Reject or Block
// mailbox reserves); otherwise it goes through the target loop's inbox.
// Messages between two agents arrive in the order they were sent.
//
// Errors: ErrUnknownAgent for the zero Ref, ErrTerminated when the target
// has terminated, ErrMailboxFull when a Reject or Block mailbox is full.
// A DropNewest or DropOldest mailbox accepts the message and dead-letters
// what does not fit.
func (c *Context) Send(to Ref, payload []byte) error {
	// The fast path of W1, admit's and push's rules for a same-loop send
	// to a mailbox with room inlined: the message is written straight into
	// its slot, never built and copied.
	if a := to.a; a != nil && a.loop == c.l && !a.terminating && !a.typ.cfg.reserves() &&
		a.mb.len() < a.typ.cfg.capacity && a.admits(to.gen) {
		if p := a.mb.tryPush(); p != nil { // else the mailbox grows on the slow path
			p.Payload, p.Topic, p.Sender, p.x = payload, "", c.a.ref(), nil
			if a.counted(len(payload)) { // pushed, inlined
				c.l.settle(a)
			}
			return nil
		}
	}
	return c.send(to, Message{Payload: payload, Sender: c.a.ref()})
}

// SendID is Send by ID: it looks the agent up (spawning it when its type is
// registered and it does not exist) and sends. Prefer Send with a Ref kept
// from an earlier lookup on hot paths.
func (c *Context) SendID(id AgentID, payload []byte) error {
	if c.l.e.remote(id) {
		return c.l.e.sendRemote(context.Background(), c, id, payload)
	}
	r, err := c.l.e.resolve(id)
	if err != nil {
		return err
	}
	return c.Send(r, payload)
}

// Terminate ends the running agent after the current handler returns and
// its already-queued messages are handled: from the call on, new sends to
// it are refused with ErrTerminated, and its OnTerminate hook runs later
// on its loop, never inside the handler that called Terminate.
func (c *Context) Terminate() {
	a := c.a
	if a.stopReq.CompareAndSwap(false, true) {
		// The ready deque runs on a later pass of the loop, after this
		// handler (and the run it belongs to) has returned.
		c.l.ready.PushBack(envelope{a: a, gen: a.gen.Load(), op: opTerminate})
	}
}

// After delivers payload to the running agent once, d from now, as a
// Message with an empty Topic and zero Sender, unless the Timer is stopped
// first or the agent terminates. It never fires early. A d that is zero or
// negative is refused with ErrInvalidDuration. A deadline past the end of
// the engine's time (unix nanoseconds in an int64, which end in April
// 2262), as with d = math.MaxInt64, means never: the timer stays armed,
// never fires, and Stop cancels it and returns true.
func (c *Context) After(d time.Duration, payload []byte) (Timer, error) {
	if d <= 0 {
		return Timer{}, fmt.Errorf("%w: After(%v)", ErrInvalidDuration, d)
	}
	return c.l.addTimer(c.a, d, 0, payload), nil
}

// Every delivers payload to the running agent every d, the first time d
// from now, until the Timer is stopped or the agent terminates. Ticks do
// not drift: each due time is the previous due time plus d, and ticks
// missed while the loop was busy are skipped, not bunched (one late tick
// is delivered, then the schedule resumes in phase). A d that is zero or
// negative is refused with ErrInvalidDuration. As with After, a due time
// past the end of the engine's time (April 2262) means never: the ticks
// before it are delivered, then the timer stays armed without firing until
// it is stopped.
func (c *Context) Every(d time.Duration, payload []byte) (Timer, error) {
	if d <= 0 {
		return Timer{}, fmt.Errorf("%w: Every(%v)", ErrInvalidDuration, d)
	}
	return c.l.addTimer(c.a, d, d, payload), nil
}
