package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/agentloop/agentloop/lifecycle"
	"github.com/agentloop/agentloop/scheduler"
)

// Agent is the one method every agent implements. Receive runs on the
// agent's loop, one message at a time, so the agent's fields need no locks.
// It must not block: blocking work belongs on a worker, whose result comes
// back as a message.
//
// The Context is valid only during the call. m.Payload is shared with the
// sender and possibly with other receivers: treat it as read-only, and copy
// it before modifying or handing it to another goroutine that outlives the
// call.
type Agent interface {
	Receive(c *Context, m Message)
}

// Optional hooks, found by interface on the value the factory returns. Each
// runs on the agent's loop. A panic in any of them is caught: see the
// supervision section of the package documentation.
type (
	// Initializer is called when the agent starts and again after each
	// restart. A non-nil error (or a panic), at the first start as after a
	// restart, terminates the agent, with a reason matching ErrInitFailed.
	Initializer interface{ Init(c *Context) error }
	// Pauser is called after the agent moved to Paused.
	Pauser interface{ OnPause(c *Context) }
	// Resumer is called after the agent moved back to Running.
	Resumer interface{ OnResume(c *Context) }
	// Terminator is called once, when the agent terminates, after its last
	// message.
	Terminator interface{ OnTerminate(c *Context) }
	// Resetter clears a pooled agent before it is reused (see Pooled).
	Resetter interface{ Reset() }
	// BatchReceiver is implemented by agents that take their messages in
	// batches, such as model-inference agents. The loop hands such an agent
	// up to its type's batch size (Batch, default DefaultBatch) of
	// queued messages in one call instead of calling Receive per message.
	//
	// The slice and its backing array belong to the loop and are reused for
	// the next batch of any agent on it: they are valid only during the
	// call. Keep a Message (a small value) or copy it out, never the slice.
	// Requests are not batched: a request reaches the agent alone, through
	// Receive, so that Context.Reply knows which request it answers.
	BatchReceiver interface {
		ReceiveBatch(c *Context, msgs []Message)
	}
)

// Message is what Receive gets. It is a small value type: passing it
// allocates nothing.
type Message struct {
	// Payload is the body, handed over without copying: read-only for
	// receivers, and never modified by the sender after sending.
	Payload []byte
	// Topic is the topic a published message was sent on; empty for direct
	// messages and timers.
	Topic string
	// Sender is the sending agent, or the zero Ref for messages from outside
	// the engine and for timers.
	Sender Ref

	// x is nil for a plain message, else the *request it carries, or with
	// its low bit set the *pool.Buffer that holds Payload (see buffer.go),
	// or timerTag for a timer's tick. One word for any of them keeps a
	// Message at 64 bytes; the low two bits tell them apart (the objects
	// are 8-aligned).
	x unsafe.Pointer
}

// IsRequest reports whether the message is a request awaiting a reply
// (Context.Reply or Context.ReplyLater).
func (m *Message) IsRequest() bool { return m.req() != nil }

// IsTimer reports whether the message is the tick of a timer (After,
// Every, Cron, from a handler or from outside). A timer tick, like a
// message sent from outside, has a zero Sender and no Topic; this tells
// them apart.
func (m *Message) IsTimer() bool { return m.x == timerTag }

// timerTag marks a timer's tick: a pointer into timerMark with bit 1 set,
// neither a request (bits 00) nor a buffer (bit 0 set).
var (
	timerMark uint64
	timerTag  = unsafe.Add(unsafe.Pointer(&timerMark), 2)
)

// req returns the request the message carries, or nil.
func (m *Message) req() *request {
	if uintptr(m.x)&3 != 0 {
		return nil
	}
	return (*request)(m.x)
}

// Ref is a resolved handle to one incarnation of an agent. Sending through
// a Ref does no registry lookup. A Ref to an agent that has terminated stays
// safe to use: its sends fail with ErrTerminated or are dead-lettered. The
// zero Ref refers to no agent. Refs are comparable and safe to share between
// goroutines.
type Ref struct {
	a   *agent
	gen uint32
}

// IsZero reports whether r refers to no agent.
func (r Ref) IsZero() bool { return r.a == nil }

// ID returns the agent's ID (the zero AgentID for the zero Ref).
func (r Ref) ID() AgentID {
	if r.a == nil {
		return AgentID{}
	}
	return r.a.idAt(r.gen)
}

// State returns the lifecycle state of the agent this Ref refers to. An
// agent recycled by a pool reports Terminated to its old Refs.
func (r Ref) State() lifecycle.State {
	if r.a == nil || r.a.gen.Load() != r.gen {
		return lifecycle.Terminated
	}
	return r.a.lc.State()
}

// Send delivers payload to the agent from outside the engine. It is safe
// from any goroutine. Inside a handler use Context.Send, which skips the
// inbox when both agents share a loop. With a full Block mailbox Send
// waits for room until the agent terminates or the engine stops;
// SendContext bounds the wait.
func (r Ref) Send(payload []byte) error {
	if r.a == nil {
		return ErrUnknownAgent
	}
	return r.a.loop.e.sendExternal(context.Background(), r, Message{Payload: payload})
}

// SendContext is Send with a context: while a full Block mailbox makes it
// wait for room, it gives up when ctx ends and returns an error matching
// both ErrMailboxFull and ctx.Err(); the message is then not sent. With
// the other policies it never waits. Safe from any goroutine.
func (r Ref) SendContext(ctx context.Context, payload []byte) error {
	if r.a == nil {
		return ErrUnknownAgent
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("engine: send to %s: %w", r.ID(), err)
	}
	return r.a.loop.e.sendExternal(ctx, r, Message{Payload: payload})
}

