package engine

// This file: saving and restoring agents' state: Engine.Snapshot and
// Engine.Restore. The format is in snapshot_format.go, files and periodic
// snapshots in snapshot_file.go.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/agentloop/agentloop/lifecycle"
)

// Optional hooks of agents whose state survives a restart, found by
// interface on the value the factory returns, like Initializer.
type (
	// StateSaver is implemented by agents that Snapshot saves. SaveState
	// runs on the agent's loop, between two of its messages, while every
	// loop of the engine waits at the snapshot's barrier: it must be quick
	// and must not block. It returns the agent's state and the version of
	// its layout (schema), which LoadState gets back. The engine keeps the
	// slice until the snapshot is written, after the loops have resumed:
	// return a fresh slice, never one the agent modifies later. An error or
	// a panic fails the whole snapshot, the error naming the agent.
	StateSaver interface {
		SaveState() (state []byte, schema uint32, err error)
	}
	// StateLoader is implemented by agents that Restore re-creates.
	// LoadState gets what SaveState returned, with its schema, so that an
	// agent can migrate state written by an older version of itself. It
	// runs on the goroutine calling Restore, on the value the type's
	// factory has just returned, before the agent is registered: before
	// its Init and before any message, hook or timer can reach it. state
	// is valid only during the call (copy what you keep). An error or a
	// panic skips the agent (RestoreInfo.Skipped); the other agents are
	// restored.
	StateLoader interface {
		LoadState(state []byte, schema uint32) error
	}
)

// SnapshotOption configures Snapshot.
type SnapshotOption interface{ applySnapshot(*snapshotConfig) }

type snapshotConfig struct{ queued bool }

type snapshotOptionFunc func(*snapshotConfig)

func (f snapshotOptionFunc) applySnapshot(c *snapshotConfig) { f(c) }

// WithQueued makes Snapshot save, with each agent, the messages queued for
// it: its mailbox, then those still between the loops (in the inboxes and
// outboxes the barrier finds them in), oldest first. Restore queues them
// again ahead of any new message. Requests and timer ticks are not saved
// (a request's caller and a timer do not outlive the engine): they are
// counted in SnapshotInfo.Unsaved.
func WithQueued() SnapshotOption {
	return snapshotOptionFunc(func(c *snapshotConfig) { c.queued = true })
}

// SnapshotInfo describes a snapshot that was written.
type SnapshotInfo struct {
	Agents   int       // agents saved
	Messages int       // queued messages saved (WithQueued)
	Unsaved  int       // queued requests and timer ticks left out (WithQueued)
	Bytes    int64     // bytes written
	Created  time.Time // the engine clock at the barrier
	Paused   time.Duration
	// Paused is how long the loops were held at the barrier, from the
	// last one's arrival to their release (the system clock).
}

// Snapshot writes a consistent snapshot of every live agent that
// implements StateSaver to w, in the format of the package
// documentation, and returns what it wrote.
//
// Consistency: Snapshot posts a task to every loop and each, between two
// turns, stops at a barrier; once every loop is there, each saves its own
// agents (and, WithQueued, their messages), and the loops resume only once
// all have saved. No message is handled between two agents' saves of one
// snapshot, so a message a saved agent sent is either reflected in its
// receiver's saved state or, WithQueued, among the receiver's saved
// messages. Agents whose Init has not run yet, agents terminating, and
// those that do not implement StateSaver are not saved. The encoding and
// the write happen after the loops resumed.
//
// A SaveState error or panic fails the snapshot, with an error naming the
// agent, and nothing is written to w. Snapshots of one engine are taken one
// at a time. Snapshot returns ErrInLoop from a handler or hook, ErrStopped
// before Start or once Stop has begun (or when Stop begins while the loops
// are held), and ctx.Err() when ctx ends before every loop reached the
// barrier (a loop stuck in a handler holds it up). Concurrency-safe.
func (e *Engine) Snapshot(ctx context.Context, w io.Writer, opts ...SnapshotOption) (SnapshotInfo, error) {
	var sc snapshotConfig
	for _, o := range opts {
		if o != nil {
			o.applySnapshot(&sc)
		}
	}
	recs, info, err := e.collect(ctx, sc)
	if err != nil {
		return SnapshotInfo{}, err
	}
	info.Bytes, err = encodeSnapshot(w, info.Created.UnixNano(), sc.queued, recs)
	if err != nil {
		return SnapshotInfo{}, err
	}
	return info, nil
}

