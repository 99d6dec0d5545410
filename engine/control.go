package engine

// This file: lifecycle calls from outside: Pause, Resume, Terminate, State.

import (
	"fmt"

	"github.com/agentloop/agentloop/lifecycle"
)

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
// states. Like Resume and Terminate, it acts on the incarnation the
// registry held when it looked id up: one that ended meanwhile is not
// Running, even when its record already serves another ID (Pooled).
func (e *Engine) Pause(id AgentID) error {
	r, err := e.liveRef(id)
	if err != nil {
		return err
	}
	a := r.a
	err = e.transitionAt(a, r.gen, lifecycle.Running, lifecycle.Paused)
	a.unpin() // the post names the incarnation: the loop ignores it once that has ended
	if err != nil {
		return fmt.Errorf("pause %s: %w", id, err)
	}
	a.loop.post(&envelope{a: a, gen: r.gen, op: opPaused})
	return nil
}

// Resume returns a paused agent to Running; its OnResume hook runs and its
// queued messages are delivered.
func (e *Engine) Resume(id AgentID) error {
	r, err := e.liveRef(id)
	if err != nil {
		return err
	}
	a := r.a
	err = e.transitionAt(a, r.gen, lifecycle.Paused, lifecycle.Running)
	a.unpin() // the post names the incarnation: the loop ignores it once that has ended
	if err != nil {
		return fmt.Errorf("resume %s: %w", id, err)
	}
	a.loop.post(&envelope{a: a, gen: r.gen, op: opResumed})
	return nil
}

// Terminate ends the agent: a running agent first handles what is already
// in its mailbox, then OnTerminate runs and it leaves the registry. A
// paused agent's queued messages are dead-lettered. Terminating an agent
// that is already terminating (or that ended after the lookup) is a
// no-op.
func (e *Engine) Terminate(id AgentID) error {
	r, err := e.liveRef(id)
	if err != nil {
		return err
	}
	a := r.a
	stop := a.pinned(r.gen) && a.stopReq.CompareAndSwap(false, true)
	// Unpinned before the post, which names the incarnation (the loop
	// ignores it once that has ended): the loop that handles it may
	// then recycle the record on the same turn.
	a.unpin()
	if stop {
		a.loop.post(&envelope{a: a, gen: r.gen, op: opTerminate})
	}
	return nil
}

// liveRef looks id up and pins the record (see pin): the caller unpins it
// when done.
func (e *Engine) liveRef(id AgentID) (Ref, error) {
	if err := id.Validate(); err != nil {
		return Ref{}, err
	}
	if e.state.Load() >= stateStopping {
		return Ref{}, fmt.Errorf("%w: %s", ErrStopped, id)
	}
	r, ok := e.registry.find(id.Type, id.Key, id.hash())
	if !ok {
		return Ref{}, fmt.Errorf("%w: %s", ErrUnknownAgent, id)
	}
	if h := controlLookupHook; h != nil {
		h()
	}
	r.a.pins.Add(1)
	return r, nil
}

// controlLookupHook, when set, runs between the registry lookup of Pause,
// Resume or Terminate by ID and the rest of the call (tests: to reuse the
// record in between).
var controlLookupHook func()

// transitionAt is transitionFrom for incarnation gen of a pinned record:
// an incarnation that has ended is in Terminated.
func (e *Engine) transitionAt(a *agent, gen uint32, from, to lifecycle.State) error {
	if !a.pinned(gen) {
		return &lifecycle.TransitionError{From: lifecycle.Terminated, To: to}
	}
	return e.transitionFrom(a, from, to)
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
