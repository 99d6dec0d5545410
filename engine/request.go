package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// request is one request/response exchange. Exactly one completion wins
// (reply, timeout, cancellation, or failure of the target); the others find
// it done and drop their result.
//
// The request of Engine.Request is recycled, so every completion names the
// incarnation it answers: state holds inc<<1 | done, and completing is a
// compare-and-swap from "incarnation inc, pending" to "incarnation inc,
// done". Recycling moves state to the next incarnation, pending. A Context
// or ReplyHandle that still holds an earlier incarnation therefore fails
// with ErrAlreadyReplied instead of answering whoever uses the object now:
// exactly-once holds by construction, whatever the timing.
type request struct {
	state atomic.Uint64

	// An outside requester waits on ch (buffered: completing never blocks).
	ch chan reply

	// An agent requester gets then on its own loop.
	from    *agent
	fromGen uint32
	then    func(c *Context, reply []byte, err error)
	timeout Timer
	res     []byte
	err     error

	to *agent // the target, for error messages

	// A request carried between nodes (cluster.go): done receives the
	// outcome of one a remote node made (remote names its requester);
	// toID names the target of one made here for another node (to nil).
	done   func(reply []byte, err error)
	remote AgentID
	toID   AgentID
}

const reqDone = 1

// pending returns the incarnation the request is in, as the state value
// that means "pending" for it. A message carrying the request is delivered
// (or dead-lettered) only while that incarnation is current: a request is
// recycled only after a completion that consumed its message.
func (rq *request) pending() uint64 { return rq.state.Load() &^ reqDone }

// recycle moves a completed request to its next incarnation, pending.
func (rq *request) recycle() {
	rq.state.Store((rq.state.Load() | reqDone) + 1)
}

// outsideRequests recycles the request and channel of an Engine.Request
// that found no free slot in the request table (whose slots own theirs).
// A request goes back once its requester has taken the reply that someone
// else settled: then its message has been consumed (handled or
// dead-lettered), and anything still holding it (the Context of a handler
// that keeps running, a ReplyHandle) holds an older incarnation. Requests
// the requester gave up on (cancelled, engine stopped) may still sit in a
// mailbox under their current incarnation and are left to the collector.
var outsideRequests = sync.Pool{New: func() any { return newOutsideRequest() }}

type reply struct {
	payload []byte
	err     error
}

// complete settles incarnation inc of the request once. cur is the loop
// the caller runs on, nil outside the loops. It reports whether this call
// settled it.
func (rq *request) complete(cur *loop, inc uint64, payload []byte, err error) bool {
	if !rq.state.CompareAndSwap(inc, inc|reqDone) {
		return false
	}
	if rq.ch != nil {
		rq.ch <- reply{payload, err}
		return true
	}
	if rq.done != nil {
		rq.done(payload, err)
		return true
	}
	rq.res, rq.err = payload, err
	env := envelope{a: rq.from, gen: rq.fromGen, op: opReply, msg: Message{x: unsafe.Pointer(rq)}}
	dst := rq.from.loop
	switch {
	case cur == dst:
		dst.ready.PushBack(env) // runs later this turn, not nested in a handler
	case cur != nil:
		dst.postFrom(cur, &env)
	default:
		dst.post(&env)
	}
	return true
}

// fail settles incarnation inc with err, keeping whatever already settled
// it.
func (rq *request) fail(cur *loop, inc uint64, err error) { rq.complete(cur, inc, nil, err) }

// ReplyHandle answers a request after the handler that received it has
// returned, from a later message or from another goroutine. Each request
// is answered once. The zero ReplyHandle answers nothing (ErrNoRequest).
type ReplyHandle struct {
	rq  *request
	inc uint64
}

// Reply answers the request. It returns ErrAlreadyReplied when the request
// was answered before, timed out or was cancelled. Safe from any
// goroutine.
func (h ReplyHandle) Reply(payload []byte) error {
	if h.rq == nil {
		return ErrNoRequest
	}
	if !h.rq.complete(nil, h.inc, payload, nil) {
		return ErrAlreadyReplied
	}
	return nil
}

// Reply answers the request being handled. It returns ErrNoRequest when the
// current message is not a request and ErrAlreadyReplied for a second reply
// (or a reply after ReplyLater, or to a request whose requester gave up).
func (c *Context) Reply(payload []byte) error {
	rq := c.rq
	if rq == nil {
		return fmt.Errorf("%w: %s", ErrNoRequest, c.a.ident())
	}
	c.answered = true
	if !rq.complete(c.l, c.rqInc, payload, nil) {
		return fmt.Errorf("%w: %s", ErrAlreadyReplied, c.a.ident())
	}
	return nil
}

