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
