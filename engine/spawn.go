package engine

// This file: spawning agents and finding them by ID.

import (
	"fmt"

	"github.com/agentloop/agentloop/lifecycle"
)

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
	h := id.hash()
	if r, ok := e.registry.find(id.Type, id.Key, h); ok {
		return r, fmt.Errorf("%w: %s", ErrAgentExists, id)
	}
	r, created, err := e.getOrSpawn(id, h, t, loopIdx)
	if err != nil {
		return Ref{}, err
	}
	if !created {
		return r, fmt.Errorf("%w: %s", ErrAgentExists, id)
	}
	return r, nil
}

// getOrSpawn creates the agent id, whose hash is h (a pooled record when
// the loop's pool has one), and registers it unless another spawn took the
// ID meanwhile: it returns the Ref of the incarnation that holds the ID, as
// the registry records it, and whether this call created it. Callers have
// looked the ID up already (with the same h), so it does not look again;
// putIfAbsent settles races (the loser's record is dropped).
func (e *Engine) getOrSpawn(id AgentID, h uint64, t *agentType, loopIdx int) (Ref, bool, error) {
	if e.stopping.Load() {
		return Ref{}, false, fmt.Errorf("%w: spawn %s", ErrStopped, id)
	}
	if loopIdx < 0 {
		loopIdx = int(h % uint64(len(e.loops)))
	}
	l := e.loops[loopIdx]
	var a *agent
	if t.pools != nil {
		a = t.pools[loopIdx].get()
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
		a.typ, a.loop, a.tc, a.rs = t, l, t.perLoop[loopIdx], newReservation(t)
		a.setID(id)
		impl := t.factory()
		if impl == nil {
			return Ref{}, false, fmt.Errorf("%w: factory of %q returned nil", ErrNilFactory, t.name)
		}
		a.setImpl(impl)
	}
	r, created := e.registry.putIfAbsent(id, h, a)
	if !created {
		return r, false, nil
	}
	e.transition(a, lifecycle.Initializing)
	l.post(&envelope{a: a, gen: r.gen, op: opInit})
	return r, true, nil
}

// Lookup returns the Ref of a live agent.
func (e *Engine) Lookup(id AgentID) (Ref, error) {
	if err := id.Validate(); err != nil {
		return Ref{}, err
	}
	r, ok := e.registry.find(id.Type, id.Key, id.hash())
	if !ok {
		return Ref{}, fmt.Errorf("%w: %s", ErrUnknownAgent, id)
	}
	return r, nil // the incarnation the registry held, as resolve's
}

// resolve finds or lazily spawns id. The registry's lookup takes no lock;
// the Ref is the incarnation the registry held, not whatever the record
// holds by the time it is read.
func (e *Engine) resolve(id AgentID) (Ref, error) {
	h := id.hash()
	if r, ok := e.registry.find(id.Type, id.Key, h); ok {
		return r, nil
	}
	if err := id.Validate(); err != nil {
		return Ref{}, err
	}
	t, err := e.lookupType(id.Type)
	if err != nil {
		return Ref{}, err
	}
	r, _, err := e.getOrSpawn(id, h, t, -1)
	return r, err
}

// spawnFor spawns the valid id of type t, which the registry did not hold
// a moment ago, or returns the agent that a racing spawn registered.
func (e *Engine) spawnFor(id AgentID, t *agentType) (Ref, error) {
	r, _, err := e.getOrSpawn(id, id.hash(), t, -1)
	return r, err
}
