package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentloop/agentloop/pool"
)

// ErrOverloaded is returned by Context.Go when every worker is busy and the
// worker queue is full: the work was not started and then will not run.
// It is pool.ErrOverloaded, so either name matches.
var ErrOverloaded = pool.ErrOverloaded

// Defaults of WithWorkers.
const (
	DefaultWorkers     = 64
	DefaultWorkerQueue = 1024
)

// WithWorkers bounds the pool that runs Context.Go work: at most size
// calls run at once and up to queue more wait for a worker; past that Go
// fails at once with ErrOverloaded. The pool is an ants/v2 pool created by
// the first Go; none of its goroutines exists before. From then on it has
// two background goroutines (ants' idle-worker purge and its clock) and up
// to size+queue worker goroutines (a queued call waits on a goroutine of
// its own), reused, each exiting after ten seconds idle; Stop closes the
// pool and waits for them.
func WithWorkers(size, queue int) Option {
	return optionFunc(func(c *config) error {
		if size < 1 || queue < 0 {
			return fmt.Errorf("%w: WithWorkers(%d, %d): want size ≥ 1, queue ≥ 0", ErrInvalidOption, size, queue)
		}
		c.workers, c.workerQueue = size, queue
		return nil
	})
}

// Go runs work on the engine's worker pool, off the loop, and then calls
// then on the agent's loop with work's result, as if it were a message:
// then may use c like a handler. It is the way for a handler to do
// blocking work (file or network I/O, a model call) without blocking its
// loop.
//
// work gets the agent's context (Context.Context): it is cancelled when
// the agent terminates or Stop begins, so work that passes it to its I/O
// ends with the agent and with the engine. context.Cause(ctx) says which
// (ErrTerminated, ErrStopped, or what ended the agent). Work that must run
// to completion whatever happens can detach with context.WithoutCancel.
//
// Go never blocks. It returns ErrOverloaded when the pool and its queue
// are full, ErrStopped once Stop has begun, and an ErrInvalidArgument error
// for a nil function; then then is never called. Otherwise then is called
// exactly once, unless the agent has terminated by the time work returns
// (the result is then dropped). A panic in work reaches then as an error
// that matches pool.ErrPanic (a *pool.PanicError with the stack); a panic
// in then is handled like one in Receive. Stop cancels the context and
// then waits for running work, up to its own context's deadline, before it
// shuts the agents down: the result of work that returns in time reaches
// then, during a graceful Stop as at any other time.
func (c *Context) Go(work func(ctx context.Context) ([]byte, error), then func(c *Context, result []byte, err error)) error {
	if work == nil || then == nil {
		return fmt.Errorf("%w: Go with a nil function", ErrInvalidArgument)
	}
	e := c.l.e
	w, err := e.workerPool()
	if err != nil {
		return err
	}
	a, gen, l := c.a, c.a.gen.Load(), c.l
	ctx := a.context(l)
	// goActive counts work from Submit until its callback is in the
	// loop's inbox, so that WaitIdle never sees an idle engine while work
	// runs: the post is counted by the inbox before the work stops being
	// counted here, and waiters are told to look again after that.
	e.goActive.Add(1)
	err = w.Submit(func() ([]byte, error) { return work(ctx) }, func(res []byte, err error) {
		l.post(&envelope{op: opFunc, fn: func() { l.runCallback(a, gen, "Go callback", then, res, err) }})
		e.goActive.Add(-1)
		if e.idleWaiters.Load() > 0 || e.stopping.Load() {
			e.signalIdle()
		}
	})
	if err != nil {
		e.goActive.Add(-1)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pool.ErrClosed):
		return fmt.Errorf("%w: Go from %s", ErrStopped, a.ident())
	default:
		return fmt.Errorf("engine: Go from %s: %w", a.ident(), err)
	}
}

// workerPool returns the engine's workers, starting them on first use.
func (e *Engine) workerPool() (*pool.Workers, error) {
	e.workersMu.Lock()
	defer e.workersMu.Unlock()
	if e.stopping.Load() {
		return nil, fmt.Errorf("%w: Go", ErrStopped)
	}
	if e.workers == nil {
		w, err := pool.NewWorkers(e.cfg.workers, pool.WithQueue(e.cfg.workerQueue))
		if err != nil {
			return nil, fmt.Errorf("engine: start workers: %w", err)
		}
		e.workers = w
	}
	return e.workers, nil
}

// closeWorkers waits, up to ctx, for the work Go started; the callbacks of
// work that finishes in time are posted to the loops, which still run.
func (e *Engine) closeWorkers(ctx context.Context) error {
	e.workersMu.Lock()
	w := e.workers
	e.workersMu.Unlock()
	if w == nil {
		return nil
	}
	return w.Close(ctx)
}
