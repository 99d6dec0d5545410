package engine

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/agentloop/agentloop/internal/timerheap"
)

// Timer states, in the low two bits of timer.state; the bits above hold
// the timer's incarnation, so a Timer handle to a recycled timer stops
// nothing.
const (
	timerArmed uint64 = iota
	timerStopped
	timerDone
)

// timer is one scheduled delivery. Only its state is shared (Stop may be
// called from anywhere); the rest is owned by the loop.
type timer struct {
	a       *agent
	gen     uint32
	payload []byte
	when    int64         // unix nanos
	period  int64         // 0 for one-shot
	state   atomic.Uint64 // seq<<2 | timerArmed/Stopped/Done
	seq     uint32        // loop: the incarnation Timer handles carry
	l       *loop
	rq      *request      // a request timeout: fails rq instead of delivering
	sched   cron.Schedule // a cron timer: the next due time comes from it
}

// Timer cancels a delivery scheduled with Context.After, Context.Every,
// Context.Cron, Engine.After, Engine.Every or Engine.Cron. The zero Timer is
// valid and stops nothing. A Timer refers to one scheduling only: once that
// is over (fired, stopped, or dropped) its Timer stops nothing, whatever the
// engine schedules later. Safe from any goroutine.
type Timer struct {
	t   *timer
	seq uint32
}

// Stop cancels the timer. It reports whether this call stopped it: true
// when the timer was still armed (a one-shot timer not yet due, a
// repeating timer between two ticks, a timer that never fires); false for
// the zero Timer, after an earlier Stop, and once the timer is over (a
// one-shot timer fired, any timer came due after its agent terminated, or
// the engine's stop dropped it). Of concurrent calls at most one returns
// true. After a Stop that returned true a one-shot timer delivers nothing
// and a repeating one no tick due after the Stop; a tick handed to the
// mailbox just before it may still arrive.
func (t Timer) Stop() bool {
	if t.t == nil {
		return false
	}
	gen := uint64(t.seq) << 2
	// timerArmed is 0: the armed state of this incarnation is gen itself.
	if !t.t.state.CompareAndSwap(gen, gen|timerStopped) {
		return false
	}
	t.t.l.zombies.Add(1)
	return true
}

// coarseTicks is the distance, in wheel ticks, from which a timer waits on
// the timing wheel instead of the heap: near deadlines go straight to the
// precise heap, far ones are grouped per tick on the wheel and moved to
// the heap when their tick comes.
const coarseTicks = 50

// wheelLead is how many ticks before its own a wheel bucket moves its
// timers to the heap. Moving a bucket costs a sort of its timers, which
// for a burst of tens of thousands of timers due at one instant is
// milliseconds: done at the due time, it would make every one of them
// late by that much; done ahead, the heap holds them and fires each on
// time. Far timers always leave at least coarseTicks ahead, so the bucket
// never fires in the past.
const wheelLead = coarseTicks / 2

// wheelBucket groups a loop's timers that fall in one wheel tick behind a
// single wheel entry, so a burst of timers costs one wheel timer and one
// post to the loop, not one goroutine each.
type wheelBucket struct {
	timers []timerheap.Entry[*timer]
	stop   func() bool
}

// never is the deadline of a timer that does not fire. Deadlines are unix
// nanoseconds; one past the end of that range (April 2262) saturates to
// never instead of wrapping round into the past.
const never = math.MaxInt64

// deadline is now+d for d > 0, saturated at never.
func deadline(now, d int64) int64 {
	if now > never-d {
		return never
	}
	return now + d
}

// nextTick is the due time of a repeating timer of the given period after
// the tick due at when, handled at now: when+period, or, when the loop
// fell behind, the first time of the same phase later than now (the
// missed ticks are skipped, not bunched). Saturated at never.
func nextTick(when, period, now int64) int64 {
	next := deadline(when, period)
	if next > now {
		return next
	}
	// next ≤ now, so the remainder is in [0, period): no overflow.
	return deadline(now, period-(now-next)%period)
}

// wheelHorizon is the latest deadline the wheel takes. The timing-wheel
// library reckons in wall-clock unix nanoseconds, which end in 2262, from
// its own reading of the clock, a little after the loop's; later
// deadlines, never among them, wait on the heap, which compares them
// exactly.
const wheelHorizon = never - int64(24*time.Hour)

func (t *timer) status() uint64      { return t.state.Load() & 3 }
func (t *timer) setStatus(st uint64) { t.state.Store(uint64(t.seq)<<2 | st) }

