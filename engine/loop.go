package engine

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentloop/agentloop/internal/labels"
	"github.com/agentloop/agentloop/internal/mpsc"
	"github.com/agentloop/agentloop/internal/ring"
	"github.com/agentloop/agentloop/internal/timerheap"
	"github.com/agentloop/agentloop/lifecycle"
	"github.com/agentloop/agentloop/pool"
	"github.com/agentloop/agentloop/scheduler"
)

// op is what an envelope asks its loop to do.
type op uint8

const (
	opMsg       op = iota // deliver msg to a
	opInit                // run a's Init and start it
	opPaused              // run a's OnPause hook
	opResumed             // run a's OnResume hook and reschedule it
	opTerminate           // terminate a (after its queued messages)
	opPublish             // deliver msg to every agent in subs
	opShutdown            // engine stop: terminate every agent of the loop
	opQuit                // leave the loop
	opFunc                // run fn on the loop
	opReply               // run a settled request's callback for a
)

// envelope is one unit of work in a loop's inbox or ready deque. It is a
// plain value: posting it allocates nothing.
type envelope struct {
	a    *agent
	gen  uint32
	op   op
	msg  Message
	subs []*agent // opPublish: the subscribers on this loop (shared, read-only)
	fn   func()   // opFunc
}

// loop is one event loop: one goroutine that owns everything below and runs
// every hook and handler of the agents placed on it. Other goroutines reach
// it only through inbox (and the atomics marked as such).
type loop struct {
	e   *Engine
	idx int

	inbox *mpsc.Queue[envelope] // any goroutine pushes; the loop pops

	// sleeping is 1 while the loop is parked or about to park. A producer
	// that pushes and then sees 1 swaps it to 0 and sends one token on
	// wakeCh; the loop sets it before its last emptiness check, so a push
	// racing with parking is either seen by that check or wakes the loop.
	sleeping atomic.Int32
	wakeCh   chan struct{}
	wakeFn   func()      // l.wake, bound once
	idle     atomic.Bool // parked with nothing pending (quiescence checks)

	// fullWanted asks the loop for a full publish (see publish); Stats
	// sets it and wakes the loop, which clears it once published.
	fullWanted atomic.Bool
	stale      atomic.Bool // turns ran since the last full publish

	// spill holds work the inbox could not take: everything posted before
	// Start (no goroutine pops the inbox yet), and posts from outside that
	// found it full for long enough that waiting longer could deadlock (a
	// handler posting to its own loop). While spilling is set every outside
	// post goes to the spill, and the loop takes it only once the inbox is
	// fully drained, so each producer's order is kept.
	spilling atomic.Bool
	spillMu  sync.Mutex // protects spill
	spill    []envelope
	spilled  atomic.Uint64 // posts ever spilled (quiescence checks)

	// sealed is set after the loop goroutine has exited; late producers
	// then dead-letter what they pushed themselves (sweepMu serialises
	// them as the inbox's single consumer).
	sealed  atomic.Bool
	sweepMu sync.Mutex

	gid atomic.Uint64 // the loop goroutine's ID (see Engine.onLoop)

	// Space notification for outside senders blocked on a full Block
	// mailbox of this loop.
	spaceWaiters atomic.Int32
	spaceMu      sync.Mutex
	spaceCh      chan struct{}

	// Everything below is owned by the loop goroutine.
	ready    ring.Deque[envelope]
	runq     *scheduler.Queue[*agent] // runnable agents by weight
	batch    []Message                // the reused slice of ReceiveBatch
	busy     int64                    // nanoseconds spent running agents
	recycled []*agent                 // pooled agents finalized this turn
	outbox   []ring.Deque[envelope]   // per target loop: posts that found its inbox full
	pending  int                      // total envelopes in outbox
	agents   *agent                   // the started agents, linked through agent.prev/next
	ctx      Context
	dirty    []*typeCounters
	handles  map[*agent][]ReplyHandle // ReplyLater handles not yet answered
	label    *agentType               // the type whose pprof labels are set, nil if none

	timers     timerheap.Heap[*timer]
	zombies    atomic.Int32 // stopped timers still in the heap
	wheel      wheel
	buckets    map[int64]*wheelBucket
	lastKey    int64        // the bucket schedTimer used last, to skip the map
	lastBucket *wheelBucket // for runs of timers in one tick
	freeTimers []*timer     // recycled timers (bounded by maxFreeTimers)
	parkT      *time.Timer
	turns      uint64
	lastFull   uint64 // turns at the last full publish
	stopping   bool   // the engine is stopping: timers were dropped
	shut       bool   // shutdown ran: agents that still arrive are not started

	// Published loop counters (written by the loop, read by Stats).
	stats loopCounters
}

type loopCounters struct {
	turns, parks, deadLetters atomic.Uint64
	runnable, timers, busy    atomic.Int64
	// The runnable queue's counters: Picks, AgedPicks, Epochs, Reweighs,
	// Messages, LongestWait.
	sched [6]atomic.Uint64
}

