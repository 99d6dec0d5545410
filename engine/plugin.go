package engine

import (
	"fmt"

	"github.com/agentloop/agentloop/lifecycle"
)

// Plugin observes the engine. A plugin implements any of MessageObserver,
// TransitionObserver, PanicObserver, DeadLetterObserver and
// TerminationObserver; Use finds them
// by interface. Callbacks run on the goroutine where the event happens
// (mostly a loop), so they must be quick and must not block; a panicking
// callback is recovered and counted, never fatal.
type Plugin any

type (
	// MessageObserver sees every message just before its handler runs.
	// While one is installed each delivery pays for the call: use it for
	// tracing and tests, not in production hot paths.
	MessageObserver interface{ OnMessage(to AgentID, m Message) }
	// TransitionObserver sees every lifecycle transition of every agent.
	TransitionObserver interface {
		OnTransition(id AgentID, from, to lifecycle.State)
	}
	// PanicObserver sees every panic recovered from an agent's handler or
	// hook, with its stack.
	PanicObserver interface {
		OnPanic(id AgentID, value any, stack []byte)
	}
	// DeadLetterObserver sees every message that could not be delivered.
	DeadLetterObserver interface{ OnDeadLetter(d DeadLetter) }
	// TerminationObserver sees every agent incarnation end, with why:
	// ErrTerminated when it was asked to (Terminate, Context.Terminate),
	// an error matching ErrInitFailed and wrapping Init's error (or its
	// *PanicError) when Init failed, a *PanicError when it panicked past
	// its restart budget, ErrStopped when the engine stopped it. It runs
	// on the agent's loop after the agent reached Terminated.
	TerminationObserver interface {
		OnTerminated(id AgentID, reason error)
	}
)

// DeadLetter is a message that was dropped or could not be delivered.
type DeadLetter struct {
	To      AgentID
	Message Message
	Reason  error // ErrMailboxFull, ErrTerminated, ErrStopped, or why the agent died
}

type pluginSet struct {
	onMessage    []MessageObserver
	onTransition []TransitionObserver
	onPanic      []PanicObserver
	onDeadLetter []DeadLetterObserver
	onTerminated []TerminationObserver
}

// Use installs plugins. It is safe at any time and from any goroutine; a
// plugin sees events from shortly after Use returns. A value that
// implements none of the observer interfaces (a misspelt method name, a
// wrong signature) is refused with an error wrapping ErrInvalidArgument
// that names its type, and then none of the plugins is installed.
func (e *Engine) Use(plugins ...Plugin) error {
	for _, p := range plugins {
		switch p.(type) {
		case MessageObserver, TransitionObserver, PanicObserver, DeadLetterObserver, TerminationObserver:
		default:
			return fmt.Errorf("%w: Use: %T implements none of MessageObserver, TransitionObserver, PanicObserver, DeadLetterObserver, TerminationObserver", ErrInvalidArgument, p)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.plugins.Load()
	next := &pluginSet{
		onMessage:    append([]MessageObserver(nil), cur.onMessage...),
		onTransition: append([]TransitionObserver(nil), cur.onTransition...),
		onPanic:      append([]PanicObserver(nil), cur.onPanic...),
		onDeadLetter: append([]DeadLetterObserver(nil), cur.onDeadLetter...),
		onTerminated: append([]TerminationObserver(nil), cur.onTerminated...),
	}
	for _, p := range plugins {
		if o, ok := p.(MessageObserver); ok {
			next.onMessage = append(next.onMessage, o)
		}
		if o, ok := p.(TransitionObserver); ok {
			next.onTransition = append(next.onTransition, o)
		}
		if o, ok := p.(PanicObserver); ok {
			next.onPanic = append(next.onPanic, o)
		}
		if o, ok := p.(DeadLetterObserver); ok {
			next.onDeadLetter = append(next.onDeadLetter, o)
		}
		if o, ok := p.(TerminationObserver); ok {
			next.onTerminated = append(next.onTerminated, o)
		}
	}
	// Empty lists stay nil so the hot path tests a single pointer.
	if len(next.onMessage) == 0 {
		next.onMessage = nil
	}
	if len(next.onTransition) == 0 {
		next.onTransition = nil
	}
	if len(next.onPanic) == 0 {
		next.onPanic = nil
	}
	if len(next.onDeadLetter) == 0 {
		next.onDeadLetter = nil
	}
	if len(next.onTerminated) == 0 {
		next.onTerminated = nil
	}
	e.plugins.Store(next)
	return nil
}

// observe calls a MessageObserver, recovering its panic so that it counts
// against the plugin, never against the agent.
func (e *Engine) observe(p MessageObserver, id AgentID, m *Message) {
	defer func() {
		if r := recover(); r != nil {
			e.panics.Add(1)
		}
	}()
	p.OnMessage(id, *m)
}

// notifyTerminated tells TerminationObservers that a's incarnation ended.
func (e *Engine) notifyTerminated(a *agent, reason error) {
	if ps := e.plugins.Load().onTerminated; ps != nil {
		id := a.ident()
		for _, p := range ps {
			e.safePlugin(func() { p.OnTerminated(id, reason) })
		}
	}
}

func (e *Engine) notifyTransition(a *agent, from, to lifecycle.State) {
	if ps := e.plugins.Load().onTransition; ps != nil {
		for _, p := range ps {
			e.safePlugin(func() { p.OnTransition(a.ident(), from, to) })
		}
	}
}

func (e *Engine) reportPanic(pe *PanicError) {
	e.panics.Add(1)
	if ps := e.plugins.Load().onPanic; ps != nil {
		for _, p := range ps {
			e.safePlugin(func() { p.OnPanic(pe.ID, pe.Value, pe.Stack) })
		}
	}
}

// safePlugin runs a plugin callback; a panicking plugin is counted and
// otherwise ignored so it can never take a loop down.
func (e *Engine) safePlugin(f func()) {
	defer func() {
		if r := recover(); r != nil {
			e.panics.Add(1)
		}
	}()
	f()
}