// maxFreeTimers bounds a loop's free list of timers.
const maxFreeTimers = 4096

// newTimer takes a timer from the loop's free list, or makes one.
func (l *loop) newTimer() *timer {
	n := len(l.freeTimers)
	if n == 0 {
		return &timer{l: l}
	}
	t := l.freeTimers[n-1]
	l.freeTimers[n-1] = nil
	l.freeTimers = l.freeTimers[:n-1]
	t.seq++
	t.setStatus(timerArmed)
	return t
}

// recycle returns a timer no heap or bucket holds any more.
func (l *loop) recycle(t *timer) {
	if t.l != l || len(l.freeTimers) >= maxFreeTimers {
		return
	}
	t.a, t.payload, t.rq, t.sched, t.period = nil, nil, nil, nil, 0
	l.freeTimers = append(l.freeTimers, t)
}

func (l *loop) addTimer(a *agent, d time.Duration, period time.Duration, payload []byte) Timer {
	t := l.newTimer()
	t.a, t.gen, t.payload, t.period = a, a.gen.Load(), payload, int64(period)
	now := l.e.now()
	t.when = deadline(now, int64(d))
	l.schedTimer(t, now)
	return Timer{t, t.seq}
}

// schedTimer puts t on the heap or in its wheel bucket.
func (l *loop) schedTimer(t *timer, now int64) {
	if l.stopping {
		return
	}
	tick := int64(l.e.cfg.tick)
	if l.wheel == nil || t.when > wheelHorizon || t.when-now < coarseTicks*tick {
		l.timers.Push(t.when, t)
		return
	}
	k := t.when / tick // the bucket fires at k*tick ≤ when
	b := l.lastBucket
	if b == nil || l.lastKey != k {
		b = l.buckets[k]
	}
	if b == nil {
		b = &wheelBucket{}
		l.buckets[k] = b
		b.stop = l.wheel.AfterFunc(time.Duration((k-wheelLead)*tick-now), func() {
			if !l.sealed.Load() {
				l.post(&envelope{op: opFunc, fn: func() { l.wheelFired(k) }})
			}
		})
	}
	// Timers stopped since they joined the bucket, at its end, leave it
	// now rather than when it fires: a timer armed and stopped at once (a
	// timeout that did not happen) is recycled by the next one instead of
	// waiting on the wheel for its tick, and costs no allocation.
	for n := len(b.timers); n > 0 && b.timers[n-1].V.status() == timerStopped; n-- {
		old := b.timers[n-1].V
		b.timers[n-1] = timerheap.Entry[*timer]{}
		b.timers = b.timers[:n-1]
		l.zombies.Add(-1)
		l.recycle(old)
	}
	b.timers = append(b.timers, timerheap.Entry[*timer]{When: t.when, V: t})
	l.lastKey, l.lastBucket = k, b
}

// wheelFired moves the timers of bucket k to the heap, wheelLead ticks
// before they are due (the wheel may fire up to a tick earlier still); the
// heap never fires before the due time. The bucket's armed timers go in
// as one sorted run (Heap.AddRun), sorted once here, ahead of time, so
// that taking them off when they are due costs no sifting: a burst of
// timers due at one instant leaves the heap at the cost of reading a
// slice front to back.
func (l *loop) wheelFired(k int64) {
	b := l.buckets[k]
	if b == nil {
		return
	}
	delete(l.buckets, k)
	if l.lastBucket == b {
		l.lastBucket = nil
	}
	run := b.timers[:0]
	for _, e := range b.timers {
		switch e.V.status() {
		case timerArmed:
			run = append(run, e)
		case timerStopped:
			l.zombies.Add(-1) // it never reaches the heap
			l.recycle(e.V)
		}
	}
	clear(b.timers[len(run):])
	b.timers = nil
	l.timers.AddRun(run)
}