func newLoop(e *Engine, idx int) *loop {
	l := &loop{
		e:       e,
		idx:     idx,
		inbox:   mpsc.New[envelope](e.cfg.inboxSize),
		wakeCh:  make(chan struct{}, 1),
		spaceCh: make(chan struct{}),
		outbox:  make([]ring.Deque[envelope], e.cfg.loops),
		buckets: make(map[int64]*wheelBucket),
	}
	l.runq, _ = scheduler.New[*agent](e.cfg.sched) // validated by New
	l.spilling.Store(true)
	l.wakeFn = l.wake
	l.ctx.l = l
	return l
}

// ---- posting (any goroutine) ----

// post hands env to the loop from a goroutine outside the engine. It waits
// (spinning, then yielding, then sleeping briefly) while the inbox is full:
// the inbox is the backpressure point of outside senders. Only after
// waiting spillWait does it spill instead, so that a handler that posts to
// its own loop through the outside API slows down but cannot deadlock it.
// While a spill is pending every post first waits for the loop to take it
// (the same bound), so a spill never turns into an unbounded queue that
// lets outside senders run ahead, and each sender's order is kept.
func (l *loop) post(env *envelope) {
	if l.spilling.Load() {
		if !l.e.started.Load() {
			if l.trySpill(env) { // before Start nobody pops the inbox
				return
			}
		} else if !l.waitSpillTaken() && l.trySpill(env) {
			l.wake()
			return
		}
	}
	var p patience
	for !l.inbox.TryPush(env) {
		if l.sealed.Load() {
			l.sweep()
			continue
		}
		if p.wait() && l.trySpill(env) {
			l.wake()
			return
		}
	}
	l.wake()
	if l.sealed.Load() {
		// The loop is gone; nobody else will pop what we pushed.
		l.sweep()
	}
}

// waitSpillTaken waits up to spillWait for the loop to take a pending
// spill; it reports whether it did.
func (l *loop) waitSpillTaken() bool {
	var p patience
	for l.spilling.Load() {
		if l.sealed.Load() {
			return true // post's loop sweeps
		}
		l.wake()
		if p.wait() {
			return false
		}
	}
	return true
}

// patience paces an outside goroutine waiting on a loop: spin, then
// yield, then sleep briefly (backoff). wait reports true once it has slept
// for spillWait; the clock is read only after spinRounds rounds.
type patience struct {
	i     int
	since time.Time
}

func (p *patience) wait() (expired bool) {
	if p.i >= spinRounds {
		if p.since.IsZero() {
			p.since = time.Now()
		} else if time.Since(p.since) >= spillWait {
			return true
		}
	}
	backoff(p.i)
	p.i++
	return false
}

// spillWait is how long an outside post waits on a full inbox (or a
// pending spill) before it spills; spinRounds how many backoff rounds pass
// before the clock is read at all.
const (
	spillWait  = 10 * time.Millisecond
	spinRounds = 64
)

// postFrom hands env to l from loop src. A loop never waits: when l's inbox
// is full the envelope stays in src's outbox for l, and everything src posts
// to l after it queues behind it, so order between two agents is kept.
//
// The outbox is bounded by the target's overflow policies, as if it were
// part of the target's mailboxes: once it holds as many envelopes as l's
// inbox (and at least minOutbox), a message to a DropNewest agent and a publish are dead-lettered
// (ErrMailboxFull) instead of queued, and a message to a DropOldest agent
// pushes out the oldest message for the same agent at the front of the
// outbox, or else is dropped itself. Messages to Reject and Block agents
// hold mailbox places reserved before sending, so their capacity bounds
// them already; control work (replies, lifecycle steps) is never shed.
func (l *loop) postFrom(src *loop, env *envelope) {
	ob := &src.outbox[l.idx]
	if ob.Len() > 0 || !l.inbox.TryPush(env) {
		if ob.Len() >= max(l.inbox.Cap(), minOutbox) && src.shed(ob, env) {
			return
		}
		ob.PushBack(*env)
		src.pending++
		return
	}
	l.wake()
}

// minOutbox is the least number of envelopes an outbox holds before the
// targets' overflow policies apply to it, so that a small inbox
// (WithInboxSize) does not turn a burst into drops.
const minOutbox = 4096

// shed applies the target's overflow policy to env, bound for a full
// outbox ob of src; it reports whether env was consumed (dead-lettered).
// Drops are counted on src's counters for the target's type, since the
// target's own belong to its loop.
func (src *loop) shed(ob *ring.Deque[envelope], env *envelope) bool {
	switch env.op {
	case opMsg:
		a := env.a
		switch a.typ.cfg.overflow {
		case DropOldest:
			if front := ob.Front(); front.op == opMsg && front.a == a {
				old, _ := ob.PopFront()
				src.pending--
				src.shedMsg(old.a, old.gen, old.msg)
				return false // env takes the freed place
			}
			fallthrough
		case DropNewest:
			src.shedMsg(a, env.gen, env.msg)
			return true
		}
	case opPublish:
		if env.gen == publishReserved {
			return false // bounded by the subscribers' capacity, like a send
		}
		for _, a := range env.subs {
			src.shedMsg(a, a.gen.Load(), env.msg)
		}
		return true
	}
	return false
}

