package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/agentloop/agentloop/lifecycle"
)

// Stop shuts the engine down and waits for it.
//
// Graceful (the default): outside sends are refused with ErrStopped at once,
// timers are dropped, every queued message is delivered (paused agents'
// too), OnTerminate runs once for every agent, and every goroutine the
// engine started has exited when Stop returns nil.
//
// Whatever the mode, Stop first cancels every agent's context
// (Context.Context, with ErrStopped as its cause), and with it the context
// of all running Context.Go work; it then waits for that work, up to
// ctx's deadline, and hands the results of work that returns in time to
// their callbacks before the agents terminate. Work that honours its
// context thus ends with Stop; work that ignores it holds Stop until the
// deadline.
//
// With Immediate, or when ctx ends before the engine has drained, queued
// messages are dead-lettered instead; OnTerminate still runs once each. On
// a deadline Stop returns a *StopError that wraps ctx.Err() and says what
// was left; the call that stops the engine then still gives the loops a
// short grace (about two seconds) to dead-letter and exit, so that no
// goroutine is left behind unless a handler never returns.
//
// Stop is idempotent and every caller gets its own deadline: the first
// call stops the engine; a later or concurrent call waits for that stop
// to finish and returns its result, or returns a *StopError wrapping its
// own ctx.Err() as soon as its ctx ends. Stop called on one of the
// engine's loops (from a handler or hook) cannot wait for that loop to
// drain: it returns ErrStopInLoop at once and stops nothing; signal a
// goroutine outside the engine to call it instead.
//
// Before it returns, the stop writes the last dead-letter summary to the
// engine's logger (WithLogger), and, when it hit the deadline, a record
// "engine: stop deadline exceeded" with the agents left and the messages
// dropped.
func (e *Engine) Stop(ctx context.Context, opts ...StopOption) error {
	if e.onLoop() {
		return ErrStopInLoop
	}
	var sc stopConfig
	for _, o := range opts {
		if o != nil {
			o.applyStop(&sc)
		}
	}
	if e.stopClaimed.CompareAndSwap(false, true) {
		e.stopErr = e.stop(ctx, sc)
		e.answerStranded()
		close(e.stopDone)
		return e.stopErr
	}
	select {
	case <-e.stopDone: // finished: its result wins even over a done ctx
		return e.stopErr
	default:
	}
	select {
	case <-e.stopDone:
		return e.stopErr
	case <-ctx.Done():
		return &StopError{Err: ctx.Err(), Queued: int(e.stopDropped.Load()), Agents: e.registry.count()}
	}
}

// onLoop reports whether the caller runs on one of the engine's loop
// goroutines. It reads the goroutine's ID from its stack header: a few
// hundred nanoseconds, paid only by Stop.
func (e *Engine) onLoop() bool {
	if !e.started.Load() {
		return false
	}
	id := goroutineID()
	for _, l := range e.loops {
		if l.gid.Load() == id {
			return true
		}
	}
	return false
}

// goroutineID returns the running goroutine's ID, parsed from the first
// line of its stack trace ("goroutine 42 [running]:").
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

// stop runs the stop for the first Stop call, and writes its records: the
// last dead-letter and suppression summaries and, when the deadline was
// hit, what it left.
func (e *Engine) stop(ctx context.Context, sc stopConfig) error {
	err := e.stopLoops(ctx, sc)
	e.closeLog()
	var se *StopError
	if errors.As(err, &se) {
		e.write(slog.LevelWarn, "engine: stop deadline exceeded",
			slog.Int("agents", se.Agents), slog.Int("dropped", se.Queued), slog.Any("cause", se.Err))
	}
	return err
}

func (e *Engine) stopLoops(ctx context.Context, sc stopConfig) error {
	if e.state.Load() == stateCreated {
		if err := e.Start(); err != nil {
			return err
		}
	}
	e.mu.Lock()
	e.stopping.Store(true)
	e.state.Store(stateStopping)
	close(e.stopCh)
	e.mu.Unlock()
	// Every agent's context, and with it all Context.Go work, is asked
	// to end now; graceful or not, Stop still waits for the work below.
	e.endBase(ErrStopped)

	for _, l := range e.loops {
		l.post(&envelope{op: opFunc, fn: l.dropTimers})
	}
	var deadline error
	if err := e.closeWorkers(ctx); err != nil {
		deadline = err // running work outlived the deadline
	}
	if !sc.immediate && deadline == nil {
		deadline = e.waitQuiescent(ctx)
	}
	alive := e.registry.count()
	immediate := uint32(0)
	if sc.immediate || deadline != nil {
		immediate = 1
	}
	e.shutdownWG.Add(len(e.loops))
	for _, l := range e.loops {
		l.post(&envelope{op: opShutdown, gen: immediate})
	}
	// Past the deadline the loops only dead-letter and run OnTerminate
	// hooks, which is quick unless a handler is stuck: give that a short
	// grace rather than leaving goroutines behind for no reason.
	wctx := ctx
	if deadline != nil {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(context.Background(), stopGrace)
		defer cancel()
	}
	if err := waitCtx(wctx, &e.shutdownWG); err != nil && deadline == nil {
		deadline = err
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(context.Background(), stopGrace)
		defer cancel()
	}
	for _, l := range e.loops {
		l.post(&envelope{op: opQuit})
	}
	if err := waitCtx(wctx, &e.loopsWG); err != nil {
		// A handler is stuck: its loop cannot exit. Report it.
		if ctx.Err() != nil {
			err = ctx.Err() // the caller's reason, not the grace period's
		}
		return &StopError{Err: err, Queued: int(e.stopDropped.Load()), Agents: e.registry.count()}
	}
	for _, l := range e.loops {
		l.sealed.Store(true)
		l.sweep()
	}
	e.state.Store(stateStopped)
	if deadline != nil {
		return &StopError{Err: deadline, Queued: int(e.stopDropped.Load()), Agents: alive}
	}
	return nil
}

