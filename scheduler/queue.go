package scheduler

import (
	"fmt"
	"math"
	"math/bits"
)

// Queue is the runnable queue of one event loop: entries ordered by weight
// in buckets, FIFO within a bucket, with aging so that none starves.
//
// A Queue has one owner and is not safe for concurrent use; the loop that
// owns it drives it without locks. Push, Pop, Remove, Forget and Account
// are O(1) and allocate nothing.
//
// The zero Queue is ready to use with [DefaultConfig]. A Queue must not be
// copied after first use.
type Queue[T any] struct {
	// heads[b] is the oldest entry of bucket b (its list is circular, so
	// heads[b].prev is the newest), or nil. Bit b of nonEmpty is set exactly
	// when heads[b] != nil, so the heaviest non-empty bucket is
	// bits.Len64(nonEmpty)−1.
	heads    [MaxBuckets]*Entry[T]
	nonEmpty uint64

	oldest   *Entry[T] // head of the circular age list: every queued entry, in push order
	n        int       // queued entries
	picks    uint64    // entries popped so far: the queue's clock
	lastAged bool      // the previous pick was an aged pick

	epoch      uint64  // index of the open epoch
	untilEpoch int     // picks left before the open epoch closes
	cur        int64   // handler nanoseconds reported in the open epoch
	ewma       float64 // smoothed handler nanoseconds per epoch, to the last closed epoch
	bytes      int64   // sum of the queued bytes last reported by each bound entry

	stats Stats

	cfg     Config
	scale   float64 // Buckets / Coefficients.Sum(): weight → bucket
	maxWait uint64
	keep    float64 // 1 − Alpha
	ready   bool    // cfg is set (false only in a zero Queue before first use)
}

// Stats are a queue's counters since it was created.
type Stats struct {
	Picks       uint64 // entries returned by Pop
	AgedPicks   uint64 // picks that served the oldest entry ahead of a heavier one
	Epochs      uint64 // epochs closed, one every EpochPicks picks
	Reweighs    uint64 // weight computations: one per entry per epoch at most, plus one per SetPriority
	Messages    uint64 // messages reported through Account
	LongestWait uint64 // the longest wait, in picks of others, of any popped entry
}

