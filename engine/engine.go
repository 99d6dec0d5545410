package engine

import (
	"context"
	"fmt"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentloop/agentloop/lifecycle"
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
// Concurrency-safe: every exported method. Agent code runs only on loops.
type Engine struct {
	cfg   config
	loops []*loop

	mu      sync.Mutex            // guards types (writes), state transitions
	types   atomic.Pointer[types] // copy-on-write: lookups take no lock
	nextTyp int

	registry registry
	pubsub   pubsub

	state    atomic.Int32
	stopping atomic.Bool // set once Stop begins; loops drop timers, refuse spawns
	started  atomic.Bool // Start has run: loops pop their inboxes
	stopCh   chan struct{}
	idleCh   chan struct{}

	stopClaimed atomic.Bool // the first Stop call runs the stop
	stopDone    chan struct{}
	stopErr     error // written before stopDone is closed

	loopsWG    sync.WaitGroup
	shutdownWG sync.WaitGroup

	plugins atomic.Pointer[pluginSet]

	deadLetters atomic.Uint64
	panics      atomic.Uint64
	stopDropped atomic.Int64

	clock   Clock
	virtual bool // clock is not the system clock
	loc     *time.Location

	workersMu sync.Mutex    // guards workers
	workers   *pool.Workers // Context.Go's pool; nil until the first Go

	// idleWaiters counts WaitIdle callers; while positive, parking loops
	// signal idleCh as they do while stopping.
	idleWaiters atomic.Int32
	goActive    atomic.Int64 // Context.Go work not yet handed back to its loop
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
	labelCtx context.Context    // pprof labels, built once
	perLoop  []*typeCounters    // indexed by loop
	pools    []pool.Pool[agent] // Pooled: recycled records, indexed by loop
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
		idleCh:   make(chan struct{}, 1),
		stopDone: make(chan struct{}),
		clock:    cfg.clock,
	}
	if e.clock == nil {
		e.clock = systemClock{}
	} else {
		e.virtual = true
	}
	e.loc = e.clock.Now().Location()
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
// agent of this type is spawned (or restarted). The name follows the rules
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
		t.pools = make([]pool.Pool[agent], len(e.loops))
		for i := range t.pools {
			// Records are readied on their loop before Put (recycleAgents):
			// the pool must not zero them.
			t.pools[i].Reset = func(*agent) {}
		}
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

// Spawn creates the agent id and returns its Ref. The agent's Init runs on
// its loop shortly after (or at Start); messages sent before then wait in
// its mailbox. Spawning an ID that is alive returns its Ref and an error
// wrapping ErrAgentExists. Concurrency-safe.
func (e *Engine) Spawn(id AgentID, opts ...SpawnOption) (Ref, error) {
	if err := id.Validate(); err != nil {
		return Ref{}, err
	}
	loopIdx := -1
	if len(opts) > 0 { // the options escape: only pay for them when given
		sc := spawnConfig{loop: -1}
		for _, o := range opts {
			if o == nil {
				continue
			}
			if err := o.applySpawn(&sc); err != nil {
				return Ref{}, err
			}
		}
		if sc.loop >= len(e.loops) {
			return Ref{}, fmt.Errorf("%w: OnLoop(%d) with %d loops", ErrInvalidOption, sc.loop, len(e.loops))
		}
		loopIdx = sc.loop
	}
	t, err := e.lookupType(id.Type)
	if err != nil {
		return Ref{}, err
	}
	if a := e.registry.get(id, id.hash()); a != nil {
		return a.ref(), fmt.Errorf("%w: %s", ErrAgentExists, id)
	}
	a, created, err := e.getOrSpawn(id, t, loopIdx)
	if err != nil {
		return Ref{}, err
	}
	if !created {
		return a.ref(), fmt.Errorf("%w: %s", ErrAgentExists, id)
	}
	return a.ref(), nil
}

// getOrSpawn returns the live agent id, creating it when absent.
//
// Callers have looked the ID up already, so it goes straight to creating
// the agent; putIfAbsent settles races (the loser's agent is dropped).
func (e *Engine) getOrSpawn(id AgentID, t *agentType, loopIdx int) (*agent, bool, error) {
	h := id.hash()
	if e.stopping.Load() {
		return nil, false, fmt.Errorf("%w: spawn %s", ErrStopped, id)
	}
	if loopIdx < 0 {
		loopIdx = int(h % uint64(len(e.loops)))
	}
	l := e.loops[loopIdx]
	var a *agent
	if t.pools != nil {
		a = t.pools[loopIdx].Get()
	}
	if a != nil && a.typ != nil {
		// A recycled record: new incarnation first, then the new key (see
		// idAt), then Terminated → Idle.
		a.gen.Add(1)
		a.setID(id)
		if err := a.lc.Reset(); err == nil {
			e.notifyTransition(a, lifecycle.Terminated, lifecycle.Idle)
		}
	} else {
		if a == nil {
			a = &agent{}
		}
		a.typ, a.loop, a.tc = t, l, t.perLoop[loopIdx]
		a.setID(id)
		impl := t.factory()
		if impl == nil {
			return nil, false, fmt.Errorf("%w: factory of %q returned nil", ErrNilFactory, t.name)
		}
		a.setImpl(impl)
	}
	actual, created := e.registry.putIfAbsent(id, h, a)
	if !created {
		return actual, false, nil
	}
	e.transition(a, lifecycle.Initializing)
	l.post(&envelope{a: a, gen: a.gen.Load(), op: opInit})
	return a, true, nil
}

// Lookup returns the Ref of a live agent.
func (e *Engine) Lookup(id AgentID) (Ref, error) {
	if err := id.Validate(); err != nil {
		return Ref{}, err
	}
	a := e.registry.get(id, id.hash())
	if a == nil {
		return Ref{}, fmt.Errorf("%w: %s", ErrUnknownAgent, id)
	}
	return a.ref(), nil
}

// Send delivers payload to the agent id from outside the engine, spawning
// it first when its type is registered and it does not exist (a virtual
// actor). Concurrency-safe. The payload is not copied: do not modify it
// after Send. With a full Block mailbox Send waits for room until the
// engine stops; SendContext bounds the wait.
func (e *Engine) Send(id AgentID, payload []byte) error {
	r, err := e.resolve(id)
	if err != nil {
		return err
	}
	return e.sendExternal(nil, r, Message{Payload: payload})
}

// SendContext is Send with a context: while a full Block mailbox makes it
// wait for room, it gives up when ctx ends and returns an error matching
// both ErrMailboxFull and ctx.Err(); the message is then not sent. With
// the other policies it never waits (ctx is checked once, before sending).
func (e *Engine) SendContext(ctx context.Context, id AgentID, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("engine: send to %s: %w", id, err)
	}
	r, err := e.resolve(id)
	if err != nil {
		return err
	}
	return e.sendExternal(ctx, r, Message{Payload: payload})
}