// ReplyLater takes the current request out of the handler's hands: the
// handler may return without replying, and the returned handle answers it
// later. If the agent terminates first the requester gets an error
// matching the reason it ended (ErrTerminated when asked to, ErrStopped
// when the engine stopped it, its *PanicError past its restart budget).
// It returns ErrNoRequest when the current message is not a request, and
// ErrAlreadyReplied when the request was answered already (a Reply or an
// earlier ReplyLater in this handler) or its requester gave up.
func (c *Context) ReplyLater() (ReplyHandle, error) {
	rq := c.rq
	if rq == nil {
		return ReplyHandle{}, fmt.Errorf("%w: %s", ErrNoRequest, c.a.ident())
	}
	if c.answered || rq.state.Load() != c.rqInc {
		return ReplyHandle{}, fmt.Errorf("%w: %s", ErrAlreadyReplied, c.a.ident())
	}
	c.answered = true
	h := ReplyHandle{rq, c.rqInc}
	l := c.l
	if l.handles == nil {
		l.handles = make(map[*agent][]ReplyHandle)
	}
	hs := l.handles[c.a][:0:0]
	for _, old := range l.handles[c.a] { // keep the list to unanswered ones
		if old.rq.state.Load() == old.inc {
			hs = append(hs, old)
		}
	}
	l.handles[c.a] = append(hs, h)
	return h, nil
}

// failHandles fails the requests a terminating agent still holds
// ReplyHandles for; the error is built only when there are some.
func (l *loop) failHandles(a *agent, reason error) {
	hs := l.handles[a]
	if len(hs) == 0 {
		return
	}
	err := fmt.Errorf("%w: %s", reason, a.ident())
	for _, h := range hs {
		h.rq.fail(l, h.inc, err)
	}
	delete(l.handles, a)
}

// Request sends payload to the agent to and calls then on this agent's
// loop with the reply, or with an error: ErrTimeout after timeout,
// ErrNoReply when the target handled the request without replying,
// ErrTerminated when it terminated first, a *PanicError when it panicked,
// ErrStopped when the engine stopped. The loop never waits: a request
// between two agents that request each other cannot deadlock. The timeout
// lives on the loop's timers and costs no goroutine; one that reaches past
// the end of int64 time (April 2262) means no timeout. When Request itself
// returns an error (a bad argument, a target that is gone or full) the
// request was not sent and then is never called; otherwise then is called
// exactly once, unless the requesting agent has terminated by then.
func (c *Context) Request(to Ref, payload []byte, timeout time.Duration, then func(c *Context, reply []byte, err error)) error {
	if timeout <= 0 {
		return fmt.Errorf("%w: request timeout %v", ErrInvalidDuration, timeout)
	}
	if then == nil {
		return fmt.Errorf("%w: nil request callback", ErrInvalidArgument)
	}
	if to.a == nil {
		return ErrUnknownAgent
	}
	rq := &request{from: c.a, fromGen: c.a.gen.Load(), then: then, to: to.a} // incarnation agentRequest
	if err := c.send(to, Message{Payload: payload, Sender: c.a.ref(), x: unsafe.Pointer(rq)}); err != nil {
		return err
	}
	if rq.state.Load() == agentRequest {
		rq.timeout = c.l.addTimer(c.a, timeout, 0, nil)
		rq.timeout.t.rq = rq
	}
	return nil
}

// RequestID is Request by ID, spawning the target when its type is
// registered and it does not exist.
func (c *Context) RequestID(id AgentID, payload []byte, timeout time.Duration, then func(c *Context, reply []byte, err error)) error {
	if c.l.e.remote(id) {
		return c.requestRemote(id, payload, timeout, then)
	}
	r, err := c.l.e.resolve(id)
	if err != nil {
		return err
	}
	return c.Request(r, payload, timeout, then)
}

// agentRequest is the incarnation of every request made by Context.Request:
// those are allocated per request and never recycled.
const agentRequest = 0

// Request sends payload to the agent r refers to from outside the engine
// and waits for its reply, honouring ctx's deadline and cancellation
// throughout, including while it waits for room in a full Block mailbox.
// A deadline, whether it passes before or during the call, returns an
// error matching both ErrTimeout and context.DeadlineExceeded; a
// cancellation returns an error matching context.Canceled. See
// Context.Request for the other errors. Every pending request is answered
// when the engine stops. Concurrency-safe.
func (e *Engine) Request(ctx context.Context, r Ref, payload []byte) ([]byte, error) {
	if r.a == nil {
		return nil, ErrUnknownAgent
	}
	return e.request(ctx, r, payload)
}