// shedMsg dead-letters a message src could not hand to a's loop.
func (src *loop) shedMsg(a *agent, gen uint32, m Message) {
	tc := a.typ.perLoop[src.idx]
	tc.received++
	tc.dropped++
	src.touch(tc)
	src.deadLetterAt(a, gen, m, ErrMailboxFull)
}

func (l *loop) trySpill(env *envelope) bool {
	l.spillMu.Lock()
	defer l.spillMu.Unlock()
	if l.sealed.Load() {
		return false
	}
	l.spill = append(l.spill, *env)
	l.spilled.Add(1)
	l.spilling.Store(true)
	return true
}

// takeSpill moves the spill into the loop once the inbox is fully drained.
func (l *loop) takeSpill() (quit bool) {
	if !l.inbox.Drained() {
		return false
	}
	l.spillMu.Lock()
	spill := l.spill
	l.spill = nil
	l.spilling.Store(false)
	l.spillMu.Unlock()
	for i := range spill {
		if l.dispatch(&spill[i]) {
			return true
		}
	}
	return false
}

func (l *loop) wake() {
	if l.sleeping.Load() != 0 && l.sleeping.CompareAndSwap(1, 0) {
		select {
		case l.wakeCh <- struct{}{}:
		default:
		}
	}
}

func backoff(i int) {
	switch {
	case i < 16:
		// spin
	case i < 64:
		runtime.Gosched()
	default:
		time.Sleep(20 * time.Microsecond)
	}
}

// sweep dead-letters what is left in the inbox of an exited loop.
func (l *loop) sweep() {
	l.sweepMu.Lock()
	defer l.sweepMu.Unlock()
	var env envelope
	for l.inbox.Pending() {
		if !l.inbox.Pop(&env) {
			runtime.Gosched() // a producer is between reserving and writing
			continue
		}
		if env.op == opInit {
			l.e.transition(env.a, lifecycle.Terminated)
			l.e.registry.remove(env.a)
			continue
		}
		l.e.dropEnvelope(nil, &env, ErrStopped)
	}
	l.inbox.Commit()
}

// ---- the loop goroutine ----

func (l *loop) run() {
	l.gid.Store(goroutineID())
	defer l.e.loopsWG.Done()
	defer l.stopWheel()
	l.parkT = time.NewTimer(time.Hour)
	l.parkT.Stop()
	for {
		if l.turn() {
			l.quit()
			return
		}
		if !l.hasWork() && !l.spin() {
			l.park()
		}
	}
}

// spinChecks is how many times a loop that just did work looks at its
// inbox before parking. A streaming producer or a ping-pong peer usually
// posts again within a microsecond; catching that saves a park and a
// wake-up (two scheduler round trips). An idle loop parks after one short
// spin and then costs nothing.
const spinChecks = 0

func (l *loop) spin() bool {
	for i := 0; i < spinChecks; i++ {
		if l.inbox.Pending() {
			return true
		}
	}
	return false
}

// turn runs one round of the loop and reports whether the loop must exit.
func (l *loop) turn() (quit bool) {
	l.turns++
	if l.pending > 0 {
		l.flushOutbox()
	}
	if quit = l.drainInbox(l.e.cfg.budget); quit {
		return true
	}
	if l.spilling.Load() && l.takeSpill() {
		return true
	}
	if l.timers.Len() > 0 {
		l.fireTimers(l.e.now())
	}
	for l.ready.Len() > 0 {
		env, _ := l.ready.PopFront()
		l.dispatch(&env)
	}
	l.runAgents(l.e.cfg.budget)
	if len(l.recycled) > 0 {
		l.recycleAgents()
	}
	if l.turns&(publishEvery-1) == 0 || l.fullWanted.Load() {
		l.publish(true)
	}
	return false
}

// publishEvery is how often (in turns) a busy loop copies its counters to
// their atomic mirrors; a loop also publishes before it parks.
const publishEvery = 64

func (l *loop) hasWork() bool {
	return l.runq.Len() > 0 || l.ready.Len() > 0 || l.inbox.Pending() || l.spilling.Load()
}

// park sleeps until a producer wakes the loop or the next timer is due.
func (l *loop) park() {
	l.publish(l.turns-l.lastFull >= publishEvery || l.fullWanted.Load() ||
		l.e.stopping.Load() || l.e.idleWaiters.Load() > 0)
	l.sleeping.Store(1)
	// Last check after announcing sleep: a push that happened before the
	// store is seen here; one after it sees sleeping == 1 and wakes us.
	if l.inbox.Pending() || l.spilling.Load() {
		if !l.sleeping.CompareAndSwap(1, 0) {
			// A producer already claimed the wake-up; eat its token so the
			// next park does not return at once.
			<-l.wakeCh
		}
		return
	}
	var timeout time.Duration = -1
	if l.timers.Len() > 0 {
		if e, ok := l.timers.Peek(); ok {
			timeout = time.Duration(e.When - l.e.now())
			if timeout <= 0 {
				l.sleeping.Store(0)
				return
			}
		}
	}
	// Under a clock other than the system one, the clock calls wake when
	// the deadline passes on it. The alarm is registered before the loop
	// declares itself idle: whoever moves the clock once the engine looks
	// idle (the enginetest harness) must find it, or it would step past
	// the deadline and the timer would fire late, out of turn or never.
	var stopAlarm func() bool
	if l.e.virtual && l.pending == 0 && timeout >= 0 {
		stopAlarm = l.e.clock.AfterFunc(timeout, l.wakeFn)
	}
	if l.pending > 0 {
		// Another loop's inbox was full; retry soon without spinning.
		if timeout < 0 || timeout > 50*time.Microsecond {
			timeout = 50 * time.Microsecond
		}
	} else {
		l.idle.Store(true)
		if l.e.stopping.Load() || l.e.idleWaiters.Load() > 0 {
			l.e.signalIdle()
		}
	}
	l.stats.parks.Add(1)
	switch {
	case timeout < 0:
		<-l.wakeCh
	case stopAlarm != nil:
		<-l.wakeCh
		stopAlarm()
	default:
		l.parkT.Reset(timeout)
		select {
		case <-l.wakeCh:
			if !l.parkT.Stop() {
				select {
				case <-l.parkT.C:
				default:
				}
			}
		case <-l.parkT.C:
			if !l.sleeping.CompareAndSwap(1, 0) {
				<-l.wakeCh
			}
		}
	}
	l.idle.Store(false)
}