// resolve finds or lazily spawns id.
func (e *Engine) resolve(id AgentID) (Ref, error) {
	if a := e.registry.get(id, id.hash()); a != nil {
		return a.ref(), nil
	}
	if err := id.Validate(); err != nil {
		return Ref{}, err
	}
	t, err := e.lookupType(id.Type)
	if err != nil {
		return Ref{}, err
	}
	return e.resolveIn(id, t)
}

// sendExternal is the path of every send from a goroutine outside the
// loops: checks, mailbox reservation for Reject/Block, then the inbox.
// ctx, when not nil, bounds a Block wait.
func (e *Engine) sendExternal(ctx context.Context, r Ref, m Message) error {
	if e.state.Load() >= stateStopping {
		return fmt.Errorf("%w: send to %s", ErrStopped, r.a.idAt(r.gen))
	}
	a := r.a
	if !a.admits(r.gen) {
		return fmt.Errorf("%w: send to %s", ErrTerminated, a.idAt(r.gen))
	}
	if a.typ.cfg.reserves() {
		if err := e.reserve(ctx, a, r.gen, a.typ.cfg.overflow); err != nil {
			return err
		}
	}
	a.loop.post(&envelope{a: a, gen: r.gen, op: opMsg, msg: m})
	return nil
}

// admits reports whether incarnation gen of a still accepts sends: the
// rule every send path applies before it reserves or posts anything. It
// reads only atomics, so it holds from any goroutine; the loop checks
// again on arrival (live), which also sees a terminate in progress.
func (a *agent) admits(gen uint32) bool {
	return a.gen.Load() == gen && !a.stopReq.Load() && a.lc.State() != lifecycle.Terminated
}

// reserve takes a place in a Reject or Block mailbox; false when full.
func (a *agent) reserve() bool {
	if int(a.occ.Add(1)) <= a.typ.cfg.capacity {
		return true
	}
	a.occ.Add(-1)
	return false
}

// reserve takes a place in a Reject or Block mailbox for an outside sender,
// waiting for room with Block until the engine stops, the agent
// terminates, or ctx (when not nil) ends.
func (e *Engine) reserve(ctx context.Context, a *agent, gen uint32, p Overflow) error {
	capacity := a.typ.cfg.capacity
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	for {
		if a.reserve() {
			return nil
		}
		if p == Reject {
			return fmt.Errorf("%w: %s (capacity %d)", ErrMailboxFull, a.idAt(gen), capacity)
		}
		l := a.loop
		l.spaceMu.Lock()
		ch := l.spaceCh
		l.spaceMu.Unlock()
		// Announce the wait before the last check; the loop frees places
		// before it looks for waiters, so one of us sees the other.
		l.spaceWaiters.Add(1)
		var ctxErr error
		if int(a.occ.Load()) >= capacity && a.admits(gen) {
			select {
			case <-ch:
			case <-e.stopCh:
			case <-done:
				ctxErr = ctx.Err()
			}
		}
		l.spaceWaiters.Add(-1)
		switch {
		case ctxErr != nil:
			return fmt.Errorf("%w: %s (capacity %d): %w", ErrMailboxFull, a.idAt(gen), capacity, ctxErr)
		case e.state.Load() >= stateStopping:
			return fmt.Errorf("%w: send to %s", ErrStopped, a.idAt(gen))
		case !a.admits(gen):
			return fmt.Errorf("%w: send to %s", ErrTerminated, a.idAt(gen))
		}
	}
}