// fireTimers delivers up to max of the timers due at now, in due order;
// the rest wait for the next turn.
func (l *loop) fireTimers(now int64, max int) {
	if z := int(l.zombies.Load()); z > 64 && z > l.timers.Len()/4 {
		removed := 0
		l.timers.Filter(func(t *timer) bool {
			if t.status() == timerArmed {
				return true
			}
			removed++
			l.recycle(t)
			return false
		})
		l.zombies.Add(int32(-removed))
	}
	for fired := 0; fired < max; fired++ {
		e, ok := l.timers.PopDue(now)
		if !ok {
			return
		}
		t := e.V
		switch t.status() {
		case timerStopped:
			l.zombies.Add(-1)
			l.recycle(t)
			continue
		case timerDone:
			continue
		}
		a := t.a
		if !a.live(t.gen) {
			l.retire(t)
			l.recycle(t)
			continue
		}
		if t.rq != nil {
			if l.retire(t) {
				t.rq.fail(l, agentRequest, fmt.Errorf("%w: request to %s", ErrTimeout, t.rq.target()))
			}
			l.recycle(t)
			continue
		}
		if t.period == 0 && t.sched == nil {
			if l.retire(t) {
				l.enqueue(a, t.gen, &Message{Payload: t.payload, x: timerTag}, false)
			}
			l.recycle(t)
			continue
		}
		l.enqueue(a, t.gen, &Message{Payload: t.payload, x: timerTag}, false)
		if t.sched != nil {
			t.when = l.e.nextCron(t.sched, t.when, now)
			l.schedTimer(t, now)
			continue
		}
		if t.period > 0 {
			t.when = nextTick(t.when, t.period, now)
			l.schedTimer(t, now)
		}
	}
}

// retire marks a due timer done and reports whether it was still armed. A
// Stop from another goroutine may have won since fireTimers looked at it:
// then the timer leaves the heap as the zombie it became, and a one-shot
// timer whose Stop returned true delivers nothing.
func (l *loop) retire(t *timer) bool {
	gen := uint64(t.seq) << 2 // timerArmed is 0: gen is the armed state
	if t.state.CompareAndSwap(gen, gen|timerDone) {
		return true
	}
	l.zombies.Add(-1)
	return false
}

// dropTimers cancels every timer of the loop (engine stop).
func (l *loop) dropTimers() {
	l.stopping = true
	l.timers.Clear(func(t *timer) { t.setStatus(timerDone) })
	l.zombies.Store(0)
	for k, b := range l.buckets {
		if b.stop != nil {
			b.stop()
		}
		for _, e := range b.timers {
			e.V.setStatus(timerDone)
		}
		delete(l.buckets, k)
	}
	l.lastBucket = nil
}

func (l *loop) startWheel() {
	if l.e.virtual {
		l.wheel = clockWheel{l.e.clock}
	} else {
		l.wheel = newRLWheel(l.e.cfg.tick)
	}
}

func (l *loop) stopWheel() {
	if l.wheel != nil {
		l.wheel.Stop()
	}
}

// After is Context.After for the agent id, from outside the engine (the
// agent is spawned when its type is registered and it does not exist):
// payload reaches it once, d after the call, as a Message whose IsTimer
// reports true. It returns ErrInvalidDuration for d ≤ 0 and ErrStopped
// once the engine is stopping. Concurrency-safe.
func (e *Engine) After(d time.Duration, id AgentID, payload []byte) (Timer, error) {
	return e.outsideTimer("After", d, 0, id, payload)
}

// Every is Context.Every for the agent id, from outside the engine: payload
// reaches it every d, the first time d after the call, with Every's rules
// (no drift, missed ticks skipped). Errors as for After. Concurrency-safe.
func (e *Engine) Every(d time.Duration, id AgentID, payload []byte) (Timer, error) {
	return e.outsideTimer("Every", d, d, id, payload)
}

func (e *Engine) outsideTimer(name string, d, period time.Duration, id AgentID, payload []byte) (Timer, error) {
	if d <= 0 {
		return Timer{}, fmt.Errorf("%w: %s(%v)", ErrInvalidDuration, name, d)
	}
	r, err := e.resolve(id)
	if err != nil {
		return Timer{}, err
	}
	if e.state.Load() >= stateStopping {
		return Timer{}, fmt.Errorf("%w: %s for %s", ErrStopped, name, id)
	}
	t := &timer{a: r.a, gen: r.gen, payload: payload, l: r.a.loop, period: int64(period)}
	due := deadline(e.now(), int64(d)) // counted from the call, not from its arrival
	return e.armOutside(t, func(int64) int64 { return due }), nil
}

// armOutside hands a timer made outside the loops to its loop, which gives
// it its first due time (first(now)) and schedules it, unless it was
// stopped on the way. Such a timer is not from the loop's free list: its
// handle's incarnation is 0, and a recycled timer's next incarnation is
// never 0 again.
func (e *Engine) armOutside(t *timer, first func(now int64) int64) Timer {
	l := t.l
	l.post(&envelope{op: opFunc, fn: func() {
		if t.status() != timerArmed {
			l.zombies.Add(-1) // stopped before it was scheduled
			return
		}
		now := e.now()
		t.when = first(now)
		l.schedTimer(t, now)
	}})
	return Timer{t, 0}
}