// snapRun is one snapshot's barrier.
type snapRun struct {
	queued  bool
	arrived chan struct{} // one token per loop at the barrier
	proceed chan struct{} // closed once every loop arrived: save
	parts   chan *snapPart
	resume  chan struct{} // closed once every loop saved: go on
	abort   chan struct{} // closed when the snapshot gives up
}

// snapPart is what one loop saved.
type snapPart struct {
	recs    []snapRec
	extra   map[*agent][]SnapshotMessage // messages in this loop's outboxes
	unsaved int
	err     error
}

// collect runs the barrier and returns the saved records, sorted.
func (e *Engine) collect(ctx context.Context, sc snapshotConfig) ([]snapRec, SnapshotInfo, error) {
	if e.onLoop() {
		return nil, SnapshotInfo{}, fmt.Errorf("%w: Snapshot", ErrInLoop)
	}
	if !e.started.Load() || e.state.Load() >= stateStopping {
		return nil, SnapshotInfo{}, fmt.Errorf("%w: Snapshot: engine not running", ErrStopped)
	}
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	n := len(e.loops)
	s := &snapRun{
		queued:  sc.queued,
		arrived: make(chan struct{}, n),
		proceed: make(chan struct{}),
		parts:   make(chan *snapPart, n),
		resume:  make(chan struct{}),
		abort:   make(chan struct{}),
	}
	for _, l := range e.loops {
		l.post(&envelope{op: opFunc, fn: s.enter(l)})
	}
	fail := func(err error) ([]snapRec, SnapshotInfo, error) {
		close(s.abort)
		return nil, SnapshotInfo{}, err
	}
	for range n {
		select {
		case <-s.arrived:
		case <-ctx.Done():
			return fail(fmt.Errorf("engine: Snapshot: %w", ctx.Err()))
		case <-e.stopCh:
			return fail(fmt.Errorf("%w: Snapshot", ErrStopped))
		}
	}
	held := time.Now()
	info := SnapshotInfo{Created: time.Unix(0, e.now()).In(e.loc)}
	close(s.proceed)
	parts := make([]*snapPart, 0, n)
	for range n {
		select {
		case p := <-s.parts:
			parts = append(parts, p)
		case <-ctx.Done():
			return fail(fmt.Errorf("engine: Snapshot: %w", ctx.Err()))
		case <-e.stopCh:
			return fail(fmt.Errorf("%w: Snapshot", ErrStopped))
		}
	}
	close(s.resume)
	info.Paused = time.Since(held)
	var recs []snapRec
	for _, p := range parts {
		if p.err != nil {
			return nil, SnapshotInfo{}, p.err
		}
		recs = append(recs, p.recs...)
		info.Unsaved += p.unsaved
	}
	if sc.queued {
		at := make(map[*agent]int, len(recs))
		for i := range recs {
			at[recs[i].a] = i
		}
		for _, p := range parts {
			for a, msgs := range p.extra {
				if i, ok := at[a]; ok {
					recs[i].queued = append(recs[i].queued, msgs...)
				}
			}
		}
	}
	slices.SortFunc(recs, func(x, y snapRec) int {
		return cmp.Or(cmp.Compare(x.id.Type, y.id.Type), cmp.Compare(x.id.Key, y.id.Key))
	})
	for i := range recs {
		recs[i].a = nil
		info.Messages += len(recs[i].queued)
	}
	info.Agents = len(recs)
	return recs, info, nil
}

// enter returns the task posted to loop l. It runs nested in the loop's
// drain of its inbox, so it only queues the barrier as a ready task, which
// the loop runs later in the same turn, on its own goroutine. A peer that
// borrowed l (see borrowHandoff) must not wait at the barrier, or its own
// goroutine could never reach it: it posts the task again to l through
// l's outbox to itself, which the next turn takes, until l's goroutine has
// it back (a borrow lasts at most borrowTurns turns).
func (s *snapRun) enter(l *loop) func() {
	var fn func()
	fn = func() {
		if goroutineID() != l.gid.Load() {
			l.outbox[l.idx].PushBack(envelope{op: opFunc, fn: fn})
			l.pending++
			return
		}
		l.ready.PushBack(envelope{op: opFunc, fn: func() { s.barrier(l) }})
	}
	return fn
}

