// Package engine runs many small agents (actors) on a few event loops inside
// one process.
//
// An Engine owns N loops (default GOMAXPROCS), each run by one goroutine.
// Every agent lives on exactly one loop, chosen by a hash of its AgentID or
// with OnLoop, and all its handlers and hooks run on that loop's goroutine,
// one at a time, so agent state needs no locks. Compared with a goroutine
// and a channel per actor, an idle agent costs a couple of hundred bytes
// instead of a stack, and a message between two agents of one loop costs no
// lock, no allocation (once the mailbox has grown), no scheduler hand-off
// and, for DropNewest and DropOldest mailboxes, no atomic write.
//
// # Quick start
//
//	e, _ := engine.New(engine.WithLoops(2))
//	e.Register("device", func() engine.Agent { return &Device{} },
//		engine.Mailbox(1024, engine.DropOldest))
//	e.Start()
//	ref, _ := e.Spawn(engine.AgentID{Type: "device", Key: "dev-42"})
//	ref.Send(payload)                              // no lookup on the hot path
//	e.SendID(engine.AgentID{Type: "device", Key: "dev-7"}, payload) // spawns dev-7 on first use
//	e.Stop(ctx)
//
// # The loop
//
// Each loop owns an inbox (a bounded lock-free multi-producer queue for
// work from other goroutines and loops, drained in batches), a ready deque
// of immediate tasks, a runnable queue of agents with queued messages, a
// min-heap of precise timers and a 60-slot timing wheel for far ones. One
// turn drains the inbox, fires due timers, runs ready tasks, then serves
// runnable agents in the order of the runnable queue, which is weighted
// (package scheduler; WithScheduler, WithWeights): the agent's priority
// and its headroom in loop time and queued bytes, so that a hog sinks,
// with aging so that no agent starves. Each agent served gets up to a
// quantum of messages (WithQuantum), or one batch, and then goes back to
// the queue; the turn ends when its message budget is spent or no agent
// is runnable. With nothing to do the loop parks on a channel; producers
// wake it only when it is parked, so a busy loop costs no channel
// operation per message and an idle engine uses no CPU.
//
// # Goroutines
//
// New starts no goroutine. Start starts, for each loop, the loop's
// goroutine and, on the system clock, the two goroutines of its timing
// wheel (github.com/RussellLuo/timingwheel: a delay-queue poller and a
// bucket flusher); the wheel also calls each expiry on a short-lived
// goroutine of its own, which only posts to the loop. Under WithClock
// there is no wheel: the clock's AfterFunc stands in for it. The first
// Context.Go creates the worker pool (WithWorkers): two background
// goroutines of ants/v2 and up to size+queue workers, each of which exits
// after ten seconds idle. While there are dead letters or suppressed log
// records to report, the log's summary tick is armed on the clock (see
// Logging): on the system clock a time.AfterFunc, whose callback runs on
// a short-lived goroutine once per interval. Stop stops the wheels, the
// pool and the tick and waits for the loops. Agent code runs on the loops only, except the work function
// of Context.Go (on a worker), plugin callbacks (on the goroutine where the
// event happens) and a KeyFunc (on the publishing goroutine).
//
// A loop is not tied to its goroutine while it is parked: a loop whose
// handler posts to an agent on a parked loop, as the last thing it has to
// do, runs that loop's next turns on its own goroutine instead of waking
// the other (a handoff, see WithHandoff), so that a ping-pong or a request
// answered across loops parks no goroutine. A loop still runs one handler
// at a time, in the same order; LoopStats.Borrowed counts the handoffs.
//
// # Messages
//
// A payload is a []byte handed over, not copied: receivers treat it as
// read-only and senders never modify it after sending. Sends between agents
// of one loop go straight into the target's mailbox; other sends go through
// the target loop's inbox. Messages from one sender to one agent arrive in
// the order they were sent.
//
// A mailbox is a ring buffer allocated on first use and bounded
// (Mailbox). When it is full the type's Overflow policy applies:
// DropNewest, DropOldest, Reject (an error to the sender) or Block (outside
// senders wait; senders inside the engine get ErrMailboxFull, since a loop
// never blocks). Every dropped or undeliverable message is a dead letter,
// seen by DeadLetterObserver plugins and counted in Stats, so that the
// number of accepted sends always equals delivered plus dead-lettered.
//
// # Lifecycle
//
// An agent moves through the six states of package lifecycle: Idle,
// Initializing (its Init hook runs on its loop), Ready, Running, Paused and
// Terminated. Pause, Resume and Terminate may be called from any goroutine;
// an illegal move returns an error naming both states.
//
// # Supervision
//
// A panic in a handler or hook never kills a loop or the process. A panic
// in Receive, ReceiveBatch or the callback of Context.Request or
// Context.Go restarts the agent: a fresh value from its factory (for a
// Pooled type with a Reset method, the same value after Reset), Init
// again, the mailbox kept. More restarts than its budget within the window
// (Restarts) terminate it instead. Init failing, by an error or a panic,
// at the first start or after a restart, terminates the agent with a
// reason matching ErrInitFailed. A panic in OnPause, OnResume or
// OnTerminate is reported and ignored; a terminating agent is never brought
// back. PanicObserver plugins see every recovered value with its stack.
//
// # Logging
//
// The engine writes what goes wrong to a log/slog Logger (WithLogger;
// slog.Default() without it), never on the message path:
//
//   - "engine: agent panicked" (Error): a panic recovered from a handler,
//     hook or callback, with the agent, type, loop, hook, panic (the
//     value) and stack;
//   - "engine: agent init failed" (Error): Init returned an error or
//     panicked, with its cause;
//   - "engine: agent restart budget exhausted" (Error): with the restarts,
//     the window and the cause, the panic that ended the agent;
//   - "engine: records suppressed" (Warn): of the three kinds above, at
//     most a burst per agent type and interval is written (WithLogLimit,
//     default 10 per 10s on the engine's clock); this record counts the
//     rest once the interval is over;
//   - "engine: dead letters" (Warn): once per interval in which dead
//     letters were counted, their total and their counts by reason (the
//     names of DeadLetterReason: mailbox_full, terminated, stopped,
//     init_failed, panicked, other; the counters DeadLetterStats reads),
//     never one record per message; Stop writes the last one;
//   - "engine: stop deadline exceeded" (Warn): a Stop that hit its
//     deadline, with the agents left, the messages dropped and the cause.
//
// Records about an agent carry the attributes agent (its ID), type and
// loop. A handler that panics loses its record and is counted in
// Stats().Panics. To silence the engine, pass
// WithLogger(slog.New(slog.DiscardHandler)).
//
// # Contexts and cancellation
//
// Calls that can wait take a context.Context: Engine.SendContext,
// Engine.SendIDContext and Ref.SendContext bound the wait of a send to a
// full Block mailbox (Send waits without a deadline), Request bounds the
// wait for a reply, Stop bounds the drain. Inside the engine nothing
// waits; instead Context.Context gives each agent incarnation a context
// to hand to the I/O it starts, cancelled when the agent terminates or
// Stop begins, kept across restarts, and Context.Go passes it to its work.
//
// # Naming
//
// Each verb takes a Ref, and its ID form an AgentID, alike on Engine, Ref
// and Context: Send and SendID, Request and RequestID, SendContext and
// SendIDContext. An option's name says where it applies: With… options
// configure the engine (New); Priority, Mailbox, Restarts, Batch and
// Pooled configure a type (Register); OnLoop places a spawn; Immediate
// shapes a Stop; KeyToken and KeyFunc a type subscription. ErrInvalidOption
// is the error of a bad option, ErrInvalidArgument of any other bad
// argument.
//
// # Concurrency
//
// Every method of Engine and Ref is safe from any goroutine. A Context is
// valid only inside the handler it was passed to. Timer.Stop is safe from
// any goroutine.
package engine
