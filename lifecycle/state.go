package lifecycle

import (
	"errors"
	"strconv"
)

// State is one of the six lifecycle states. The zero value is Idle.
type State uint32

// The six states, in the order an agent normally goes through them.
const (
	// Idle: constructed or recycled from a pool, not yet bound to an engine.
	Idle State = iota
	// Initializing: bound to its ID and loop; its Init hook runs.
	Initializing
	// Ready: initialised and accepting messages, not yet processing them.
	Ready
	// Running: the loop delivers its messages.
	Running
	// Paused: messages are kept in the mailbox but not delivered.
	Paused
	// Terminated: final for this incarnation; only Reset leaves it.
	Terminated

	numStates = int(Terminated) + 1
)

var stateNames = [numStates]string{
	Idle:         "Idle",
	Initializing: "Initializing",
	Ready:        "Ready",
	Running:      "Running",
	Paused:       "Paused",
	Terminated:   "Terminated",
}

// String returns the state's name, or "State(n)" for a value that is not one
// of the six states.
func (s State) String() string {
	if s.Valid() {
		return stateNames[s]
	}
	return "State(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Valid reports whether s is one of the six states.
func (s State) Valid() bool { return s <= Terminated }

// edge is the kind of a transition in the table.
type edge uint8

const (
	illegal  edge = iota // refused everywhere
	direct               // taken by Machine.To and Machine.Transition
	viaReset             // legal, but taken only by Machine.Reset
)

// table is the one table of legal transitions, indexed [from][to]. Every
// method of Machine consults it; nothing else encodes legality.
var table = [numStates][numStates]edge{
	Idle:         {Initializing: direct},
	Initializing: {Ready: direct, Terminated: direct},
	Ready:        {Running: direct, Terminated: direct},
	Running:      {Paused: direct, Terminated: direct},
	Paused:       {Running: direct, Terminated: direct},
	Terminated:   {Idle: viaReset},
}

// lookup returns the table entry for from → to; invalid states are illegal.
func lookup(from, to State) edge {
	if !from.Valid() || !to.Valid() {
		return illegal
	}
	return table[from][to]
}

// Legal reports whether from → to is a legal transition. It is true for
// Terminated → Idle, which only [Machine.Reset] performs; [Machine.To] and
// [Machine.Transition] refuse it.
func Legal(from, to State) bool { return lookup(from, to) != illegal }

// Sentinel errors of this package; compare with [errors.Is].
var (
	// ErrIllegalTransition occurs when a transition is not in the table, or
	// the machine is not in the state the transition starts from, or
	// Terminated → Idle is asked of anything but Reset. The concrete error
	// is a *TransitionError naming both states.
	ErrIllegalTransition = errors.New("lifecycle: illegal transition")
)

// TransitionError is the error returned for a refused transition. From is the
// state the machine was actually in when it refused (which may differ from
// the from argument of [Machine.Transition]); To is the requested state.
// It matches [ErrIllegalTransition] under [errors.Is].
type TransitionError struct {
	From, To State
}

// Error returns e.g. "lifecycle: illegal transition Running → Idle".
func (e *TransitionError) Error() string {
	return ErrIllegalTransition.Error() + " " + e.From.String() + " → " + e.To.String()
}

// Unwrap returns [ErrIllegalTransition].
func (e *TransitionError) Unwrap() error { return ErrIllegalTransition }
