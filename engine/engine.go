package engine

import (
	"context"
	"fmt"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentloop/agentloop/pool"
)

// Engine states.
const (
	stateCreated int32 = iota
	stateRunning
	stateStopping
	stateStopped
)

// Engine runs agents on a fixed set of event loops. Create one with New,
// register agent types, Start it, and Stop it when done.
//
// Concurrency-safe: every exported method. An agent's handlers, hooks and
// callbacks run only on its loop (the work function of Context.Go runs on
// a worker).
type Engine struct {
	cfg   config
	loops []*loop

	mu      sync.Mutex            // guards writes of types and plugins, state transitions
	types   atomic.Pointer[types] // copy-on-write: lookups take no lock
	nextTyp int

	registry registry
	cluster  Cluster // WithCluster; nil: every ID is local (cluster.go)
	pubsub   pubsub

	state    atomic.Int32
	stopping atomic.Bool // set once Stop begins; loops drop timers, refuse spawns
	started  atomic.Bool // Start has run: loops pop their inboxes
	stopCh   chan struct{}
	idleMu   sync.Mutex    // guards idleCh
	idleCh   chan struct{} // closed and replaced by each signalIdle (see waitQuiescent)

	stopClaimed atomic.Bool // the first Stop call runs the stop
	stopDone    chan struct{}
	reqs        atomic.Pointer[reqTable] // outside requests in flight (see request_table.go)
	reqNext     atomic.Uint32
	stopErr     error // written before stopDone is closed

	loopsWG    sync.WaitGroup
	shutdownWG sync.WaitGroup

	plugins atomic.Pointer[pluginSet]

	deadLetters atomic.Uint64
	panics      atomic.Uint64
	stopDropped atomic.Int64

	clock   Clock
	virtual bool // clock is not the system clock
	handoff bool // loops may run parked peers' turns (WithHandoff, never virtual)
	loc     *time.Location

	workersMu sync.Mutex    // guards workers
	workers   *pool.Workers // Context.Go's pool; nil until the first Go

	// idleWaiters counts WaitIdle callers; while positive, parking loops
	// signal idleness (signalIdle) as they do while stopping.
	idleWaiters atomic.Int32
	goActive    atomic.Int64 // Context.Go work not yet handed back to its loop

	// base is the parent of every agent's Context.Context (and so of the
	// context Context.Go work gets); Stop cancels it when it begins.
	base    context.Context
	endBase context.CancelCauseFunc

	log engineLog // the slog records and their limits (log.go)

	snapMu sync.Mutex // one Snapshot at a time (snapshot.go)
}

// now is the engine clock in unix nanoseconds.
func (e *Engine) now() int64 {
	if !e.virtual {
		return time.Now().UnixNano()
	}
	return e.clock.Now().UnixNano()
}

type types map[string]*agentType

// agentType is a registered type: how to make its agents and how they behave.
type agentType struct {
	name     string
	idx      int
	factory  func() Agent
	cfg      typeConfig
	restarts restartPolicy
	labelCtx context.Context // pprof labels, built once
	perLoop  []*typeCounters // indexed by loop
	pools    []recordPool    // Pooled: recycled records, indexed by loop
}

func (t *agentType) newInstance(old Agent) Agent {
	if t.cfg.pooled {
		if r, ok := old.(Resetter); ok {
			r.Reset()
			return old
		}
	}
	return t.factory()
}

// New returns an engine that is not started yet. It starts no goroutine;
// Start does.
func New(opts ...Option) (*Engine, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	e := &Engine{
		cfg:      cfg,
		stopCh:   make(chan struct{}),
		idleCh:   make(chan struct{}),
		stopDone: make(chan struct{}),
		clock:    cfg.clock,
		cluster:  cfg.cluster,
	}
	if e.clock == nil {
		e.clock = systemClock{}
	} else {
		e.virtual = true
	}
	e.handoff = !e.virtual && !e.cfg.noHandoff
	e.loc = e.clock.Now().Location()
	e.base, e.endBase = context.WithCancelCause(context.Background())
	e.log.init(&cfg, cfg.loops)
	e.types.Store(&types{})
	e.plugins.Store(&pluginSet{})
	e.registry.init()
	e.pubsub.init(cfg.loops)
	e.loops = make([]*loop, cfg.loops)
	for i := range e.loops {
		e.loops[i] = newLoop(e, i)
	}
	return e, nil
}

// Loops returns the number of event loops.
func (e *Engine) Loops() int { return len(e.loops) }

// Register adds an agent type: factory makes a new agent value each time an
// agent of this type is spawned (or restarted), except that a Pooled type
// whose values have a Reset method reuses them. The name follows the rules
// of AgentID.Type (ErrInvalidID otherwise). Types may be registered before
// or after Start. Concurrency-safe.
func (e *Engine) Register(name string, factory func() Agent, opts ...RegisterOption) error {
	if err := checkTypeName(name); err != nil {
		return err
	}
	if factory == nil {
		return fmt.Errorf("%w: type %q", ErrNilFactory, name)
	}
	tc := typeConfig{priority: 50, capacity: DefaultMailboxSize, overflow: DropNewest, batch: DefaultBatch}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyType(&tc); err != nil {
			return fmt.Errorf("register %q: %w", name, err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state.Load() >= stateStopping {
		return fmt.Errorf("%w: register %q", ErrStopped, name)
	}
	old := *e.types.Load()
	if _, dup := old[name]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicateType, name)
	}
	t := &agentType{
		name:     name,
		idx:      e.nextTyp,
		factory:  factory,
		cfg:      tc,
		restarts: e.cfg.restarts,
		labelCtx: pprof.WithLabels(context.Background(), pprof.Labels(LabelAgentType, name)),
		perLoop:  make([]*typeCounters, len(e.loops)),
	}
	if tc.hasRest {
		t.restarts = tc.restarts
	}
	for i := range t.perLoop {
		t.perLoop[i] = &typeCounters{typ: t}
	}
	if tc.pooled {
		t.pools = make([]recordPool, len(e.loops))
	}
	e.nextTyp++
	next := make(types, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = t
	e.types.Store(&next)
	return nil
}

// LabelAgentType is the pprof label key under which loops tag the work of
// each agent type while a profiler asks for labels.
const LabelAgentType = "agent_type"

func (e *Engine) lookupType(name string) (*agentType, error) {
	t := (*e.types.Load())[name]
	if t == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, name)
	}
	return t, nil
}

// Start starts the loops. Agents spawned before Start are initialised and
// messages sent to them before Start are delivered, in order, once it runs.
// Start is a no-op if already started; it returns ErrStopped after Stop.
func (e *Engine) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state.Load() {
	case stateRunning:
		return nil
	case stateStopping, stateStopped:
		return ErrStopped
	}
	e.state.Store(stateRunning)
	e.started.Store(true)
	for _, l := range e.loops {
		l.startWheel()
		e.loopsWG.Add(1)
		go l.run()
	}
	return nil
}