// RequestID is Request by ID, spawning the target when its type is
// registered and it does not exist. Concurrency-safe.
func (e *Engine) RequestID(ctx context.Context, id AgentID, payload []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, requestCtxErr(id, err)
	}
	if e.remote(id) {
		return e.requestRemoteOutside(ctx, id, payload)
	}
	r, err := e.resolve(id)
	if err != nil {
		return nil, err
	}
	return e.request(ctx, r, payload)
}

// Request is Engine.Request to the agent r refers to. Concurrency-safe.
func (r Ref) Request(ctx context.Context, payload []byte) ([]byte, error) {
	if r.a == nil {
		return nil, ErrUnknownAgent
	}
	return r.a.loop.e.request(ctx, r, payload)
}

func (e *Engine) request(ctx context.Context, r Ref, payload []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, requestCtxErr(r.ID(), err)
	}
	slot, rq := e.claimSlot() // Stop answers it from there (see answerStranded)
	if slot == nil {
		rq = outsideRequests.Get().(*request)
	}
	rq.to = r.a
	inc := rq.pending()
	if err := e.sendExternal(ctx, r, Message{Payload: payload, x: unsafe.Pointer(rq)}); err != nil {
		rq.to = nil
		if slot != nil {
			slot.release(true) // never sent
		} else {
			outsideRequests.Put(rq)
		}
		if ce := ctx.Err(); ce != nil && errors.Is(err, ce) {
			return nil, requestCtxErr(r.ID(), ce)
		}
		return nil, err
	}
	var rep reply
	switch done := ctx.Done(); {
	case slot != nil && done == nil:
		rep = <-rq.ch
	case slot != nil:
		select {
		case rep = <-rq.ch:
		case <-done:
			if rq.state.CompareAndSwap(inc, inc|reqDone) {
				slot.release(false) // rq may still be queued: not recycled
				return nil, requestCtxErr(r.ID(), ctx.Err())
			}
			rep = <-rq.ch // settled by someone else just now
		}
	default: // no slot: wait on the stop too
		select {
		case rep = <-rq.ch:
		case <-done:
			if rq.state.CompareAndSwap(inc, inc|reqDone) {
				return nil, requestCtxErr(r.ID(), ctx.Err())
			}
			rep = <-rq.ch
		case <-e.stopDone:
			if rq.state.CompareAndSwap(inc, inc|reqDone) {
				return nil, fmt.Errorf("%w: request to %s", ErrStopped, r.ID())
			}
			rep = <-rq.ch
		}
	}
	// Someone else settled it, so its message was consumed: recycle it.
	rq.to = nil
	rq.recycle()
	if slot != nil {
		slot.release(true)
	} else {
		outsideRequests.Put(rq)
	}
	return rep.payload, rep.err
}

// requestCtxErr is the error of a request whose ctx ended: a deadline
// matches ErrTimeout as well as context.DeadlineExceeded.
func requestCtxErr(id AgentID, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: request to %s: %w", ErrTimeout, id, err)
	}
	return fmt.Errorf("engine: request to %s: %w", id, err)
}

// runReply delivers a settled request's outcome to the requesting agent.
func (l *loop) runReply(env *envelope) {
	rq := env.msg.req()
	rq.timeout.Stop()
	l.runCallback(rq.from, rq.fromGen, "Request callback", rq.then, rq.res, rq.err)
}

// runCallback calls then(c, res, err) as agent a, if incarnation gen still
// runs: the outcome of a request or of Context.Go. A panic in then is
// handled like one in Receive (restart or terminate).
func (l *loop) runCallback(a *agent, gen uint32, hook string, then func(*Context, []byte, error), res []byte, err error) {
	if !a.current(gen) {
		return // the agent is gone: nobody to tell
	}
	if pe := l.call(a, hook, func(c *Context) { then(c, res, err) }); pe != nil {
		l.supervise(a, pe)
	}
}

// requestDone finishes a request whose handler returned: without a reply
// or a handle taken, the requester learns there will be none.
func (l *loop) requestDone(c *Context) {
	if !c.answered {
		c.rq.fail(l, c.rqInc, fmt.Errorf("%w: %s", ErrNoReply, c.a.ident()))
	}
	c.rq, c.answered = nil, false
}
