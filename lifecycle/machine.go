package lifecycle

import "sync/atomic"

// Machine is one agent's lifecycle state. The zero value is a machine in Idle,
// ready to use. A Machine must not be copied after first use.
//
// It tells nobody about its transitions: the caller that made a move knows
// it did (To and Transition say so), and tells whom it wants. The engine
// does so through its TransitionObserver plugins.
//
// Concurrency-safe: every method.
type Machine struct {
	state atomic.Uint32 // holds a State; written only by CAS
}

// State returns the current state. It is an atomic load, safe from any
// goroutine; the answer may be stale by the time the caller acts on it, so
// use To or Transition, not State followed by a move, to change state.
func (m *Machine) State() State { return State(m.state.Load()) }

// To moves the machine from whatever state it is in to the state to, if the
// table allows it, and returns the state it left. It retries its
// compare-and-swap while other goroutines move the machine, and re-checks the
// table against each state it reads, so the move it finally makes is legal.
//
// If cur → to is not legal for the current state cur, To changes nothing and
// returns cur and a *TransitionError{From: cur, To: to}. To(Idle) is always
// refused: only Reset leaves Terminated. Of many goroutines racing
// To(Terminated), exactly one succeeds; the others get
// *TransitionError{Terminated, Terminated}.
//
// It is safe from any goroutine and does not allocate on success.
func (m *Machine) To(to State) (from State, err error) {
	return m.move(to, direct)
}

// Transition moves the machine from exactly the state from to the state to.
// If from → to is not legal (or to is Idle, which only Reset reaches), it
// returns *TransitionError{from, to}. If the machine is not in from, it
// returns *TransitionError{current, to}, naming the state the machine was
// really in.
//
// It is safe from any goroutine and does not allocate on success.
func (m *Machine) Transition(from, to State) error {
	if lookup(from, to) != direct {
		return &TransitionError{From: from, To: to}
	}
	for {
		if m.state.CompareAndSwap(uint32(from), uint32(to)) {
			return nil
		}
		cur := m.State()
		if cur != from {
			return &TransitionError{From: cur, To: to}
		}
		// The machine left from and came back (e.g. Running → Paused →
		// Running) between the failed swap and the load. It is in from
		// now, so the caller's request still holds: try again.
	}
}

// Reset moves a Terminated machine back to Idle so that a pooled agent can be
// reused; it is the only way out of Terminated. From any other state it
// changes nothing and returns *TransitionError{current, Idle}. It is safe
// from any goroutine; of many racing Resets exactly one succeeds.
func (m *Machine) Reset() error {
	_, err := m.move(Idle, viaReset)
	return err
}

// move is the CAS loop behind To and Reset: it takes the transition cur → to
// only if the table marks it with kind.
func (m *Machine) move(to State, kind edge) (State, error) {
	for {
		cur := m.State()
		if lookup(cur, to) != kind {
			return cur, &TransitionError{From: cur, To: to}
		}
		if m.state.CompareAndSwap(uint32(cur), uint32(to)) {
			return cur, nil
		}
		// Another goroutine moved the machine; re-read and re-check.
	}
}