// agent is the engine's record of one agent. Fields marked "loop" are owned
// by the agent's loop goroutine and read or written only there.
//
// The record is exactly three cache lines (192 bytes, a size class whose
// objects start on a 64-byte boundary), laid out by who touches them: the
// first line holds what every sender reads and almost nobody writes, the
// last what the loop writes per message. Senders on other cores then read
// a line the loop does not keep dirtying; BenchmarkW2_RefSend measured the
// difference (line 0 shared with the mailbox fields cost a cache miss per
// send). TestAgentLayout keeps the size and offsets honest.
type agent struct {
	// Line 0: read by senders.
	lc      lifecycle.Machine // atomic; readable from anywhere
	gen     atomic.Uint32     // incarnation; bumped when a pooled agent is reused
	stopReq atomic.Bool       // set once by the first Terminate call
	hasSubs atomic.Bool       // the agent has bus subscriptions to drop at the end
	// rs counts the places of a Reject or Block mailbox (nil for the other
	// policies, which bound the mailbox on the loop): on lines of their own,
	// so that neither a sender's reservation nor the loop's give-back
	// dirties this line, which every sender reads.
	rs   *reservation
	typ  *agentType
	loop *loop
	impl Agent // loop
	// pins counts the Pause, Resume and Terminate calls by ID looking at
	// the record: while it is not zero the loop does not recycle it, so
	// the incarnation they looked up keeps the record (see pinned).
	pins atomic.Int32
	_    [4]byte // the rest of line 0

	// Line 1: read-mostly.
	//
	// The ID's key is stored as two atomics because a pooled record is
	// reused under a new ID while old Refs may still read it: idAt pairs
	// them with the incarnation (see there). The type never changes.
	keyp        atomic.Pointer[byte]
	keyn        atomic.Int32
	restarts    int32         // loop: restarts in the current window
	tc          *typeCounters // loop: this type's counters on this loop
	windowStart int64         // loop: unix nanos when the restart window opened
	se          *schedEntry   // loop: the runnable-queue entry, allocated on first schedule
	cause       error         // loop: why this incarnation ended, unless asked to (Init failed, panics, Stop)
	terminating bool          // loop: the loop has processed the terminate request
	drainOnStop bool          // loop: deliver the mailbox before terminating
	started     bool          // loop: Init ran; the agent is on the loop's list
	scheduled   bool          // loop: in the runnable queue
	batcher     bool          // loop: impl is a BatchReceiver
	_           [3]byte

	// Line 2: written by the loop per message.
	mb         mailbox   // loop: the mailbox, allocated on first message
	prev, next *agent    // loop: the loop's list of started agents
	qbytes     int64     // loop: payload bytes queued in mb
	life       *lifetime // loop: the incarnation's context, made on first use (Context.Context)
}

// schedEntry is an agent's handle in its loop's runnable queue.
type schedEntry = scheduler.Entry[*agent]

// setID stores the ID's key. Only the goroutine that owns the record (the
// spawner, before any Ref of the new incarnation exists) calls it, after
// bumping gen when the record is reused.
func (a *agent) setID(id AgentID) {
	a.keyp.Store(unsafe.StringData(id.Key))
	a.keyn.Store(int32(len(id.Key)))
}

// idAt returns the ID of incarnation gen. A reused record is given its new
// incarnation before its new key is stored, so a key read that may mix two
// incarnations is always followed by a gen that differs: then the key of
// gen is gone and only the type is reported. Reads are atomics, so a stale
// Ref racing with a reuse is safe.
func (a *agent) idAt(gen uint32) AgentID {
	p, n := a.keyp.Load(), a.keyn.Load()
	if a.gen.Load() != gen {
		return AgentID{Type: a.typ.name}
	}
	return AgentID{Type: a.typ.name, Key: unsafe.String(p, int(n))}
}

// setImpl installs the agent value (on creation, restart or reuse).
func (a *agent) setImpl(x Agent) {
	a.impl = x
	_, a.batcher = x.(BatchReceiver)
}

// ident returns the ID of the current incarnation.
func (a *agent) ident() AgentID { return a.idAt(a.gen.Load()) }

func (a *agent) ref() Ref { return Ref{a: a, gen: a.gen.Load()} }

// endReason is the dead-letter reason of a message that reached
// incarnation gen after it ended: why it ended when the loop knows (its
// Init failed, it panicked past its budget, the engine stopped), else
// ErrTerminated. Loop only.
func (a *agent) endReason(gen uint32) error {
	if a.gen.Load() == gen && a.cause != nil {
		return a.cause
	}
	return ErrTerminated
}

// current reports whether gen is a's incarnation and it has not reached
// Terminated (it may be draining): the test for delivering outcomes (a
// request's reply, Context.Go's result) to it. Any goroutine. The state
// is read before the incarnation: a reuse moves the incarnation on before
// it leaves Terminated, so a state that is not Terminated is gen's when
// the incarnation read after it is still gen.
func (a *agent) current(gen uint32) bool {
	return a.lc.State() != lifecycle.Terminated && a.gen.Load() == gen
}

// pinned reports whether incarnation gen of a record the caller pinned
// (pins) is current. If so it keeps the record until unpin, even if it
// terminates meanwhile: the loop recycles no pinned record, and only a
// recycled record gets a new incarnation.
func (a *agent) pinned(gen uint32) bool { return a.current(gen) }

// unpin ends a pin taken by Engine.liveRef.
func (a *agent) unpin() { a.pins.Add(-1) }

// live reports whether incarnation gen of a still takes messages on its
// loop: current and not terminating. Loop only (terminating is
// loop-owned).
func (a *agent) live(gen uint32) bool {
	return a.current(gen) && !a.terminating
}
