package enginetest

import (
	"sort"
	"sync"
	"time"
)

// Clock is a manual clock for engine.WithClock: time moves only when the
// test says so. Safe for concurrent use.
type Clock struct {
	mu      sync.Mutex // protects everything below
	now     time.Time
	seq     uint64
	pending []*alarm
}

type alarm struct {
	when    time.Time
	seq     uint64
	f       func()
	stopped bool
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc registers f to run when the clock reaches now+d. It runs on
// the goroutine that moves the clock, after the clock's lock is released.
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	a := &alarm{when: c.now.Add(d), seq: c.seq, f: f}
	c.pending = append(c.pending, a)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.stopped {
			return false
		}
		a.stopped = true
		for i, p := range c.pending {
			if p == a {
				c.pending = append(c.pending[:i], c.pending[i+1:]...)
				return true
			}
		}
		return false // it already fired
	}
}

// Next returns the earliest pending alarm time.
func (c *Clock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return time.Time{}, false
	}
	next := c.pending[0].when
	for _, a := range c.pending[1:] {
		if a.when.Before(next) {
			next = a.when
		}
	}
	return next, true
}

// Set moves the clock to t (never backwards) and runs, in due order, every
// alarm due by then. Alarms registered while they run are not run by this
// call even if due; Harness.Advance steps through those.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	var due, rest []*alarm
	for _, a := range c.pending {
		if !a.when.After(c.now) {
			a.stopped = true
			due = append(due, a)
		} else {
			rest = append(rest, a)
		}
	}
	c.pending = rest
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool {
		if !due[i].when.Equal(due[j].when) {
			return due[i].when.Before(due[j].when)
		}
		return due[i].seq < due[j].seq
	})
	for _, a := range due {
		a.f()
	}
}

// Advance moves the clock forward by d (see Set).
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }
