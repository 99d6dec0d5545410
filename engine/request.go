package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/agentloop/agentloop/lifecycle"
)

// Request states.
const (
	reqPending uint32 = iota
	reqDone
)

// request is one request/response exchange. Exactly one completion wins
// (reply, timeout, cancellation, or failure of the target); the others find
// it done and drop their result.
type request struct {
	state atomic.Uint32

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

	handle bool // a ReplyHandle was taken: the request may outlive its reply
}

// outsideRequests recycles the request and channel of Engine.Request. A
// request goes back only when its reply arrived through Context.Reply or a
// failure and no ReplyHandle was taken: then nothing else refers to it (the
// Context forgets it once answered, mailbox and inbox slots are cleared).
// Cancelled or timed-out requests may still sit in a mailbox and are left
// to the collector.
var outsideRequests = sync.Pool{New: func() any { return &request{ch: make(chan reply, 1)} }}

type reply struct {
	payload []byte
	err     error
}

// complete settles the request once. cur is the loop the caller runs on,
// nil outside the loops. It reports whether this call settled it.
func (rq *request) complete(cur *loop, payload []byte, err error) bool {
	if !rq.state.CompareAndSwap(reqPending, reqDone) {
		return false
	}
	if rq.ch != nil {
		rq.ch <- reply{payload, err}
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

// fail settles the request with err, keeping whatever already settled it.
func (rq *request) fail(cur *loop, err error) { rq.complete(cur, nil, err) }

// ReplyHandle answers a request after the handler that received it has
// returned, from a later message or from another goroutine. Each request
// is answered once.
type ReplyHandle struct{ rq *request }

// Reply answers the request. It returns ErrAlreadyReplied when the request
// was answered before, timed out or was cancelled. Safe from any
// goroutine.
func (h ReplyHandle) Reply(payload []byte) error {
	if h.rq == nil {
		return ErrNoRequest
	}
	if !h.rq.complete(nil, payload, nil) {
		return ErrAlreadyReplied
	}
	return nil
}

// Reply answers the request being handled. It returns ErrNoRequest when the
// current message is not a request and ErrAlreadyReplied for a second reply.
func (c *Context) Reply(payload []byte) error {
	rq := c.rq
	if rq == nil {
		return fmt.Errorf("%w: %s", ErrNoRequest, c.a.ident())
	}
	c.answered = true
	if !rq.complete(c.l, payload, nil) {
		return fmt.Errorf("%w: %s", ErrAlreadyReplied, c.a.ident())
	}
	return nil
}

// ReplyLater takes the current request out of the handler's hands: the
// handler may return without replying, and the returned handle answers it
// later. If the agent terminates first the requester gets ErrTerminated.
func (c *Context) ReplyLater() (ReplyHandle, error) {
	rq := c.rq
	if rq == nil {
		return ReplyHandle{}, fmt.Errorf("%w: %s", ErrNoRequest, c.a.ident())
	}
	c.answered = true
	rq.handle = true
	l := c.l
	if l.handles == nil {
		l.handles = make(map[*agent][]*request)
	}
	hs := l.handles[c.a][:0:0]
	for _, h := range l.handles[c.a] { // keep the list to unanswered ones
		if h.state.Load() == reqPending {
			hs = append(hs, h)
		}
	}
	l.handles[c.a] = append(hs, rq)
	return ReplyHandle{rq}, nil
}

// failHandles answers a terminating agent's outstanding handles.
// failHandles fails the requests a still holds ReplyHandles for; the error
// is built only when there are some.
func (l *loop) failHandles(a *agent, reason error) {
	hs := l.handles[a]
	if len(hs) == 0 {
		return
	}
	err := fmt.Errorf("%w: %s", reason, a.ident())
	for _, rq := range hs {
		rq.fail(l, err)
	}
	delete(l.handles, a)
}

// Request sends payload to the agent to and calls then on this agent's
// loop with the reply, or with an error: ErrTimeout after timeout,
// ErrNoReply when the target handled the request without replying,
// ErrTerminated when it terminated first, a *PanicError when it panicked,
// ErrStopped when the engine stopped. The loop never waits: a request
// between two agents that request each other cannot deadlock. The timeout
// lives on the loop's timers and costs no goroutine.
func (c *Context) Request(to Ref, payload []byte, timeout time.Duration, then func(c *Context, reply []byte, err error)) error {
	if timeout <= 0 {
		return fmt.Errorf("%w: request timeout %v", ErrInvalidDuration, timeout)
	}
	if then == nil {
		return fmt.Errorf("%w: nil request callback", ErrInvalidOption)
	}
	if to.a == nil {
		return ErrUnknownAgent
	}
	rq := &request{from: c.a, fromGen: c.a.gen.Load(), then: then, to: to.a}
	if err := c.send(to, Message{Payload: payload, Sender: c.a.ref(), x: unsafe.Pointer(rq)}); err != nil {
		return err
	}
	if rq.state.Load() == reqPending {
		rq.timeout = c.l.addTimer(c.a, timeout, 0, nil)
		rq.timeout.t.rq = rq
	}
	return nil
}

// RequestID is Request by ID, spawning the target when its type is
// registered and it does not exist.
func (c *Context) RequestID(id AgentID, payload []byte, timeout time.Duration, then func(c *Context, reply []byte, err error)) error {
	r, err := c.l.e.resolve(id)
	if err != nil {
		return err
	}
	return c.Request(r, payload, timeout, then)
}

// Request sends payload to the agent id from outside the engine and waits
// for its reply, honouring ctx's deadline and cancellation. A deadline
// returns an error matching both ErrTimeout and context.DeadlineExceeded.
// See Context.Request for the other errors. Every pending request is
// answered when the engine stops. Concurrency-safe.
func (e *Engine) Request(ctx context.Context, id AgentID, payload []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := e.resolve(id)
	if err != nil {
		return nil, err
	}
	rq := outsideRequests.Get().(*request)
	rq.to = r.a
	if err := e.sendExternal(r, Message{Payload: payload, x: unsafe.Pointer(rq)}); err != nil {
		rq.to = nil
		outsideRequests.Put(rq) // never sent
		return nil, err
	}
	select {
	case rep := <-rq.ch:
		if !rq.handle {
			rq.to = nil
			rq.state.Store(reqPending)
			outsideRequests.Put(rq)
		}
		return rep.payload, rep.err
	case <-ctx.Done():
		if rq.state.CompareAndSwap(reqPending, reqDone) {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w: request to %s: %w", ErrTimeout, id, ctx.Err())
			}
			return nil, ctx.Err()
		}
	case <-e.stopDone:
		if rq.state.CompareAndSwap(reqPending, reqDone) {
			return nil, fmt.Errorf("%w: request to %s", ErrStopped, id)
		}
	}
	rep := <-rq.ch // settled by someone else just now
	return rep.payload, rep.err
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
	if a.gen.Load() != gen || a.lc.State() == lifecycle.Terminated {
		return // the agent is gone: nobody to tell
	}
	c := &l.ctx
	prev := c.a
	c.a = a
	defer func() {
		c.a = prev
		if r := recover(); r != nil {
			l.recovered(a, hook, r, debug.Stack())
		}
	}()
	then(c, res, err)
}

// requestDone finishes a request whose handler returned: without a reply
// or a handle taken, the requester learns there will be none.
func (l *loop) requestDone(c *Context) {
	if !c.answered {
		c.rq.fail(l, fmt.Errorf("%w: %s", ErrNoReply, c.a.ident()))
	}
	c.rq, c.answered = nil, false
}
