package engine

import (
	"errors"
	"fmt"
)

// Errors returned by the engine. Compare with errors.Is: most are returned
// wrapped with the offending value.
var (
	// ErrInvalidID occurs when an AgentID's type or key is empty, longer
	// than MaxIDLen, not printable UTF-8, or (the type) contains '/': see
	// AgentID.
	ErrInvalidID = errors.New("engine: invalid agent id")
	// ErrNilFactory occurs when Register is given a nil factory.
	ErrNilFactory = errors.New("engine: nil agent factory")
	// ErrDuplicateType occurs when a type name is registered twice.
	ErrDuplicateType = errors.New("engine: agent type already registered")
	// ErrUnknownType occurs when an ID names a type that was never registered.
	ErrUnknownType = errors.New("engine: unknown agent type")
	// ErrUnknownAgent occurs when an operation names an agent that does not
	// exist (never spawned, or terminated and gone from the registry).
	ErrUnknownAgent = errors.New("engine: unknown agent")
	// ErrAgentExists occurs when Spawn names an agent that is already alive.
	ErrAgentExists = errors.New("engine: agent already exists")
	// ErrTerminated occurs when a message is sent to an agent that has
	// terminated or is terminating; it is also the dead-letter reason for
	// messages left in a terminated agent's mailbox.
	ErrTerminated = errors.New("engine: agent terminated")
	// ErrMailboxFull occurs when a mailbox with the Reject policy is full, or
	// with Block for a sender inside the engine (loops never block). It is the
	// dead-letter reason of messages dropped by DropNewest and DropOldest.
	ErrMailboxFull = errors.New("engine: mailbox full")
	// ErrInvalidDuration occurs when a timer is given a zero or negative duration.
	ErrInvalidDuration = errors.New("engine: invalid duration")
	// ErrInvalidOption occurs when an option (of New, Register, Spawn,
	// SubscribeType) is given an out-of-range value.
	ErrInvalidOption = errors.New("engine: invalid option")
	// ErrInvalidArgument occurs when a call is given an argument it cannot
	// use that is not an option: a nil function, callback or buffer.
	ErrInvalidArgument = errors.New("engine: invalid argument")
	// ErrStopped occurs when the engine is asked to do new work after Stop.
	ErrStopped = errors.New("engine: stopped")
	// ErrInitFailed is the reason an agent terminated because its Init hook
	// returned an error or panicked, at its first start or after a restart.
	ErrInitFailed = errors.New("engine: agent init failed")
	// ErrDuplicateSubscription occurs when SubscribeType is asked twice for
	// the same pattern and type.
	ErrDuplicateSubscription = errors.New("engine: duplicate subscription")
	// ErrTimeout occurs when a request's timeout or deadline passes before
	// its reply.
	ErrTimeout = errors.New("engine: request timed out")
	// ErrNoReply occurs when the target handled a request without replying
	// or taking a ReplyHandle.
	ErrNoReply = errors.New("engine: request handled without a reply")
	// ErrNoRequest occurs when Reply or ReplyLater is called while the
	// current message is not a request.
	ErrNoRequest = errors.New("engine: no request to reply to")
	// ErrAlreadyReplied occurs on a second answer to one request (or an
	// answer after it timed out or was cancelled).
	ErrAlreadyReplied = errors.New("engine: request already answered")
	// ErrInvalidSchedule occurs when a cron spec does not parse.
	ErrInvalidSchedule = errors.New("engine: invalid cron schedule")
	// ErrStopInLoop occurs when Stop is called on one of the engine's own
	// loops (from a handler or hook), where it could never wait for the
	// loop to drain.
	ErrStopInLoop = errors.New("engine: Stop called from an agent's loop")
	// ErrPanicked is the reason an agent terminated after exceeding its
	// restart budget.
	ErrPanicked = errors.New("engine: agent panicked")
)

// StopError is returned by Stop when its context ends before the engine has
// drained: it carries ctx.Err() and what was still queued then.
type StopError struct {
	Err    error // ctx.Err()
	Queued int   // messages dead-lettered instead of delivered
	Agents int   // agents still alive when the deadline hit
}

func (e *StopError) Error() string {
	return fmt.Sprintf("engine: stop: %v (dead-lettered %d queued messages, %d agents were alive)", e.Err, e.Queued, e.Agents)
}

// Unwrap returns ctx.Err(), so errors.Is(err, context.DeadlineExceeded) holds.
func (e *StopError) Unwrap() error { return e.Err }

// PanicError carries a value recovered from an agent's handler or hook.
type PanicError struct {
	ID    AgentID
	Hook  string // "Receive", "Init", "OnPause", ...
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("engine: agent %s panicked in %s: %v", e.ID, e.Hook, e.Value)
}

// Unwrap makes errors.Is(err, ErrPanicked) hold.
func (e *PanicError) Unwrap() error { return ErrPanicked }