// barrier is a loop's part of the snapshot, between two turns.
func (s *snapRun) barrier(l *loop) {
	s.arrived <- struct{}{}
	select {
	case <-s.proceed:
	case <-s.abort:
		return
	}
	var deferred []envelope
	if s.queued {
		deferred = l.drainForSnapshot()
	}
	s.parts <- l.saveAgents(s.queued)
	select {
	case <-s.resume:
	case <-s.abort:
	}
	for i := range deferred {
		l.dispatch(&deferred[i])
	}
}

// drainForSnapshot moves the messages waiting in the loop's inbox into
// their mailboxes, so that the agents' saves find them, as the loop's
// next drain would have (no handler runs meanwhile). Other work it finds
// in the inbox is returned, to run once every loop has saved: it may run
// agents' code, which must not send between two saves. It stops at a
// Terminate or the engine's stop (left in the inbox, so that the messages
// behind them keep their fate) and after one inbox's worth. Loop only.
func (l *loop) drainForSnapshot() []envelope {
	var deferred []envelope
	for n := l.inbox.Cap(); n > 0; n-- {
		p := l.inbox.Peek()
		if p == nil {
			break
		}
		switch p.op {
		case opTerminate, opShutdown, opQuit:
			n = 1 // leave it and what follows
			continue
		case opMsg:
			l.enqueue(p.agent(), p.n, &p.msg, true)
		case opPublish:
			env := p.unpack()
			l.dispatch(&env)
		default:
			deferred = append(deferred, p.unpack())
		}
		l.inbox.Advance()
	}
	l.inbox.Commit()
	if l.roomWaiters.Load() > 0 {
		l.signalRoom()
	}
	return deferred
}

// saveAgents calls SaveState on the loop's live agents. Loop only.
func (l *loop) saveAgents(queued bool) *snapPart {
	p := &snapPart{}
	for a := l.agents; a != nil; a = a.next {
		if !a.live(a.gen.Load()) {
			continue
		}
		if st := a.lc.State(); st != lifecycle.Running && st != lifecycle.Paused {
			continue
		}
		sv, ok := a.impl.(StateSaver)
		if !ok {
			continue
		}
		id := a.ident()
		state, schema, err := callSave(sv)
		if err != nil {
			p.err = fmt.Errorf("engine: snapshot: %s: %w", id, err)
			return p
		}
		r := snapRec{a: a, id: id, schema: schema, state: state}
		if queued {
			mb := &a.mb
			for i := int32(0); i < mb.n; i++ {
				m := &mb.buf[(mb.head+i)&int32(len(mb.buf)-1)]
				if sm, ok := savedMessage(m); ok {
					r.queued = append(r.queued, sm)
				} else {
					p.unsaved++
				}
			}
		}
		p.recs = append(p.recs, r)
	}
	if queued {
		for i := range l.outbox {
			ob := &l.outbox[i]
			for k := ob.Len(); k > 0; k-- {
				env, _ := ob.PopFront()
				ob.PushBack(env)
				var to []*agent
				switch env.op {
				case opMsg:
					if env.a.current(env.gen) {
						to = []*agent{env.a}
					}
				case opPublish:
					to = env.subs
				}
				for _, a := range to {
					sm, ok := savedMessage(&env.msg)
					if !ok {
						p.unsaved++
						continue
					}
					if p.extra == nil {
						p.extra = make(map[*agent][]SnapshotMessage)
					}
					p.extra[a] = append(p.extra[a], sm)
				}
			}
		}
	}
	return p
}

// savedMessage is m as a snapshot keeps it; false for a request or a
// timer tick. A payload held in a pooled buffer is copied: the buffer is
// reused once delivered.
func savedMessage(m *Message) (SnapshotMessage, bool) {
	if m.IsTimer() || m.req() != nil {
		return SnapshotMessage{}, false
	}
	sm := SnapshotMessage{Sender: m.Sender.ID(), Topic: m.Topic, Payload: m.Payload}
	if m.buffer() != nil {
		sm.Payload = append([]byte(nil), m.Payload...)
	}
	return sm, true
}

