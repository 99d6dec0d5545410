// Package lifecycle is the six-state finite-state machine every agent of the
// engine goes through. It is usable on its own: a [Machine] is one atomic
// 32-bit word (4 bytes), so a process can hold millions of them.
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
// safe from any goroutine, take no lock and allocate nothing on success. A
// Machine calls no code of yours: whoever wins a move learns it from the
// result of To, Transition or Reset and can tell others. The engine reports
// every transition of its agents to its TransitionObserver plugins, on the
// goroutine that made it.
//
// # Relation to protoactor
//
// protoactor-go's actor context keeps an atomic int32 state (alive,
// restarting, stopping, stopped) and tells the actor about it with the
// Started, Stopping, Stopped and Restarting system messages; its handleStop
// returns at once when the state is already stopping or beyond. This package
// keeps the same idea (atomic state, idempotent final move) but makes the
// whole life an explicit table: Initializing exists because an agent can be
// spawned, and sent messages, before its Init has run (package engine
// keeps an agent spawned before Start in Initializing until Start runs its
// Init, then moves it through Ready to Running at once), Ready serves
// owners that initialise an entity before they let it process, Paused
// replaces protoactor's mailbox Suspend/Resume system messages with a
// state anyone can read, and Stopping/Stopped collapse into Terminated
// because draining the mailbox is the engine's job, not a state.
// protoactor's Restarting has no state here: there is no edge back to
// Initializing, so a supervision restart is the engine's business.
// protoactor also has no pool path; Terminated → Idle through Reset lets a
// pooled agent be reused.
package lifecycle