func (l *loop) flushOutbox() {
	for i := range l.outbox {
		ob := &l.outbox[i]
		if ob.Len() == 0 {
			continue
		}
		dst := l.e.loops[i]
		for ob.Len() > 0 {
			if !dst.inbox.TryPush(ob.Front()) {
				break
			}
			ob.PopFront()
			l.pending--
		}
		dst.wake()
	}
}

// drainInbox moves up to max envelopes from the inbox into mailboxes (or
// runs them, for control work).
func (l *loop) drainInbox(max int) (quit bool) {
	for i := 0; i < max; i++ {
		env := l.inbox.Peek()
		if env == nil {
			break
		}
		quit = l.dispatch(env)
		l.inbox.Advance()
		if quit {
			break
		}
	}
	l.inbox.Commit()
	return quit
}

// dispatch handles one envelope on the loop; it reports whether to quit.
func (l *loop) dispatch(env *envelope) bool {
	switch env.op {
	case opMsg:
		l.enqueue(env.a, env.gen, &env.msg, true)
	case opInit:
		l.initAgent(env.a)
	// Each Pause and Resume posts its own envelope, and each runs its hook
	// even when a later move has already changed the state again (Pause
	// then Resume before the loop got here): hooks follow the moves, in
	// order; the runnable queue follows the current state.
	case opPaused:
		a := env.a
		if a.gen.Load() == env.gen && !a.terminating && a.lc.State() != lifecycle.Terminated {
			if a.scheduled && a.lc.State() == lifecycle.Paused { // keep its messages, leave the queue
				a.scheduled = false
				l.runq.Remove(a.se)
			}
			l.callHook(a, "OnPause", hookPause)
		}
	case opResumed:
		a := env.a
		if a.gen.Load() == env.gen && !a.terminating && a.lc.State() != lifecycle.Terminated {
			l.callHook(a, "OnResume", hookResume)
			if a.lc.State() == lifecycle.Running {
				l.schedule(a)
			}
		}
	case opTerminate:
		l.terminate(env.a, env.gen)
	case opPublish:
		reserved := env.gen == publishReserved
		for _, a := range env.subs {
			l.enqueue(a, a.gen.Load(), &env.msg, reserved)
		}
	case opShutdown:
		l.shutdown(env.gen != 0)
	case opQuit:
		return true // run calls quit once the envelope has left the inbox
	case opFunc:
		env.fn()
	case opReply:
		l.runReply(env)
	}
	return false
}

// enqueue puts m into a's mailbox, applying the overflow policy, and makes
// a runnable. It is the one door into a mailbox. reserved says the sender
// already holds a place in a Reject or Block mailbox.
func (l *loop) enqueue(a *agent, gen uint32, m *Message, reserved bool) {
	if !a.live(gen) {
		if reserved && a.typ.cfg.reserves() {
			a.occ.Add(-1)
		}
		l.deadLetterAt(a, gen, *m, a.endReason(gen))
		return
	}
	l.push(a, m, reserved)
}

// push is enqueue for a caller that has checked a.live itself.
func (l *loop) push(a *agent, m *Message, reserved bool) {
	pol := a.typ.cfg.overflow
	tc := a.tc
	l.touch(tc)
	tc.received++
	switch {
	case a.typ.cfg.reserves():
		if !reserved && !a.reserve() { // a timer tick
			tc.dropped++
			l.deadLetter(a, *m, ErrMailboxFull)
			return
		}
	case a.mb.len() >= a.typ.cfg.capacity:
		tc.dropped++
		if pol == DropOldest {
			var old Message
			a.mb.pop(&old)
			tc.queued--
			l.deadLetter(a, old, ErrMailboxFull)
		} else {
			l.deadLetter(a, *m, ErrMailboxFull)
			return
		}
	}
	*a.mb.push() = *m
	a.qbytes += int64(len(m.Payload))
	tc.queued++
	if !a.scheduled && a.lc.State() == lifecycle.Running {
		l.makeRunnable(a)
	}
}

func (l *loop) schedule(a *agent) {
	if !a.scheduled && a.mb.len() > 0 {
		l.makeRunnable(a)
	}
}