func callSave(sv StateSaver) (state []byte, schema uint32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: SaveState: %v", ErrPanicked, r)
		}
	}()
	state, schema, err = sv.SaveState()
	if err != nil {
		err = fmt.Errorf("SaveState: %w", err)
	}
	return state, schema, err
}

func callLoad(ld StateLoader, state []byte, schema uint32) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: LoadState: %v", ErrPanicked, r)
		}
	}()
	if err := ld.LoadState(state, schema); err != nil {
		return fmt.Errorf("LoadState: %w", err)
	}
	return nil
}

// ---- Restore ----

// RestoreOption configures Restore.
type RestoreOption interface{ applyRestore(*restoreConfig) }

type restoreConfig struct {
	types map[string]bool
	ids   map[AgentID]bool
}

type restoreOptionFunc func(*restoreConfig)

func (f restoreOptionFunc) applyRestore(c *restoreConfig) { f(c) }

// OnlyTypes restores only the agents of the named types. With OnlyIDs too,
// an agent is restored when either option selects it.
func OnlyTypes(types ...string) RestoreOption {
	return restoreOptionFunc(func(c *restoreConfig) {
		if c.types == nil {
			c.types = make(map[string]bool)
		}
		for _, t := range types {
			c.types[t] = true
		}
	})
}

// OnlyIDs restores only the named agents (see OnlyTypes).
func OnlyIDs(ids ...AgentID) RestoreOption {
	return restoreOptionFunc(func(c *restoreConfig) {
		if c.ids == nil {
			c.ids = make(map[AgentID]bool)
		}
		for _, id := range ids {
			c.ids[id] = true
		}
	})
}

func (c *restoreConfig) selects(id AgentID) bool {
	if c.types == nil && c.ids == nil {
		return true
	}
	return c.types[id.Type] || c.ids[id]
}

// ErrNoStateLoader is the reason an agent of a snapshot was not restored
// when the value its type's factory returns does not implement
// StateLoader.
var ErrNoStateLoader = errors.New("engine: agent type does not implement LoadState")

// RestoreInfo describes what Restore did.
type RestoreInfo struct {
	Restored []AgentID      // agents re-created, in the snapshot's order
	Skipped  []SkippedAgent // agents of the snapshot not re-created, and why
	Filtered int            // agents the options left out
	Messages int            // queued messages queued again
	Dropped  int            // queued messages beyond the type's mailbox capacity, not queued
}

// SkippedAgent is an agent of a snapshot that Restore did not re-create.
// Err wraps ErrUnknownType (no such type registered), ErrAgentExists (an
// agent of that ID is alive: it is left as it is), ErrNoStateLoader, or
// the LoadState error or panic (ErrPanicked).
type SkippedAgent struct {
	ID  AgentID
	Err error
}

// restoring is one agent being re-created.
type restoring struct {
	rec *SnapshotRecord
	a   *agent
}

// Restore reads a whole snapshot from r, verifies it (see DecodeSnapshot:
// a corrupt, truncated or newer input is refused with an error wrapping
// ErrCorruptSnapshot or ErrSnapshotVersion, and nothing is restored), and
// re-creates its agents, or those OnlyTypes and OnlyIDs select.
//
// Each agent is made by its type's factory, as Spawn would, and gets its
// state through LoadState before it is registered; its saved messages are
// put in its mailbox, ahead of anything sent to it later, with the sender
// of each resolved to the agent of that ID when one is alive or restored
// by this call (else the zero Ref), and at most its type's mailbox
// capacity of them. Then it is registered and started as by Spawn: Init
// runs on its loop (at Start when the engine is not started yet), after
// LoadState, and then its messages are delivered. An agent restored while
// paused in the snapshot starts Running.
//
// An agent whose type is unknown to this engine, whose ID is already
// alive (never overwritten), or whose LoadState fails is skipped and
// reported in RestoreInfo.Skipped; that is not an error. Restore fails
// with ErrStopped once Stop has begun. Concurrency-safe; it may run
// before Start.
func (e *Engine) Restore(ctx context.Context, r io.Reader, opts ...RestoreOption) (RestoreInfo, error) {
	var rc restoreConfig
	for _, o := range opts {
		if o != nil {
			o.applyRestore(&rc)
		}
	}
	d, err := ReadSnapshot(r)
	if err != nil {
		return RestoreInfo{}, err
	}
	return e.restoreDecoded(ctx, d, &rc)
}

