package pool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"
)

// DefaultIdleTimeout is how long an idle worker goroutine is kept before it
// exits, unless WithIdleTimeout says otherwise.
const DefaultIdleTimeout = 10 * time.Second

// releaseWait bounds how long Close waits for the ants goroutines to exit
// once all work has finished. They exit in microseconds; the bound only
// guards against a pathological scheduler.
const releaseWait = 5 * time.Second

// closedBit is the flag bit of Workers.state; the bits below it count the
// accepted tasks that have not finished.
const closedBit = int64(1) << 62

// A WorkerOption configures NewWorkers.
type WorkerOption interface {
	apply(*workerConfig)
}

type workerOptionFunc func(*workerConfig)

func (f workerOptionFunc) apply(c *workerConfig) { f(c) }

type workerConfig struct {
	queue   int
	idle    time.Duration
	onPanic func(*PanicError)
}

func (c *workerConfig) validate() error {
	if c.queue < 0 {
		return fmt.Errorf("%w: WithQueue(%d)", ErrInvalidOption, c.queue)
	}
	if c.idle <= 0 {
		return fmt.Errorf("%w: WithIdleTimeout(%v)", ErrInvalidOption, c.idle)
	}
	return nil
}

// WithQueue lets up to n accepted tasks wait for a busy worker instead of
// being refused with ErrOverloaded. A waiting task holds a parked goroutine,
// so keep n in proportion to the pool size. The default is 0: a task is
// accepted only when a worker can start it at once.
func WithQueue(n int) WorkerOption {
	return workerOptionFunc(func(c *workerConfig) { c.queue = n })
}

// WithIdleTimeout sets how long an idle worker goroutine is kept for reuse
// before it exits. It must be positive; the default is DefaultIdleTimeout.
func WithIdleTimeout(d time.Duration) WorkerOption {
	return workerOptionFunc(func(c *workerConfig) { c.idle = d })
}

// WithPanicHandler sets a function that receives panics raised by done
// functions (panics raised by work go to done itself). It runs on the worker
// goroutine. Without it, such panics are recovered and only counted in
// WorkerStats.Panics.
func WithPanicHandler(fn func(*PanicError)) WorkerOption {
	return workerOptionFunc(func(c *workerConfig) { c.onPanic = fn })
}

// WorkerStats is a snapshot of a Workers' activity.
type WorkerStats struct {
	// Size is the number of tasks that may run at once.
	Size int
	// Queue is the number of accepted tasks that may wait for a worker.
	Queue int
	// Running counts tasks whose work or done function is executing.
	Running int
	// Waiting counts accepted tasks waiting for a worker (only with
	// WithQueue).
	Waiting int
	// Submitted counts accepted tasks.
	Submitted uint64
	// Completed counts tasks whose done function has returned.
	Completed uint64
	// Rejected counts Submits refused with ErrOverloaded.
	Rejected uint64
	// Panics counts panics recovered from work and from done.
	Panics uint64
}

// task is one submission, recycled through a Pool so that Submit allocates
// nothing.
type task struct {
	work func() ([]byte, error)
	done func([]byte, error)
}

// Workers runs blocking work on a bounded pool of goroutines (an ants pool
// in non-blocking mode) and hands each result to a done function. It knows
// nothing of event loops: the engine passes a done that posts the result
// back to the submitting agent's loop.
//
// At most size tasks run at once, and at most WithQueue(n) more wait; any
// further Submit fails with ErrOverloaded without blocking.
//
// Concurrency-safe: every method may be called from any goroutine. Create
// Workers with NewWorkers; the zero value is not usable, because a Workers
// owns goroutines that only Close stops.
type Workers struct {
	p       *ants.PoolWithFuncGeneric[*task]
	sem     chan struct{} // with a queue: one token per running task; nil otherwise
	size    int
	queue   int
	onPanic func(*PanicError)
	tasks   Pool[task]

	// state packs closedBit with the count of accepted, unfinished tasks,
	// so that Submit's admission and Close's "closed and empty" test are
	// ordered by a single word: no task can be admitted once Close has seen
	// the count reach zero.
	state    atomic.Int64
	idle     chan struct{} // closed once state == closedBit
	idleOnce sync.Once

	closeMu  sync.Mutex // serialises releasing the ants pool
	released bool       // the ants pool was released; protected by closeMu

	running   atomic.Int64
	submitted atomic.Uint64
	completed atomic.Uint64
	rejected  atomic.Uint64
	panics    atomic.Uint64
}

