package lifecycle

import (
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Observer is called after a machine has moved from → to. It runs on the
// goroutine that made the transition, after the state was swapped and with
// no lock held, so it may read m.State(), call m.To, or remove itself. It
// should be quick: it runs on the caller's hot path (for the engine, on a
// loop). Notifications of transitions made concurrently on one machine by
// different goroutines may arrive in any order.
type Observer func(m *Machine, from, to State)

// Observers is a list of observers that many machines can share. The zero
// value is an empty list, ready to use. It must not be copied after first
// use.
//
// It is copy-on-write: Add and remove build a new immutable slice under a
// mutex that only writers take, and Notify reads the current slice with one
// atomic load, so notifying takes no lock and allocates nothing. All methods
// are safe from any goroutine; the OnPanic field must be set before the
// Observers is shared.
type Observers struct {
	// OnPanic, if non-nil, is called when an observer panics, with the
	// transition being notified, the recovered value and the stack of the
	// panicking goroutine. Whether or not it is set, the panic is
	// recovered and counted (see Panics), the remaining observers still
	// run and the machine keeps its new state. A panic inside OnPanic is
	// swallowed. Set it before the Observers is shared.
	OnPanic func(m *Machine, from, to State, value any, stack []byte)

	mu     sync.Mutex               // serialises Add and remove; Notify never takes it
	list   atomic.Pointer[[]*entry] // current immutable snapshot; nil when empty
	panics atomic.Uint64            // observer panics recovered so far
}

// entry boxes an observer so that remove can find it by pointer identity
// (funcs are not comparable).
type entry struct{ fn Observer }

// Add appends fn to the list; observers are notified in the order they were
// added. It returns a function that removes fn again; calling it more than
// once is harmless. Adding the same func twice registers it twice, each with
// its own remove. A nil fn is ignored. Safe from any goroutine; a Notify
// already in progress does not see the change.
func (o *Observers) Add(fn Observer) (remove func()) {
	if fn == nil {
		return func() {}
	}
	e := &entry{fn: fn}
	o.mu.Lock()
	var old []*entry
	if p := o.list.Load(); p != nil {
		old = *p
	}
	next := make([]*entry, len(old), len(old)+1)
	copy(next, old)
	next = append(next, e)
	o.list.Store(&next)
	o.mu.Unlock()
	return func() { o.remove(e) }
}

// remove drops e from the list if it is still there.
func (o *Observers) remove(e *entry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.list.Load()
	if p == nil {
		return
	}
	old := *p
	for i, x := range old {
		if x != e {
			continue
		}
		if len(old) == 1 {
			o.list.Store(nil)
			return
		}
		// Never modify old in place: a concurrent Notify may be reading it.
		next := make([]*entry, 0, len(old)-1)
		next = append(next, old[:i]...)
		next = append(next, old[i+1:]...)
		o.list.Store(&next)
		return
	}
}

// Len returns how many observers are registered.
func (o *Observers) Len() int {
	if p := o.list.Load(); p != nil {
		return len(*p)
	}
	return 0
}

// Panics returns how many observer panics Notify has recovered.
func (o *Observers) Panics() uint64 { return o.panics.Load() }

// Notify calls every observer with (m, from, to), in the order they were
// added, on the calling goroutine. It takes no lock and allocates nothing
// unless an observer panics. A panicking observer is recovered, counted and
// reported to OnPanic; the observers after it still run. A nil *Observers
// notifies nobody. Machines call Notify themselves after each transition;
// call it directly only to replay or simulate a transition.
func (o *Observers) Notify(m *Machine, from, to State) {
	if o == nil {
		return
	}
	p := o.list.Load()
	if p == nil {
		return
	}
	for _, e := range *p {
		o.call(e.fn, m, from, to)
	}
}

// call runs one observer, recovering its panic so that the others still run.
func (o *Observers) call(fn Observer, m *Machine, from, to State) {
	defer func() {
		if v := recover(); v != nil {
			o.recovered(m, from, to, v)
		}
	}()
	fn(m, from, to)
}

// recovered counts an observer panic and reports it to OnPanic.
func (o *Observers) recovered(m *Machine, from, to State, v any) {
	o.panics.Add(1)
	h := o.OnPanic
	if h == nil {
		return
	}
	// We are still inside the deferred call, so the stack shows where the
	// observer panicked.
	stack := debug.Stack()
	defer func() { _ = recover() }() // a panicking OnPanic must not escape
	h(m, from, to, v, stack)
}