// New returns an empty queue configured by cfg, or cfg's validation error.
func New[T any](cfg Config) (*Queue[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	q := new(Queue[T])
	q.init(cfg)
	return q, nil
}

func (q *Queue[T]) init(cfg Config) {
	q.cfg = cfg
	q.scale = float64(cfg.Buckets) / cfg.Coefficients.Sum()
	q.maxWait = uint64(cfg.MaxWait)
	q.keep = 1 - cfg.Alpha
	q.untilEpoch = cfg.EpochPicks
	q.ready = true
}

// Len returns the number of queued entries.
func (q *Queue[T]) Len() int { return q.n }

// Stats returns the queue's counters.
func (q *Queue[T]) Stats() Stats {
	s := q.stats
	s.Picks = q.picks
	return s
}

// own binds e to q on first use; an entry bound to another queue is misuse.
func (q *Queue[T]) own(e *Entry[T]) {
	if e.owner == q {
		return
	}
	if e.owner != nil {
		panic("scheduler: entry used with a second queue without Forget")
	}
	if !q.ready {
		q.init(DefaultConfig())
	}
	e.owner = q
	e.epoch = q.epoch
}

// Push queues e behind the entries of its bucket. It does nothing if e is
// already queued. If an epoch has closed since e's weight was last computed
// (or its priority changed), the weight is computed now, from the handler
// time and queued bytes reported so far.
func (q *Queue[T]) Push(e *Entry[T]) {
	if e.queued && e.owner == q {
		return
	}
	q.own(e) // panics if e is bound to another queue (until Forget)
	if e.wEpoch != q.epoch+1 {
		q.reweigh(e)
	}

	b := e.bucket
	if h := q.heads[b]; h == nil {
		e.next, e.prev = e, e
		q.heads[b] = e
		q.nonEmpty |= 1 << b
	} else {
		t := h.prev
		e.next, e.prev = h, t
		t.next, h.prev = e, e
	}
	if o := q.oldest; o == nil {
		e.anext, e.aprev = e, e
		q.oldest = e
	} else {
		t := o.aprev
		e.anext, e.aprev = o, t
		t.anext, o.aprev = e, e
	}
	e.enq = q.picks
	e.queued = true
	q.n++
}

// Pop removes and returns the next entry to serve; ok is false when the
// queue is empty. The next entry is the oldest of the heaviest non-empty
// bucket, except that when the oldest queued entry has waited MaxWait picks
// or more, and the previous pick was not such an aged pick, the oldest entry
// is served instead. Every EpochPicks picks, Pop closes an epoch.
func (q *Queue[T]) Pop() (e *Entry[T], ok bool) {
	if q.n == 0 {
		return nil, false
	}
	e = q.heads[bits.Len64(q.nonEmpty)-1]
	aged := false
	// Aged picks alternate with weighted ones: when more entries are aged
	// than MaxWait (a saturated loop), the weights still decide every other
	// pick instead of the queue degrading into FIFO order.
	if o := q.oldest; o != e && !q.lastAged && q.picks-o.enq >= q.maxWait {
		e, aged = o, true
		q.stats.AgedPicks++
	}
	q.lastAged = aged
	if w := q.picks - e.enq; w > q.stats.LongestWait {
		q.stats.LongestWait = w
	}
	q.unlink(e)
	q.picks++
	if q.untilEpoch--; q.untilEpoch <= 0 {
		q.closeEpoch()
	}
	return e, true
}

// Remove takes e out of the queue, for instance because its entity was
// paused or terminated while runnable. It keeps e's accounting (see
// [Queue.Forget]) and does nothing if e is not queued in q.
func (q *Queue[T]) Remove(e *Entry[T]) {
	if e.queued && e.owner == q {
		q.unlink(e)
	}
}

// Forget removes e if it is queued and drops its accounting: its queued
// bytes leave the loop's total, its handler-time history is cleared and it
// is no longer bound to q. Call it when the entity terminates, before a
// pooled entity is reused, or to move it to another queue. Value and the
// priority are kept. It does nothing if e is not bound to q.
func (q *Queue[T]) Forget(e *Entry[T]) {
	if e.owner != q {
		return
	}
	if e.queued {
		q.unlink(e)
	}
	q.bytes -= e.bytes
	*e = Entry[T]{Value: e.Value, prio: e.prio}
}

// Account reports one run of e: handlerNanos of handler time (measured by
// the caller; the engine reads its clock once per run), msgs messages
// handled, and queuedBytes, e's backlog after the run (an absolute value
// that replaces the previous report). Negative values count as 0. The queue
// never reads a clock: the caller's reports are its only notion of time,
// which keeps it deterministic. Account changes no weight before the next
// epoch.
func (q *Queue[T]) Account(e *Entry[T], handlerNanos int64, msgs int, queuedBytes int64) {
	q.own(e)
	q.roll(e)
	if handlerNanos > 0 {
		e.cur += handlerNanos
		q.cur += handlerNanos
	}
	if msgs > 0 {
		q.stats.Messages += uint64(msgs)
	}
	queuedBytes = max(queuedBytes, 0)
	q.bytes += queuedBytes - e.bytes
	e.bytes = queuedBytes
}

func (q *Queue[T]) closeEpoch() {
	q.ewma = q.cfg.Alpha*float64(q.cur) + q.keep*q.ewma
	q.cur = 0
	q.epoch++
	q.untilEpoch = q.cfg.EpochPicks
	q.stats.Epochs++
}

// roll brings e's handler-time EWMA to the open epoch: it folds the time
// reported in e.epoch, then decays over the epochs e sat out, exactly as
// closeEpoch did for the loop's total. Entries are rolled lazily, when next
// accounted or weighed, so that closing an epoch costs O(1).
func (q *Queue[T]) roll(e *Entry[T]) {
	m := q.epoch - e.epoch
	if m == 0 {
		return
	}
	v := q.cfg.Alpha*float64(e.cur) + q.keep*e.ewma
	if m > 1 && v != 0 {
		v *= math.Pow(q.keep, float64(m-1))
	}
	e.ewma, e.cur, e.epoch = v, 0, q.epoch
}

// reweigh computes e's weight and bucket for the open epoch.
func (q *Queue[T]) reweigh(e *Entry[T]) {
	q.roll(e)
	var cpuShare, memShare float64
	if q.ewma > 0 {
		cpuShare = min(e.ewma/q.ewma, 1)
	}
	if q.bytes > 0 {
		memShare = min(float64(e.bytes)/float64(q.bytes), 1)
	}
	cpuShare = quantize(cpuShare, &e.cpuLevel)
	memShare = quantize(memShare, &e.memLevel)
	c := &q.cfg.Coefficients
	w := c.Priority*(float64(e.Priority())/MaxPriority) + c.CPU*(1-cpuShare) + c.Mem*(1-memShare)
	b := int(w * q.scale)
	if b >= q.cfg.Buckets {
		b = q.cfg.Buckets - 1
	} else if b < 0 {
		b = 0
	}
	e.weight, e.bucket, e.wEpoch = w, uint8(b), q.epoch+1
	q.stats.Reweighs++
}

// unlink takes queued e out of its bucket and the age list.
func (q *Queue[T]) unlink(e *Entry[T]) {
	b := e.bucket
	if e.next == e {
		q.heads[b] = nil
		q.nonEmpty &^= 1 << b
	} else {
		e.prev.next, e.next.prev = e.next, e.prev
		if q.heads[b] == e {
			q.heads[b] = e.next
		}
	}
	if e.anext == e {
		q.oldest = nil
	} else {
		e.aprev.anext, e.anext.aprev = e.anext, e.aprev
		if q.oldest == e {
			q.oldest = e.anext
		}
	}
	// Drop the links so that a dequeued entity keeps no other alive.
	e.next, e.prev, e.anext, e.aprev = nil, nil, nil, nil
	e.queued = false
	q.n--
}

// verify checks the queue's structural invariants; tests call it after
// every operation. It costs O(n).
func (q *Queue[T]) verify() error {
	if !q.ready {
		if q.n != 0 || q.nonEmpty != 0 || q.oldest != nil {
			return fmt.Errorf("scheduler: uninitialised queue holds entries")
		}
		return nil
	}
	if q.n < 0 {
		return fmt.Errorf("scheduler: Len %d < 0", q.n)
	}
	count := 0
	for b := range MaxBuckets {
		h := q.heads[b]
		if (h != nil) != (q.nonEmpty>>b&1 == 1) {
			return fmt.Errorf("scheduler: bucket %d: head %p but bitmap bit %d", b, h, q.nonEmpty>>b&1)
		}
		if h == nil {
			continue
		}
		if b >= q.cfg.Buckets {
			return fmt.Errorf("scheduler: bucket %d used with %d buckets", b, q.cfg.Buckets)
		}
		e := h
		for {
			if err := q.verifyEntry(e); err != nil {
				return fmt.Errorf("bucket %d: %w", b, err)
			}
			if int(e.bucket) != b {
				return fmt.Errorf("scheduler: entry of bucket %d in bucket %d's list", e.bucket, b)
			}
			if e.next == nil || e.next.prev != e {
				return fmt.Errorf("scheduler: bucket %d: broken link", b)
			}
			if count++; count > q.n {
				return fmt.Errorf("scheduler: buckets hold more than Len %d entries", q.n)
			}
			if e = e.next; e == h {
				break
			}
		}
	}
	if count != q.n {
		return fmt.Errorf("scheduler: buckets hold %d entries, Len %d", count, q.n)
	}
	if q.n == 0 {
		if q.oldest != nil {
			return fmt.Errorf("scheduler: empty queue with an age list")
		}
	} else {
		count = 0
		prev := uint64(0)
		e := q.oldest
		for {
			if err := q.verifyEntry(e); err != nil {
				return fmt.Errorf("age list: %w", err)
			}
			if e.enq < prev || e.enq > q.picks {
				return fmt.Errorf("scheduler: age list out of order: enq %d after %d (picks %d)", e.enq, prev, q.picks)
			}
			prev = e.enq
			if e.anext == nil || e.anext.aprev != e {
				return fmt.Errorf("scheduler: age list: broken link")
			}
			if count++; count > q.n {
				return fmt.Errorf("scheduler: age list holds more than Len %d entries", q.n)
			}
			if e = e.anext; e == q.oldest {
				break
			}
		}
		if count != q.n {
			return fmt.Errorf("scheduler: age list holds %d entries, Len %d", count, q.n)
		}
	}
	if q.untilEpoch < 1 || q.untilEpoch > q.cfg.EpochPicks {
		return fmt.Errorf("scheduler: %d picks left in an epoch of %d", q.untilEpoch, q.cfg.EpochPicks)
	}
	if q.bytes < 0 || q.cur < 0 || !(q.ewma >= 0) {
		return fmt.Errorf("scheduler: negative totals: bytes %d, cur %d, ewma %v", q.bytes, q.cur, q.ewma)
	}
	if q.stats.AgedPicks > q.picks || q.stats.Epochs != q.epoch {
		return fmt.Errorf("scheduler: counters: %d aged of %d picks, %d epochs at epoch %d",
			q.stats.AgedPicks, q.picks, q.stats.Epochs, q.epoch)
	}
	return nil
}

func (q *Queue[T]) verifyEntry(e *Entry[T]) error {
	switch {
	case e.owner != q:
		return fmt.Errorf("scheduler: linked entry owned by another queue")
	case !e.queued:
		return fmt.Errorf("scheduler: linked entry not marked queued")
	case e.wEpoch > q.epoch+1: // 0 after SetPriority on a queued entry
		return fmt.Errorf("scheduler: queued entry weighed in epoch %d, open epoch %d", e.wEpoch-1, q.epoch)
	case e.epoch > q.epoch || e.cur < 0 || e.bytes < 0 || e.bytes > q.bytes || !(e.ewma >= 0):
		return fmt.Errorf("scheduler: entry accounting: epoch %d/%d, cur %d, bytes %d/%d, ewma %v",
			e.epoch, q.epoch, e.cur, e.bytes, q.bytes, e.ewma)
	case !(e.weight >= 0 && e.weight <= q.cfg.Coefficients.Sum()*(1+1e-12)):
		return fmt.Errorf("scheduler: weight %v outside [0, %v]", e.weight, q.cfg.Coefficients.Sum())
	}
	return nil
}

// Shares are quantised to ShareLevels steps with hysteresis before they
// enter the weight: a share moves to a new step only once it is more than
// half a step plus shareHysteresis away from its current one. Measured
// handler time is noisy, and without this two equal entries whose shares
// jitter around 0.5 would land in neighbouring buckets, and the heavier one
// would take whole epochs alone; a hog's share (near 1) is still a whole
// step away from a light entry's (near 0).
const (
	ShareLevels     = 4
	shareHysteresis = 0.05
)

// quantize returns share rounded to the entry's step, moving the step
// (*level, 0..ShareLevels) only past the hysteresis band.
func quantize(share float64, level *uint8) float64 {
	cur := float64(*level) / ShareLevels
	if d := share - cur; d > 0.5/ShareLevels+shareHysteresis || d < -(0.5/ShareLevels+shareHysteresis) {
		*level = uint8(math.Round(share * ShareLevels))
	}
	return float64(*level) / ShareLevels
}