// stopGrace bounds how long Stop still waits, after its context ended, for
// loops to dead-letter what was left and exit. Only a handler that never
// returns can use it up; Stop then returns with that loop still running.
const stopGrace = 2 * time.Second

// waitQuiescent waits until no loop has work and no message is in flight:
// every loop is parked with an empty inbox, twice in a row with the same
// number of pushes (a loop that was woken in between would have changed
// it). Loops signal idleness (signalIdle) each time they park while
// stopping or waited on. Each waiter takes the current signal channel
// before it looks, so that a signal after the look wakes it, however many
// wait beside it.
func (e *Engine) waitQuiescent(ctx context.Context) error {
	prev, have := uint64(0), false
	for {
		idle := e.idleSignal()
		if sum, ok := e.quiescent(); ok {
			if have && sum == prev {
				return nil
			}
			prev, have = sum, true
			continue
		}
		have = false
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (e *Engine) quiescent() (uint64, bool) {
	if e.goActive.Load() > 0 {
		return 0, false // work on the worker pool will post its result
	}
	var sum uint64
	for _, l := range e.loops {
		// sleeping is cleared by whoever wakes the loop (a post, a clock
		// alarm) before the loop clears idle, so checking both closes the
		// window in which a woken loop still looks idle.
		if !l.idle.Load() || l.sleeping.Load() != sleepParked {
			return 0, false
		}
		pushed, popped := l.inbox.Pushed(), l.inbox.Popped()
		if pushed != popped {
			return 0, false
		}
		sum += pushed + l.spilled.Load()
		if l.spilling.Load() {
			return 0, false
		}
	}
	return sum, true
}

// WaitIdle waits until the engine has nothing to do: every loop parked,
// no message in flight, no ready task, no Context.Go work running or its
// result on its way. Timers that are not due yet do not count as work. It
// returns ctx.Err() when ctx ends first, and an error matching ErrStopped
// when the engine is not running. It is meant for tests and tools
// (package enginetest steps a manual clock with it); a busy engine may
// never be idle.
func (e *Engine) WaitIdle(ctx context.Context) error {
	if e.state.Load() != stateRunning {
		return fmt.Errorf("%w: WaitIdle on an engine that is not running", ErrStopped)
	}
	e.idleWaiters.Add(1)
	defer e.idleWaiters.Add(-1)
	return e.waitQuiescent(ctx)
}

// waitCtx waits for wg or ctx. On ctx's end the helper goroutine stays
// until wg is done; that only happens when a handler never returns.
func waitCtx(ctx context.Context, wg interface{ Wait() }) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdown terminates every agent of the loop for Stop. Graceful: deliver
// every queued message (paused agents included) first. Immediate: dead-
// letter them. OnTerminate runs once either way.
func (l *loop) shutdown(immediate bool) {
	l.shut = true
	l.dropTimers()
	for a, next := l.agents, (*agent)(nil); a != nil; a = next {
		next = a.next // finalize unlinks a
		if a.lc.State() == lifecycle.Terminated {
			continue
		}
		a.terminating = true
		if immediate || a.mb.len() == 0 {
			if n := a.mb.len(); n > 0 {
				l.e.stopDropped.Add(int64(n))
			}
			l.finalize(a, ErrStopped)
			continue
		}
		a.drainOnStop = true
		l.schedule(a)
	}
	// Drain what shutdown scheduled; runAgents finalizes each agent when
	// its mailbox empties.
	for l.runq.Len() > 0 {
		l.runAgents(l.e.cfg.budget)
	}
	for a := l.agents; a != nil; a = l.agents { // any left undrained
		l.finalize(a, ErrStopped)
		l.unlink(a)
	}
	l.publish(true)
	l.e.shutdownWG.Done()
}

// quit dead-letters whatever is still in the inbox or outbox; after it the
// loop goroutine exits and late producers sweep for themselves.
func (l *loop) quit() {
	var env envelope
	for l.popInbox(&env) {
		l.drop(&env)
	}
	l.inbox.Commit()
	l.spillMu.Lock()
	spill := l.spill
	l.spill = nil
	l.spilling.Store(false)
	l.spillMu.Unlock()
	for i := range spill {
		l.drop(&spill[i])
	}
	for i := range l.outbox {
		for {
			env, ok := l.outbox[i].PopFront()
			if !ok {
				break
			}
			l.e.dropEnvelope(l, &env, ErrStopped) // for another loop: no opInit
		}
	}
	l.pending = 0
	l.publish(true)
}

// drop gives up on an envelope of this loop that will never be handled:
// an agent that never started is finalized, messages are dead-lettered.
func (l *loop) drop(env *envelope) {
	if env.op == opInit {
		l.finalize(env.a, ErrStopped)
		return
	}
	l.e.dropEnvelope(l, env, ErrStopped)
}

// signalIdle wakes every waitQuiescent caller to look again.
func (e *Engine) signalIdle() {
	e.idleMu.Lock()
	close(e.idleCh)
	e.idleCh = make(chan struct{})
	e.idleMu.Unlock()
}

// idleSignal returns the channel the next signalIdle closes.
func (e *Engine) idleSignal() <-chan struct{} {
	e.idleMu.Lock()
	defer e.idleMu.Unlock()
	return e.idleCh
}
