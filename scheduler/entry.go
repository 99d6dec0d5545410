package scheduler

import "fmt"

// Priorities accepted by [Entry.SetPriority].
const (
	MinPriority     = 0
	MaxPriority     = 100
	DefaultPriority = 50 // the priority of a zero Entry
)

// Entry is the intrusive handle of one schedulable entity. Embed it in the
// entity, or keep one per entity (the engine allocates one for an agent
// the first time the agent becomes runnable, and keeps it for the agent's
// life and its pooled reuses, with Value pointing back at the agent), so
// that queueing allocates nothing: the queue links entries through their
// own fields.
//
// The zero Entry is ready to use, with [DefaultPriority]. An Entry is
// accounted in the first [Queue] it is pushed to or accounted in, and stays
// bound to it until [Queue.Forget]; using it with another queue before then
// panics. An Entry must not be copied while queued. Like the Queue, it is
// not safe for concurrent use: call its methods on the queue's goroutine.
type Entry[T any] struct {
	// Value is the caller's data, typically a pointer to the entity that
	// holds the entry. The queue never reads it.
	Value T

	// Both lists are circular and doubly linked; nil while not queued.
	next, prev   *Entry[T] // the bucket's FIFO
	anext, aprev *Entry[T] // the age list: all queued entries in push order

	owner    *Queue[T] // the queue this entry is accounted in; nil until first use
	enq      uint64    // owner.picks when pushed: its wait is owner.picks − enq
	wEpoch   uint64    // owner.epoch+1 when weight was computed; 0: stale
	bucket   uint8
	prio     int8 // priority − DefaultPriority, so that the zero value means 50
	queued   bool
	cpuLevel uint8 // quantised CPU share, in steps of 1/ShareLevels
	memLevel uint8 // quantised memory share

	epoch  uint64  // the epoch in which cur was reported
	cur    int64   // handler nanoseconds reported in epoch
	ewma   float64 // smoothed handler nanoseconds per epoch, to the end of epoch−1
	bytes  int64   // queued bytes, as last reported
	weight float64 // weight of the current (or last) placement
}

// SetPriority sets the entry's configured priority, MinPriority (lowest) to
// MaxPriority. It takes effect at the entry's next [Queue.Push]; an entry
// already queued keeps its place. Out of range, it returns an error wrapping
// [ErrPriority] and leaves the priority unchanged.
func (e *Entry[T]) SetPriority(p int) error {
	if p < MinPriority || p > MaxPriority {
		return fmt.Errorf("%w: %d (want %d..%d)", ErrPriority, p, MinPriority, MaxPriority)
	}
	e.prio = int8(p - DefaultPriority)
	e.wEpoch = 0
	return nil
}

// Priority returns the configured priority, 0..100.
func (e *Entry[T]) Priority() int { return int(e.prio) + DefaultPriority }

// Weight returns the weight with which the entry was last placed in a queue:
// between 0 and [Coefficients.Sum]. It is 0 before the first Push.
func (e *Entry[T]) Weight() float64 { return e.weight }