// NewWorkers returns Workers that run at most size tasks at once. size must
// be positive; otherwise NewWorkers returns ErrInvalidSize. Invalid options
// return ErrInvalidOption.
//
// The ants pool starts two background goroutines (idle-worker purge and a
// clock) and keeps idle worker goroutines for reuse; Close stops them all.
func NewWorkers(size int, opts ...WorkerOption) (*Workers, error) {
	cfg := workerConfig{idle: DefaultIdleTimeout}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// ants counts its capacity in an int32.
	if size <= 0 || size > math.MaxInt32-cfg.queue {
		return nil, fmt.Errorf("%w: %d", ErrInvalidSize, size)
	}
	w := &Workers{
		size:    size,
		queue:   cfg.queue,
		onPanic: cfg.onPanic,
		idle:    make(chan struct{}),
	}
	if cfg.queue > 0 {
		// A queued task is admitted by ants like a running one, then parks
		// on sem until one of the size running tasks finishes. Queueing in
		// the goroutine rather than in a shared list means no task can be
		// stranded by a worker that found the list empty just before it
		// was pushed.
		w.sem = make(chan struct{}, size)
	}
	p, err := ants.NewPoolWithFuncGeneric(size+cfg.queue, w.run,
		ants.WithNonblocking(true),
		ants.WithExpiryDuration(cfg.idle),
	)
	if err != nil {
		return nil, fmt.Errorf("pool: start workers: %w", err)
	}
	w.p = p
	return w, nil
}

// Submit runs work on a worker goroutine and then calls done there with
// work's result. If work panics (or calls runtime.Goexit), done receives a
// *PanicError instead. done runs on the worker goroutine, so it should be
// short: hand the result over (for example, post it to a loop) and return.
//
// Submit never blocks. If no worker and no queue slot is free it returns
// ErrOverloaded; after Close it returns ErrClosed; a nil work or done returns
// ErrNilFunc. In those cases neither work nor done is called. Once Submit
// returns nil, done is called exactly once.
//
// Concurrency-safe.
func (w *Workers) Submit(work func() ([]byte, error), done func([]byte, error)) error {
	if work == nil {
		return fmt.Errorf("%w: work", ErrNilFunc)
	}
	if done == nil {
		return fmt.Errorf("%w: done", ErrNilFunc)
	}
	if w.state.Add(1)&closedBit != 0 {
		w.finish()
		return ErrClosed
	}
	t := w.tasks.Get()
	t.work, t.done = work, done
	if err := w.p.Invoke(t); err != nil {
		w.tasks.Put(t)
		w.finish()
		switch {
		case errors.Is(err, ants.ErrPoolOverload):
			w.rejected.Add(1)
			return ErrOverloaded
		case errors.Is(err, ants.ErrPoolClosed):
			// Only a timed-out Close releases the pool early, and it set
			// closedBit first.
			return ErrClosed
		default:
			return fmt.Errorf("pool: submit: %w", err)
		}
	}
	w.submitted.Add(1)
	return nil
}

// run executes one task on an ants worker goroutine.
func (w *Workers) run(t *task) {
	if w.sem != nil {
		w.sem <- struct{}{} // wait for one of the size running slots
	}
	w.running.Add(1)
	// Deferred so that the task is accounted for whatever happens below,
	// even a panic raised by the panic handler.
	defer w.retire()
	work, done := t.work, t.done
	w.tasks.Put(t)
	res, err := w.call(work, done)
	w.deliver(done, res, err)
}

