package engine

// This file: agent hooks, supervision (restarts) and termination on the loop.

import (
	"log/slog"
	"runtime/debug"

	"github.com/agentloop/agentloop/lifecycle"
)

// link adds a to the loop's list of started agents (an intrusive list: no
// map entry and no allocation per agent).
func (l *loop) link(a *agent) {
	a.started = true
	a.prev, a.next = nil, l.agents
	if l.agents != nil {
		l.agents.prev = a
	}
	l.agents = a
}

func (l *loop) unlink(a *agent) {
	if !a.started {
		return
	}
	a.started = false
	if a.prev != nil {
		a.prev.next = a.next
	} else {
		l.agents = a.next
	}
	if a.next != nil {
		a.next.prev = a.prev
	}
	a.prev, a.next = nil, nil
}

func (l *loop) initAgent(a *agent) {
	if a.lc.State() != lifecycle.Initializing {
		return // terminated before it could start
	}
	if l.shut {
		l.finalize(a, ErrStopped)
		return
	}
	l.link(a)
	if err := l.callInit(a); err != nil {
		l.initFailed(a, err)
		l.finalize(a, err)
		return
	}
	l.e.transition(a, lifecycle.Ready)
	l.e.transition(a, lifecycle.Running)
	if a.terminating {
		if a.mb.len() == 0 {
			l.finalize(a, ErrTerminated)
			return
		}
	}
	l.schedule(a)
}

// callInit runs Init, converting a panic into an error.
func (l *loop) callInit(a *agent) error {
	in, ok := a.impl.(Initializer)
	if !ok {
		return nil
	}
	var err error
	if pe := l.call(a, "Init", func(c *Context) { err = in.Init(c) }); pe != nil {
		err = pe
	}
	if err != nil {
		return &initError{id: a.ident(), err: err}
	}
	return nil
}

// initFailed logs an Init failure, within the type's record budget.
func (l *loop) initFailed(a *agent, err error) {
	cause := err
	if ie, ok := err.(*initError); ok {
		cause = ie.err
	}
	l.logAgent(logInitFailed, a, slog.LevelError, "engine: agent init failed",
		slog.Int("restarts", int(a.restarts)), slog.Any("cause", cause))
}

// call runs f as agent a (the loop's Context set to a, and set back after)
// with recovery: the one way the loop calls agent code outside a delivery
// run. A panic in f is reported to PanicObservers and returned; what it
// means (restart, terminate, ignore) is the caller's to decide.
func (l *loop) call(a *agent, hook string, f func(c *Context)) (pe *PanicError) {
	c := &l.ctx
	prev := c.a
	c.a = a
	defer func() {
		c.a = prev
		if r := recover(); r != nil {
			pe = l.panicked(a, hook, r, debug.Stack())
		}
	}()
	f(c)
	return nil
}

// panicked reports a panic recovered from agent a's hook: to the
// PanicObservers, and to the log within the type's record budget.
func (l *loop) panicked(a *agent, hook string, v any, stack []byte) *PanicError {
	pe := &PanicError{ID: a.ident(), Hook: hook, Value: v, Stack: stack}
	l.e.reportPanic(pe)
	l.logAgent(logPanic, a, slog.LevelError, "engine: agent panicked",
		slog.String("hook", hook), slog.Any("panic", v), slog.String("stack", string(stack)))
	return pe
}

type hookKind uint8

// callHook runs an optional hook; a panic is reported and otherwise
// ignored (a panicking hook does not restart the agent).
func (l *loop) callHook(a *agent, name string, k hookKind) {
	l.call(a, name, func(c *Context) {
		switch k {
		case hookPause:
			if h, ok := a.impl.(Pauser); ok {
				h.OnPause(c)
			}
		case hookResume:
			if h, ok := a.impl.(Resumer); ok {
				h.OnResume(c)
			}
		case hookTerminate:
			if h, ok := a.impl.(Terminator); ok {
				h.OnTerminate(c)
			}
		}
	})
}

// recovered handles a panic from Receive or ReceiveBatch: fail the request
// being handled, if any, then supervise.
func (l *loop) recovered(a *agent, hook string, v any, stack []byte) {
	pe := l.panicked(a, hook, v, stack)
	if c := &l.ctx; c.rq != nil {
		if !c.answered {
			c.rq.fail(l, c.rqInc, pe)
		}
		c.rq, c.answered = nil, false
	}
	l.supervise(a, pe)
}

// supervise applies a's restart policy after the panic pe in its handler
// or callback: restart it (a new value from newInstance: the factory's, or
// for a pooled type with Reset the same value reset; Init again; mailbox
// kept) unless its restart budget for the window is spent, in which case
// it terminates, as it does when Init fails again; an agent already
// draining for termination is left to drain.
func (l *loop) supervise(a *agent, pe *PanicError) {
	if a.terminating && a.drainOnStop {
		// Already on its way out: keep draining, never restart.
		return
	}
	pol := a.typ.restarts
	now := l.e.now()
	if now-a.windowStart > int64(pol.window) {
		a.windowStart, a.restarts = now, 0
	}
	if int(a.restarts) >= pol.max {
		l.logAgent(logBudget, a, slog.LevelError, "engine: agent restart budget exhausted",
			slog.Int("restarts", int(a.restarts)), slog.Duration("window", pol.window), slog.Any("cause", pe))
		l.finalize(a, pe)
		return
	}
	a.restarts++
	a.tc.restarts++
	l.touch(a.tc)
	a.setImpl(a.typ.newInstance(a.impl))
	if err := l.callInit(a); err != nil {
		l.initFailed(a, err)
		l.finalize(a, err)
	}
}