// makeRunnable queues a by its weight. The queue entry is allocated on the
// first schedule, so an agent that never gets a message costs nothing.
func (l *loop) makeRunnable(a *agent) {
	se := a.se
	if se == nil {
		se = &schedEntry{Value: a}
		se.SetPriority(a.typ.cfg.priority) // validated by WithPriority
		a.se = se
	}
	a.scheduled = true
	l.runq.Push(se)
}

// runAgents serves runnable agents in the order of the weighted queue,
// each for up to a quantum of messages (or one batch), until budget
// messages have been handled or none is runnable.
//
// Time is read once per run: each run's handler time is the distance
// between two consecutive reads. It feeds the agent's weight (through
// Account), its type's handler-latency histogram and the loop's busy time.
func (l *loop) runAgents(budget int) {
	if l.runq.Len() == 0 {
		l.signalSpaceWaiters()
		return
	}
	q := l.e.cfg.quantum
	// With one runnable agent there is nothing to weigh it against, and
	// a loop that serves a lone sender or a ping-pong peer runs one short
	// turn per message: there the clock is read on one turn in
	// timeSampleTurns, and the other runs are charged their type's last
	// measured time per message. A type not yet measured on this loop is
	// always measured.
	timed := l.runq.Len() > 1 || l.turns&(timeSampleTurns-1) == 0
	var t0 int64
	if timed {
		t0 = l.e.runTime()
	}
	for budget > 0 {
		se, ok := l.runq.Pop()
		if !ok {
			break
		}
		a := se.Value
		a.scheduled = false
		st := a.lc.State()
		if st != lifecycle.Running && !(a.drainOnStop && st == lifecycle.Paused) {
			continue // paused (or gone): messages wait in the mailbox
		}
		if labels.Enabled() {
			l.setLabels(a.typ)
		} else if l.label != nil {
			l.clearLabels()
		}
		tc := a.tc
		measure := timed || tc.lastPer == 0
		if measure && !timed {
			t0 = l.e.runTime()
		}
		var done int
		var bytes int64
		if a.batcher {
			done, bytes = l.runBatch(a, min(a.typ.cfg.batch, budget))
		} else {
			done, bytes = l.runAgent(a, min(q, budget))
		}
		var el int64
		if measure {
			t1 := l.e.runTime()
			el, t0 = t1-t0, t1
			if done > 0 {
				tc.lastPer = max(el/int64(done), 1)
			}
		} else {
			el = tc.lastPer * int64(done)
		}
		budget -= done
		a.qbytes -= bytes
		tc.processed += uint64(done)
		tc.queued -= int64(done)
		tc.observe(el, done)
		l.touch(tc)
		l.busy += el
		if a.typ.cfg.reserves() {
			a.occ.Add(int32(-done)) // give the places back, once per run
		}
		if a.lc.State() == lifecycle.Terminated {
			continue // a panic past its restart budget ended it
		}
		if timed {
			l.runq.Account(se, el, done, a.qbytes)
		}
		switch {
		case a.mb.len() > 0:
			if !a.scheduled { // a send to itself may have queued it already
				a.scheduled = true
				l.runq.Push(se)
			}
		case a.terminating:
			l.finalize(a, ErrTerminated)
		}
	}
	l.signalSpaceWaiters()
}

func (l *loop) signalSpaceWaiters() {
	if l.spaceWaiters.Load() > 0 {
		l.signalSpace()
	}
}

// timeSampleTurns: a loop with a single runnable agent reads the clock on
// one turn in this many (a power of two).
const timeSampleTurns = 8

// runAgent delivers up to max messages to a and returns how many, and
// their payload bytes. A panic in Receive is caught here, once per run
// rather than once per message: the panicking message counts as delivered
// and the agent is restarted or terminated. OnMessage plugins, when
// installed, see each message first; without them the loop over them is
// an empty range.
func (l *loop) runAgent(a *agent, max int) (n int, bytes int64) {
	c := &l.ctx
	c.a = a
	var held *pool.Buffer // the reference of the delivery in Receive, if any
	defer func() {
		if r := recover(); r != nil {
			if held != nil {
				held.Release() // the panicking delivery is over too
			}
			l.recovered(a, "Receive", r, debug.Stack())
		}
		c.a = nil
	}()
	obs := l.e.plugins.Load().onMessage
	var id AgentID
	if len(obs) > 0 {
		id = a.ident()
	}
	impl := a.impl
	var m Message
	for n < max && a.mb.pop(&m) {
		n++
		bytes += int64(len(m.Payload))
		for _, p := range obs {
			l.e.observe(p, id, &m)
		}
		if m.x == nil {
			impl.Receive(c, m)
			continue
		}
		if rq := m.req(); rq != nil {
			c.rq, c.rqInc = rq, rq.pending()
			impl.Receive(c, m)
			l.requestDone(c)
			continue
		}
		held = m.buffer()
		impl.Receive(c, m)
		held.Release() // this delivery's reference
		held = nil
	}
	return n, bytes
}