// State returns the lifecycle state of the agent id.
func (e *Engine) State(id AgentID) (lifecycle.State, error) {
	r, err := e.Lookup(id)
	if err != nil {
		return 0, err
	}
	return r.State(), nil
}

// Pause stops delivery to the agent from its next turn on; messages keep
// queueing in its mailbox (subject to its bound). Its OnPause hook runs on
// its loop. Pausing an agent that is not Running is an error naming both
// states.
func (e *Engine) Pause(id AgentID) error {
	a, err := e.liveAgent(id)
	if err != nil {
		return err
	}
	if err := e.transitionFrom(a, lifecycle.Running, lifecycle.Paused); err != nil {
		return fmt.Errorf("pause %s: %w", id, err)
	}
	a.loop.post(&envelope{a: a, gen: a.gen.Load(), op: opPaused})
	return nil
}

// Resume returns a paused agent to Running; its OnResume hook runs and its
// queued messages are delivered.
func (e *Engine) Resume(id AgentID) error {
	a, err := e.liveAgent(id)
	if err != nil {
		return err
	}
	if err := e.transitionFrom(a, lifecycle.Paused, lifecycle.Running); err != nil {
		return fmt.Errorf("resume %s: %w", id, err)
	}
	a.loop.post(&envelope{a: a, gen: a.gen.Load(), op: opResumed})
	return nil
}

// Terminate ends the agent: a running agent first handles what is already
// in its mailbox, then OnTerminate runs and it leaves the registry. A
// paused agent's queued messages are dead-lettered. Terminating an agent
// that is already terminating is a no-op.
func (e *Engine) Terminate(id AgentID) error {
	a, err := e.liveAgent(id)
	if err != nil {
		return err
	}
	if a.stopReq.CompareAndSwap(false, true) {
		a.loop.post(&envelope{a: a, gen: a.gen.Load(), op: opTerminate})
	}
	return nil
}

func (e *Engine) liveAgent(id AgentID) (*agent, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if e.state.Load() >= stateStopping {
		return nil, fmt.Errorf("%w: %s", ErrStopped, id)
	}
	a := e.registry.get(id, id.hash())
	if a == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownAgent, id)
	}
	return a, nil
}

// transition moves a to `to` and tells the plugins. Used for moves whose
// legality the engine guarantees.
func (e *Engine) transition(a *agent, to lifecycle.State) {
	from, err := a.lc.To(to)
	if err != nil {
		return
	}
	e.notifyTransition(a, from, to)
}

func (e *Engine) transitionFrom(a *agent, from, to lifecycle.State) error {
	if err := a.lc.Transition(from, to); err != nil {
		return err
	}
	e.notifyTransition(a, from, to)
	return nil
}

func (e *Engine) notifyTransition(a *agent, from, to lifecycle.State) {
	if ps := e.plugins.Load().onTransition; ps != nil {
		for _, p := range ps {
			e.safePlugin(func() { p.OnTransition(a.ident(), from, to) })
		}
	}
}

func (e *Engine) reportPanic(pe *PanicError) {
	e.panics.Add(1)
	if ps := e.plugins.Load().onPanic; ps != nil {
		for _, p := range ps {
			e.safePlugin(func() { p.OnPanic(pe.ID, pe.Value, pe.Stack) })
		}
	}
}

// deadLetter records a dead letter: a request in it is failed, the engine
// counter moves and the plugins see it. cur is the loop it happens on, nil
// outside the loops (after Stop).
func (e *Engine) deadLetter(cur *loop, a *agent, gen uint32, m Message, reason error) {
	if m.x != nil {
		if rq := m.req(); rq != nil {
			// The message holds the request: its incarnation is current.
			rq.fail(cur, rq.pending(), fmt.Errorf("%w: request to %s", reason, a.idAt(gen)))
		} else {
			defer m.buffer().Release() // after the plugins have seen the payload
		}
	}
	e.deadLetters.Add(1)
	if ps := e.plugins.Load().onDeadLetter; ps != nil {
		d := DeadLetter{To: a.idAt(gen), Message: m, Reason: reason}
		for _, p := range ps {
			e.safePlugin(func() { p.OnDeadLetter(d) })
		}
	}
}

// safePlugin runs a plugin callback; a panicking plugin is counted and
// otherwise ignored so it can never take a loop down.
func (e *Engine) safePlugin(f func()) {
	defer func() {
		if r := recover(); r != nil {
			e.panics.Add(1)
		}
	}()
	f()
}

func (e *Engine) signalIdle() {
	select {
	case e.idleCh <- struct{}{}:
	default:
	}
}
