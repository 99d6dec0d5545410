// Package lifecycle is the six-state finite-state machine every agent of the
// engine goes through. It is usable on its own: a [Machine] is one atomic word
// plus an optional pointer to its [Observers], so a process can hold millions
// of them.
//
// # States and transitions
//
//	      bind                Init ok        Start        Pause/Resume
//	Idle ──────▶ Initializing ──────▶ Ready ──────▶ Running ◀──────▶ Paused
//	 ▲                │                 │              │               │
//	 │                │ Init failed     │              │               │
//	 │                ▼                 │              │               │
//	 └── Reset ─── Terminated ◀─────────┴──────────────┴───────────────┘
//
// The legal transitions, and no others, are:
//
//	Idle         → Initializing
//	Initializing → Ready | Terminated
//	Ready        → Running | Terminated
//	Running      → Paused | Terminated
//	Paused       → Running | Terminated
//	Terminated   → Idle            (only through [Machine.Reset])
//
// A self-transition (X → X) is illegal. [Legal] is the one table; [Machine.To]
// and [Machine.Transition] apply it with a compare-and-swap, and refuse
// anything else with a [*TransitionError] that names both states and matches
// [ErrIllegalTransition] under [errors.Is]. Because every move is a CAS,
// Terminated is reached exactly once per incarnation however many goroutines
// race to terminate an agent: the losers get TransitionError{Terminated,
// Terminated}. Terminated → Idle is the pool path: only [Machine.Reset] takes
// it, so a stray To(Idle) cannot resurrect a live agent.
//
// # Concurrency
//
// [Machine.State], [Machine.To], [Machine.Transition] and [Machine.Reset] are
// safe from any goroutine. [Machine.SetObservers] is not: call it before the
// machine is shared. Observers are called after the CAS, on the goroutine that
// made the transition, with no lock held, so an observer may itself call To or
// remove itself. [Observers] is a copy-on-write list: adding or removing takes a
// mutex shared only by writers, notifying takes no lock and allocates nothing.
// An observer that panics is recovered; the others still run and the machine
// keeps its new state (see [Observers.OnPanic]).
//
// # Relation to protoactor
//
// protoactor-go's actor context keeps an atomic int32 state (alive,
// restarting, stopping, stopped) and tells the actor about it with the
// Started, Stopping, Stopped and Restarting system messages; its handleStop
// returns at once when the state is already stopping or beyond. This package
// keeps the same idea (atomic state, idempotent final move) but makes the
// whole life an explicit table: Initializing and Ready exist because agents
// can be spawned before the engine starts, Paused replaces protoactor's
// mailbox Suspend/Resume system messages with a state anyone can read, and
// Stopping/Stopped collapse into Terminated because draining the mailbox is
// the engine's job, not a state. protoactor's Restarting has no state here:
// there is no edge back to Initializing, so a supervision restart is the
// engine's business. protoactor also has no pool path; Terminated → Idle
// through Reset lets a pooled agent be reused.
package lifecycle