// runBatch hands a batch receiver up to max queued messages in one
// ReceiveBatch call, from the loop's reused slice, which is cleared after
// the call so that it keeps no payload alive. A request at the front of
// the mailbox goes alone through Receive; a request behind ordinary
// messages ends the batch and waits for the next run.
func (l *loop) runBatch(a *agent, max int) (n int, bytes int64) {
	if front := a.mb.front(); front != nil && front.req() != nil {
		return l.runAgent(a, 1)
	}
	batch := l.batch[:0]
	for len(batch) < max {
		p := a.mb.front()
		if p == nil || p.req() != nil {
			break
		}
		batch = append(batch, Message{})
		m := &batch[len(batch)-1]
		a.mb.pop(m)
		bytes += int64(len(m.Payload))
	}
	l.batch = batch
	n = len(batch)
	c := &l.ctx
	c.a = a
	defer func() {
		if r := recover(); r != nil {
			l.recovered(a, "ReceiveBatch", r, debug.Stack())
		}
		c.a = nil
		for i := range batch {
			if batch[i].x != nil {
				batch[i].buffer().Release()
			}
		}
		clear(batch)
	}()
	if obs := l.e.plugins.Load().onMessage; len(obs) > 0 {
		id := a.ident()
		for i := range batch {
			for _, p := range obs {
				l.e.observe(p, id, &batch[i])
			}
		}
	}
	a.impl.(BatchReceiver).ReceiveBatch(c, batch)
	return n, bytes
}

func (l *loop) setLabels(t *agentType) {
	if l.label != t {
		pprof.SetGoroutineLabels(t.labelCtx)
		l.label = t
	}
}

func (l *loop) clearLabels() {
	pprof.SetGoroutineLabels(context.Background())
	l.label = nil
}

func (l *loop) signalSpace() {
	l.spaceMu.Lock()
	close(l.spaceCh)
	l.spaceCh = make(chan struct{})
	l.spaceMu.Unlock()
}

// publish copies the loop-owned counters that changed into their atomic
// mirrors, once per turn rather than once per message. The message counts
// go out every time; the handler histograms, busy time and scheduler
// counters (a dozen stores, each an exchange on amd64) only when full is
// set: every publishEvery turns, when the engine stops or someone waits
// for idleness, and when Stats asks (fullWanted). A loop that parks after
// every message, as in a ping-pong, would otherwise pay them per message.
func (l *loop) publish(full bool) {
	keep := l.dirty[:0]
	for _, tc := range l.dirty {
		if tc.publish(full) {
			keep = append(keep, tc)
		}
	}
	clear(l.dirty[len(keep):])
	l.dirty = keep
	storeIfChanged(&l.stats.turns, l.turns)
	if n := int64(l.runq.Len()); l.stats.runnable.Load() != n {
		l.stats.runnable.Store(n)
	}
	if n := int64(l.timers.Len()); l.stats.timers.Load() != n {
		l.stats.timers.Store(n)
	}
	if !full {
		if l.turns != l.lastFull && !l.stale.Load() {
			l.stale.Store(true)
		}
		return
	}
	l.lastFull = l.turns
	if l.stats.busy.Load() != l.busy {
		l.stats.busy.Store(l.busy)
	}
	if st := l.runq.Stats(); st.Picks != l.stats.sched[0].Load() {
		for i, v := range [...]uint64{st.Picks, st.AgedPicks, st.Epochs, st.Reweighs, st.Messages, st.LongestWait} {
			storeIfChanged(&l.stats.sched[i], v)
		}
	}
	if l.stale.Load() {
		l.stale.Store(false)
	}
	if l.fullWanted.Load() {
		l.fullWanted.Store(false)
	}
}

func (l *loop) touch(tc *typeCounters) {
	if !tc.dirty {
		tc.dirty = true
		l.dirty = append(l.dirty, tc)
	}
}

// ---- lifecycle work on the loop ----

// link adds a to the loop's list of started agents (an intrusive list: no
// map entry and no allocation per agent).
func (l *loop) link(a *agent) {
	a.started = true
	a.prev, a.next = nil, l.agents
	if l.agents != nil {
		l.agents.prev = a
	}
	l.agents = a
}

func (l *loop) unlink(a *agent) {
	if !a.started {
		return
	}
	a.started = false
	if a.prev != nil {
		a.prev.next = a.next
	} else {
		l.agents = a.next
	}
	if a.next != nil {
		a.next.prev = a.prev
	}
	a.prev, a.next = nil, nil
}

func (l *loop) initAgent(a *agent) {
	if a.lc.State() != lifecycle.Initializing {
		return // terminated before it could start
	}
	if l.shut {
		l.finalize(a, ErrStopped)
		return
	}
	l.link(a)
	if err := l.callInit(a); err != nil {
		l.finalize(a, err)
		return
	}
	l.e.transition(a, lifecycle.Ready)
	l.e.transition(a, lifecycle.Running)
	if a.terminating {
		if a.mb.len() == 0 {
			l.finalize(a, ErrTerminated)
			return
		}
	}
	l.schedule(a)
}