// terminate handles a Terminate request: queued messages are delivered
// first when the agent is running; a paused agent's mailbox is
// dead-lettered. An agent whose Init has not run yet runs it when its
// opInit arrives, handles its mailbox, then ends (initAgent sees
// terminating).
func (l *loop) terminate(a *agent, gen uint32) {
	if !a.current(gen) || a.terminating { // ended, perhaps recycled meanwhile
		return
	}
	a.terminating = true
	switch a.lc.State() {
	case lifecycle.Running:
		a.drainOnStop = true
		if a.mb.len() == 0 {
			l.finalize(a, ErrTerminated)
		} else {
			l.schedule(a)
		}
	case lifecycle.Initializing, lifecycle.Ready:
		// Init has not run yet: initAgent will see terminating.
		if a.started {
			l.finalize(a, ErrTerminated)
		}
	default:
		l.finalize(a, ErrTerminated)
	}
}

// finalize ends an agent's incarnation: OnTerminate (once, if it started),
// the end of its context (Context.Context), dead letters for whatever is
// still queued, the Terminated state, and
// removal from the registry.
func (l *loop) finalize(a *agent, reason error) {
	st := a.lc.State()
	if st == lifecycle.Terminated {
		return
	}
	a.terminating = true
	if st == lifecycle.Running || st == lifecycle.Paused {
		l.callHook(a, "OnTerminate", hookTerminate)
	}
	dlReason := ErrTerminated
	if reason != nil && reason != ErrTerminated {
		dlReason = reason
		a.cause = reason // for messages still on their way (endReason)
	}
	a.endContext(dlReason)
	var m Message
	n := 0
	for a.mb.pop(&m) {
		a.tc.queued--
		n++
		l.deadLetter(a, m, dlReason)
	}
	if a.typ.cfg.reserves() {
		a.rs.give(n)
	}
	l.touch(a.tc)
	l.failHandles(a, dlReason)
	if a.se != nil {
		l.runq.Forget(a.se)
	}
	a.scheduled, a.qbytes = false, 0
	pooled := a.typ.cfg.pooled && !l.shut
	if !pooled {
		a.mb.release()
	}
	if !a.stopReq.Load() { // set already when Terminate asked for the end
		a.stopReq.Store(true) // refuses new subscriptions (see subscribeAgent)
	}
	l.e.dropSubscriptions(a) // before Terminated is observable
	l.e.transition(a, lifecycle.Terminated)
	l.e.notifyTerminated(a, dlReason)
	l.unlink(a)
	l.e.registry.remove(a)
	if a.typ.cfg.overflow == Block {
		l.signalSpace()
	}
	if pooled {
		// Recycled at the end of the turn: the run that finalized a may
		// still be updating its loop-owned fields.
		l.recycled = append(l.recycled, a)
	}
}

// recycleAgents readies the agents finalized this turn for reuse and puts
// them in their type's pool for this loop. A recycled record keeps its
// mailbox buffer and queue entry, its agent value is Reset (or, without a
// Reset method, made anew), and it stays Terminated until a Spawn takes it:
// so an envelope still addressed to the old incarnation finds it dead.
// The records of one type that follow one another in the turn go into
// its pool under one lock.
func (l *loop) recycleAgents() {
	kept := l.recycled[:0] // pinned records, for a later turn
	ready := l.toPool[:0]  // readied records of one type, for its pool
	for i, a := range l.recycled {
		l.recycled[i] = nil
		if a.pins.Load() != 0 {
			// A Pause, Resume or Terminate by ID is looking at the ended
			// incarnation: recycle the record on a later turn.
			kept = append(kept, a)
			continue
		}
		a.terminating, a.drainOnStop, a.cause = false, false, nil
		a.restarts, a.windowStart = 0, 0
		a.stopReq.Store(false)
		if a.hasSubs.Load() {
			a.hasSubs.Store(false)
		}
		if !l.resetAgent(a) {
			continue // Reset panicked: leave the record to the collector
		}
		if len(ready) > 0 && ready[0].typ != a.typ {
			ready = l.putReady(ready)
		}
		ready = append(ready, a)
	}
	l.toPool = l.putReady(ready)
	l.recycled = kept
}

// putReady puts the records of rs, all of one type, into its pool for
// this loop and returns rs emptied, for reuse.
func (l *loop) putReady(rs []*agent) []*agent {
	if len(rs) > 0 {
		rs[0].typ.pools[l.idx].putAll(rs)
		clear(rs)
	}
	return rs[:0]
}

// resetAgent calls the agent value's Reset, or replaces the value when it
// has none; false if Reset panicked.
func (l *loop) resetAgent(a *agent) bool {
	r, has := a.impl.(Resetter)
	if !has {
		a.setImpl(a.typ.factory())
		return a.impl != nil
	}
	return l.call(a, "Reset", func(*Context) { r.Reset() }) == nil
}

type initError struct {
	id  AgentID
	err error
}

func (e *initError) Error() string { return "engine: init " + e.id.String() + ": " + e.err.Error() }

func (e *initError) Unwrap() []error {
	return []error{ErrInitFailed, e.err}
}