func (e *Engine) restoreDecoded(ctx context.Context, d *DecodedSnapshot, rc *restoreConfig) (RestoreInfo, error) {
	var info RestoreInfo
	if e.stopping.Load() {
		return info, fmt.Errorf("%w: Restore", ErrStopped)
	}
	skip := func(id AgentID, err error) { info.Skipped = append(info.Skipped, SkippedAgent{ID: id, Err: err}) }
	// First every agent is made and loaded, unregistered, so that senders
	// among them resolve to their new records.
	var todo []restoring
	mine := make(map[AgentID]*agent)
	for i := range d.Records {
		if err := ctx.Err(); err != nil {
			return info, fmt.Errorf("engine: Restore: %w", err)
		}
		rec := &d.Records[i]
		id := rec.ID
		if !rc.selects(id) {
			info.Filtered++
			continue
		}
		t, err := e.lookupType(id.Type)
		if err != nil {
			skip(id, err)
			continue
		}
		if e.registry.get(id, id.hash()) != nil {
			skip(id, fmt.Errorf("%w: %s", ErrAgentExists, id))
			continue
		}
		impl := t.factory()
		if impl == nil {
			skip(id, fmt.Errorf("%w: factory of %q returned nil", ErrNilFactory, t.name))
			continue
		}
		ld, ok := impl.(StateLoader)
		if !ok {
			skip(id, fmt.Errorf("%w: %q", ErrNoStateLoader, t.name))
			continue
		}
		if err := callLoad(ld, rec.State, rec.Schema); err != nil {
			skip(id, fmt.Errorf("engine: restore %s: %w", id, err))
			continue
		}
		idx := int(id.hash() % uint64(len(e.loops)))
		a := &agent{typ: t, loop: e.loops[idx], tc: t.perLoop[idx], rs: newReservation(t)}
		a.setID(id)
		a.setImpl(impl)
		todo = append(todo, restoring{rec: rec, a: a})
		mine[id] = a
	}
	for _, x := range todo {
		a := x.a
		n := 0
		for _, q := range x.rec.Queued {
			if n >= a.typ.cfg.capacity {
				info.Dropped++
				continue
			}
			m := Message{Topic: q.Topic, Payload: append([]byte(nil), q.Payload...)}
			if q.Sender != (AgentID{}) {
				if s := mine[q.Sender]; s != nil {
					m.Sender = s.ref()
				} else if s, err := e.Lookup(q.Sender); err == nil {
					m.Sender = s
				}
			}
			*a.mb.push() = m
			a.qbytes += int64(len(m.Payload))
			n++
		}
		if n > 0 && a.typ.cfg.reserves() {
			a.rs.taken.Add(uint64(n))
		}
		id := x.rec.ID
		if e.stopping.Load() {
			return info, fmt.Errorf("%w: Restore", ErrStopped)
		}
		if _, created := e.registry.putIfAbsent(id, id.hash(), a); !created {
			// Spawned meanwhile: this record never lives. Messages that
			// named it as their sender are dead-lettered when answered.
			_, _ = a.lc.To(lifecycle.Terminated)
			skip(id, fmt.Errorf("%w: %s", ErrAgentExists, id))
			continue
		}
		e.transition(a, lifecycle.Initializing)
		l := a.loop
		if n > 0 {
			// The mailbox's counters belong to the loop: it counts the
			// messages in before Init lets them out.
			l.post(&envelope{op: opFunc, fn: func() {
				tc := a.tc
				tc.received += uint64(n)
				tc.queued += int64(n)
				l.touch(tc)
			}})
		}
		l.post(&envelope{a: a, gen: a.gen.Load(), op: opInit})
		info.Restored = append(info.Restored, id)
		info.Messages += n
	}
	return info, nil
}