// callInit runs Init, converting a panic into an error.
func (l *loop) callInit(a *agent) (err error) {
	in, ok := a.impl.(Initializer)
	if !ok {
		return nil
	}
	c := &l.ctx
	prev := c.a
	c.a = a
	defer func() {
		c.a = prev
		if r := recover(); r != nil {
			pe := &PanicError{ID: a.ident(), Hook: "Init", Value: r, Stack: debug.Stack()}
			l.e.reportPanic(pe)
			err = &initError{id: a.ident(), err: pe}
		}
	}()
	if err = in.Init(c); err != nil {
		return &initError{id: a.ident(), err: err}
	}
	return nil
}

type hookKind uint8

const (
	hookPause hookKind = iota
	hookResume
	hookTerminate
)

// callHook runs an optional hook; a panic is reported and otherwise
// ignored (a panicking hook does not restart the agent).
func (l *loop) callHook(a *agent, name string, k hookKind) {
	c := &l.ctx
	prev := c.a
	c.a = a
	defer func() {
		c.a = prev
		if r := recover(); r != nil {
			l.e.reportPanic(&PanicError{ID: a.ident(), Hook: name, Value: r, Stack: debug.Stack()})
		}
	}()
	switch k {
	case hookPause:
		if h, ok := a.impl.(Pauser); ok {
			h.OnPause(c)
		}
	case hookResume:
		if h, ok := a.impl.(Resumer); ok {
			h.OnResume(c)
		}
	case hookTerminate:
		if h, ok := a.impl.(Terminator); ok {
			h.OnTerminate(c)
		}
	}
}

// recovered handles a panic from Receive: report it, then restart the agent
// (a fresh instance from its factory, Init again, mailbox kept) unless its
// restart budget for the window is spent, in which case it terminates.
func (l *loop) recovered(a *agent, hook string, v any, stack []byte) {
	pe := &PanicError{ID: a.ident(), Hook: hook, Value: v, Stack: stack}
	l.e.reportPanic(pe)
	if c := &l.ctx; c.rq != nil {
		if !c.answered {
			c.rq.fail(l, c.rqInc, pe)
		}
		c.rq, c.answered = nil, false
	}
	if a.terminating && a.drainOnStop {
		// Already on its way out: keep draining, never restart.
		return
	}
	pol := a.typ.restarts
	now := l.e.now()
	if now-a.windowStart > int64(pol.window) {
		a.windowStart, a.restarts = now, 0
	}
	if int(a.restarts) >= pol.max {
		l.finalize(a, pe)
		return
	}
	a.restarts++
	a.tc.restarts++
	l.touch(a.tc)
	a.setImpl(a.typ.newInstance(a.impl))
	if err := l.callInit(a); err != nil {
		l.finalize(a, err)
	}
}

// terminate handles a Terminate request: queued messages are delivered
// first when the agent is running; a paused or unstarted agent's mailbox is
// dead-lettered.
func (l *loop) terminate(a *agent, gen uint32) {
	if a.gen.Load() != gen || a.terminating {
		return
	}
	a.terminating = true
	switch a.lc.State() {
	case lifecycle.Running:
		a.drainOnStop = true
		if a.mb.len() == 0 {
			l.finalize(a, ErrTerminated)
		} else {
			l.schedule(a)
		}
	case lifecycle.Initializing, lifecycle.Ready:
		// Init has not run yet: initAgent will see terminating.
		if a.started {
			l.finalize(a, ErrTerminated)
		}
	default:
		l.finalize(a, ErrTerminated)
	}
}

// finalize ends an agent's incarnation: OnTerminate (once, if it started),
// dead letters for whatever is still queued, the Terminated state, and
// removal from the registry.
func (l *loop) finalize(a *agent, reason error) {
	st := a.lc.State()
	if st == lifecycle.Terminated {
		return
	}
	a.terminating = true
	if st == lifecycle.Running || st == lifecycle.Paused {
		l.callHook(a, "OnTerminate", hookTerminate)
	}
	dlReason := ErrTerminated
	if reason != nil && reason != ErrTerminated {
		dlReason = reason
		a.cause = reason // for messages still on their way (endReason)
	}
	var m Message
	n := int32(0)
	for a.mb.pop(&m) {
		a.tc.queued--
		n++
		l.deadLetter(a, m, dlReason)
	}
	if a.typ.cfg.reserves() {
		a.occ.Add(-n)
	}
	l.touch(a.tc)
	l.failHandles(a, dlReason)
	if a.se != nil {
		l.runq.Forget(a.se)
	}
	a.scheduled, a.qbytes = false, 0
	pooled := a.typ.cfg.pooled && !l.shut
	if !pooled {
		a.mb.release()
	}
	a.stopReq.Store(true)    // refuses new subscriptions (see subscribeAgent)
	l.e.dropSubscriptions(a) // before Terminated is observable
	l.e.transition(a, lifecycle.Terminated)
	l.e.notifyTerminated(a, dlReason)
	l.unlink(a)
	l.e.registry.remove(a)
	if a.typ.cfg.overflow == Block {
		l.signalSpace()
	}
	if pooled {
		// Recycled at the end of the turn: the run that finalized a may
		// still be updating its loop-owned fields.
		l.recycled = append(l.recycled, a)
	}
}