// call runs work and turns a panic into a *PanicError. runtime.Goexit cannot
// be stopped, so under Goexit call delivers the error to done itself, from
// its deferred function, before the goroutine exits.
func (w *Workers) call(work func() ([]byte, error), done func([]byte, error)) (res []byte, err error) {
	normal := false
	defer func() {
		if normal {
			return
		}
		pe := &PanicError{Value: recover(), Stack: debug.Stack()}
		w.panics.Add(1)
		if pe.Value == nil { // Goexit: recover has nothing to stop
			pe.Value = errGoexit
			w.deliver(done, nil, pe)
			return
		}
		res, err = nil, pe
	}()
	res, err = work()
	normal = true
	return res, err
}

// retire accounts for the end of a task started by run.
func (w *Workers) retire() {
	w.running.Add(-1)
	if w.sem != nil {
		<-w.sem
	}
	w.completed.Add(1)
	w.finish()
}

// deliver calls done, recovering a panic so that the worker survives and
// the task is still accounted for.
func (w *Workers) deliver(done func([]byte, error), res []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			w.panics.Add(1)
			if w.onPanic != nil {
				w.onPanic(&PanicError{Value: v, Stack: debug.Stack()})
			}
		}
	}()
	done(res, err)
}

// finish retires one accepted (or refused) task and wakes Close when it was
// the last one after Close.
func (w *Workers) finish() {
	if w.state.Add(-1) == closedBit {
		w.idleOnce.Do(w.signalIdle)
	}
}

func (w *Workers) signalIdle() { close(w.idle) }

// Close stops accepting work (Submit returns ErrClosed from now on) and waits
// until every accepted task has finished, its done function included, or
// until ctx is done.
//
// When all work finished, Close stops the ants pool and waits for its
// goroutines to exit, then returns nil. When ctx is done first, Close
// returns an error wrapping ctx.Err() that says how many tasks were still
// unfinished; it stops the pool's background and idle goroutines, and the
// workers still busy exit as soon as their task returns (its done is still
// called). Close may be called again, and then waits the same way.
//
// Concurrency-safe.
func (w *Workers) Close(ctx context.Context) error {
	if prev := w.state.Or(closedBit); prev == 0 {
		w.idleOnce.Do(w.signalIdle) // open and empty: nothing will finish
	}
	select {
	case <-w.idle:
	default:
		select {
		case <-w.idle:
		case <-ctx.Done():
			n := w.state.Load() &^ closedBit
			w.closeMu.Lock()
			if !w.released {
				w.released = true
				w.p.Release()
			}
			w.closeMu.Unlock()
			return fmt.Errorf("pool: close: %d tasks unfinished: %w", n, ctx.Err())
		}
	}

	w.closeMu.Lock()
	defer w.closeMu.Unlock()
	if w.released {
		return nil
	}
	w.released = true
	wait := releaseWait
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		// Never below a few milliseconds: the work is done, only the
		// goroutines' exit is left to see.
		wait = max(time.Until(d), 10*time.Millisecond)
	}
	if err := w.p.ReleaseTimeout(wait); err != nil {
		return fmt.Errorf("pool: close: stop workers: %w", err)
	}
	return nil
}

// Running returns the number of tasks whose work or done function is
// executing.
//
// Concurrency-safe.
func (w *Workers) Running() int { return int(w.running.Load()) }

// Stats returns a snapshot of the counters. Each is read atomically, but not
// all at the same instant.
//
// Concurrency-safe.
func (w *Workers) Stats() WorkerStats {
	running := int(w.running.Load())
	accepted := int(w.state.Load() &^ closedBit)
	return WorkerStats{
		Size:      w.size,
		Queue:     w.queue,
		Running:   running,
		Waiting:   max(accepted-running, 0),
		Submitted: w.submitted.Load(),
		Completed: w.completed.Load(),
		Rejected:  w.rejected.Load(),
		Panics:    w.panics.Load(),
	}
}