// recycleAgents readies the agents finalized this turn for reuse and puts
// them in their type's pool for this loop. A recycled record keeps its
// mailbox buffer and queue entry, its agent value is Reset (or, without a
// Reset method, made anew), and it stays Terminated until a Spawn takes it:
// so an envelope still addressed to the old incarnation finds it dead.
func (l *loop) recycleAgents() {
	for i, a := range l.recycled {
		l.recycled[i] = nil
		a.terminating, a.drainOnStop, a.cause = false, false, nil
		a.restarts, a.windowStart = 0, 0
		a.stopReq.Store(false)
		a.hasSubs.Store(false)
		if !l.resetAgent(a) {
			continue // Reset panicked: leave the record to the collector
		}
		a.typ.pools[l.idx].Put(a)
	}
	l.recycled = l.recycled[:0]
}

// resetAgent calls the agent value's Reset, or replaces the value when it
// has none; false if Reset panicked.
func (l *loop) resetAgent(a *agent) (ok bool) {
	r, has := a.impl.(Resetter)
	if !has {
		a.setImpl(a.typ.factory())
		return a.impl != nil
	}
	defer func() {
		if v := recover(); v != nil {
			l.e.reportPanic(&PanicError{ID: a.ident(), Hook: "Reset", Value: v, Stack: debug.Stack()})
			ok = false
		}
	}()
	r.Reset()
	return true
}

// shutdown terminates every agent of the loop for Stop. Graceful: deliver
// every queued message (paused agents included) first. Immediate: dead-
// letter them. OnTerminate runs once either way.
func (l *loop) shutdown(immediate bool) {
	l.shut = true
	l.dropTimers()
	for a, next := l.agents, (*agent)(nil); a != nil; a = next {
		next = a.next // finalize unlinks a
		if a.lc.State() == lifecycle.Terminated {
			continue
		}
		a.terminating = true
		if immediate || a.mb.len() == 0 {
			if n := a.mb.len(); n > 0 {
				l.e.stopDropped.Add(int64(n))
			}
			l.finalize(a, ErrStopped)
			continue
		}
		a.drainOnStop = true
		l.schedule(a)
	}
	// Drain what shutdown scheduled; runAgents finalizes each agent when
	// its mailbox empties.
	for l.runq.Len() > 0 {
		l.runAgents(l.e.cfg.budget)
	}
	for a := l.agents; a != nil; a = l.agents { // any left undrained
		l.finalize(a, ErrStopped)
		l.unlink(a)
	}
	l.publish(true)
	l.e.shutdownWG.Done()
}

// quit dead-letters whatever is still in the inbox or outbox; after it the
// loop goroutine exits and late producers sweep for themselves.
func (l *loop) quit() {
	var env envelope
	for l.inbox.Pop(&env) {
		l.drop(&env)
	}
	l.inbox.Commit()
	l.spillMu.Lock()
	spill := l.spill
	l.spill = nil
	l.spilling.Store(false)
	l.spillMu.Unlock()
	for i := range spill {
		l.drop(&spill[i])
	}
	for i := range l.outbox {
		for {
			env, ok := l.outbox[i].PopFront()
			if !ok {
				break
			}
			l.e.dropEnvelope(l, &env, ErrStopped) // for another loop: no opInit
		}
	}
	l.pending = 0
	l.publish(true)
}

// drop gives up on an envelope of this loop that will never be handled:
// an agent that never started is finalized, messages are dead-lettered.
func (l *loop) drop(env *envelope) {
	if env.op == opInit {
		l.finalize(env.a, ErrStopped)
		return
	}
	l.e.dropEnvelope(l, env, ErrStopped)
}

// dropEnvelope dead-letters the messages env holds with reason: one dead
// letter for a message, one per subscriber for a publish (each releasing
// its buffer reference), so that every path that gives up on an envelope
// keeps "accepted = delivered + dead-lettered". Control work (replies,
// lifecycle steps, functions) holds no message and is dropped. cur is the
// loop it runs on, nil off the loops.
func (e *Engine) dropEnvelope(cur *loop, env *envelope, reason error) {
	switch env.op {
	case opMsg:
		e.deadLetterOn(cur, env.a, env.gen, env.msg, reason)
	case opPublish:
		for _, a := range env.subs {
			e.deadLetterOn(cur, a, a.gen.Load(), env.msg, reason)
		}
	}
}

// deadLetterOn records a dead letter on loop cur, or off the loops.
func (e *Engine) deadLetterOn(cur *loop, a *agent, gen uint32, m Message, reason error) {
	if cur != nil {
		cur.deadLetterAt(a, gen, m, reason)
		return
	}
	e.deadLetter(nil, a, gen, m, reason)
}

// deadLetter records an undeliverable message on the loop.
func (l *loop) deadLetter(a *agent, m Message, reason error) {
	l.deadLetterAt(a, a.gen.Load(), m, reason)
}

// deadLetterAt is deadLetter for a message addressed to incarnation gen.
func (l *loop) deadLetterAt(a *agent, gen uint32, m Message, reason error) {
	l.stats.deadLetters.Add(1)
	l.e.deadLetter(l, a, gen, m, reason)
}

type initError struct {
	id  AgentID
	err error
}

func (e *initError) Error() string { return "engine: init " + e.id.String() + ": " + e.err.Error() }
func (e *initError) Unwrap() []error {
	return []error{ErrInitFailed, e.err}
}
