package engine

// This file: the loop, its run/turn/park cycle, and draining the inbox.

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/agentloop/agentloop/internal/mpsc"
	"github.com/agentloop/agentloop/internal/ring"
	"github.com/agentloop/agentloop/internal/timerheap"
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

// envelope is one unit of work for a loop: in its ready deque, spill and
// outboxes, and, packed as a parcel, in its inbox. It is a plain value:
// posting it allocates nothing.
type envelope struct {
	a    *agent
	gen  uint32
	op   op
	msg  Message
	subs []*agent // opPublish: the subscribers on this loop (shared, read-only)
	fn   func()   // opFunc
}

// parcel is an envelope as the inbox carries it: 80 bytes instead of 112.
// Every post is copied into an inbox slot by its producer and cleared out
// of it by the loop, on cache lines the two hand back and forth, so the
// slot carries only the words an op uses: no op has both an agent and
// subscribers or a function, so opPublish's subscribers (as their first
// element and count, the slice being read-only) and opFunc's function
// travel in the agent's word, and the count in gen's. opPublish's own gen
// (0 or publishReserved) takes a byte of the padding.
type parcel struct {
	p      unsafe.Pointer // a; opPublish: &subs[0]; opFunc: fn
	n      uint32         // gen; opPublish: len(subs)
	op     op
	pubGen uint8 // opPublish: gen
	msg    Message
}

// pack copies env into p, a free (zeroed) inbox slot. It only stores, so
// it cannot fail between TryReserve and Publish. A loop never holds 2³²
// subscribers (that alone would take 32 GiB of pointers), so len(subs)
// fits n.
func (p *parcel) pack(env *envelope) {
	p.op = env.op
	p.msg = env.msg
	switch env.op {
	case opPublish:
		p.p = unsafe.Pointer(unsafe.SliceData(env.subs))
		p.n = uint32(len(env.subs))
		p.pubGen = uint8(env.gen)
	case opFunc:
		p.p = *(*unsafe.Pointer)(unsafe.Pointer(&env.fn)) // a func value is one pointer
	default:
		p.p = unsafe.Pointer(env.a)
		p.n = env.gen
	}
}

// agent returns the agent of a parcel whose op has one (not opPublish
// or opFunc).
func (p *parcel) agent() *agent { return (*agent)(p.p) }

// unpack returns the envelope p carries.
func (p *parcel) unpack() envelope {
	env := envelope{op: p.op, msg: p.msg}
	switch p.op {
	case opPublish:
		env.subs = unsafe.Slice((**agent)(p.p), p.n)
		env.gen = uint32(p.pubGen)
	case opFunc:
		env.fn = *(*func())(unsafe.Pointer(&p.p))
	default:
		env.a, env.gen = p.agent(), p.n
	}
	return env
}

// loop is one event loop: it owns its agents and runs every hook and
// handler of theirs, one at a time, on its own goroutine or, while it is
// parked, on the goroutine of a peer that borrowed it (see
// borrowHandoff); beside it, on the system clock, its timing wheel runs
// goroutines of its own that only post to it (see rlWheel). Its fields are
// grouped by who may touch them: any goroutine (producers, through
// atomics, the inbox and the mutexes named), the loop's holder alone (its
// goroutine or a borrower: "the loop goroutine" below), and the counters
// the loop publishes for Stats.
type loop struct {
	e   *Engine
	idx int

	// ---- producers: any goroutine ----

	inbox *mpsc.Queue[parcel] // any goroutine pushes (tryPush); the loop pops

	// sleeping is sleepParked while the loop is parked or about to park. A
	// producer that pushes and then sees it swaps it to sleepAwake and
	// sends one token on wakeCh; the loop sets it before its last emptiness
	// check, so a push racing with parking is either seen by that check or
	// wakes the loop.
	// A loop that posts to a parked peer may instead hold the peer's
	// wake-up (sleepHeld) and, once it has nothing left to do itself, run
	// the peer's turns on its own goroutine (sleepBorrowed): see borrowHandoff.
	sleeping atomic.Int32
	wakeCh   chan struct{}
	wakeFn   func()      // l.wake, bound once
	idle     atomic.Bool // parked with nothing pending (quiescence checks)

	// spill holds work the inbox could not take: everything posted before
	// Start (no goroutine pops the inbox yet), and posts from outside that
	// found it full for long enough that waiting longer could deadlock (a
	// handler posting to its own loop). While spilling is set after Start,
	// every outside post first waits (up to spillWait) for the loop to take
	// the spill, and joins it only if that wait runs out; the loop takes the
	// spill only once the inbox is fully drained, so each producer's order
	// is kept.
	spilling atomic.Bool
	spillMu  sync.Mutex // protects spill
	spill    []envelope
	spilled  atomic.Uint64 // posts ever spilled (quiescence checks)

	// roomWaiters counts the outside posters parked on a full inbox or a
	// pending spill (see postFull); when it is not zero the loop hands out
	// tokens on roomCh after each batch it commits, so a loop nobody waits
	// on pays one atomic load per batch.
	roomWaiters atomic.Int32
	roomCh      chan struct{}

	// sealed is set after the loop goroutine has exited; late producers
	// then dead-letter what they pushed themselves (sweepMu serialises
	// them as the inbox's single consumer).
	sealed  atomic.Bool
	sweepMu sync.Mutex

	// Space notification for outside senders blocked on a full Block
	// mailbox of this loop: each registers its own token channel in
	// spaceList (see waitForRoom), and signalSpace takes the list and
	// hands each one token. spaceWaiters is len(spaceList), for the loop
	// to look at without the lock; spaceSpare is the loop's second list,
	// swapped in so that signalling allocates nothing.
	spaceWaiters atomic.Int32
	spaceMu      sync.Mutex // protects spaceList
	spaceList    []*spaceWaiter
	spaceSpare   []*spaceWaiter // the loop goroutine only

	gid     atomic.Uint64 // the loop goroutine's ID (see Engine.onLoop)
	zombies atomic.Int32  // stopped timers still in the heap (Timer.Stop adds)

	// fullWanted asks the loop for a full publish (see publish); Stats
	// sets it and wakes the loop, which clears it once published.
	fullWanted atomic.Bool
	stale      atomic.Bool // turns ran since the last full publish

	// ---- the loop goroutine only ----

	ready    ring.Deque[envelope]     // immediate tasks, run before agents each turn
	runq     *scheduler.Queue[*agent] // runnable agents by weight
	outbox   []ring.Deque[envelope]   // per target loop: posts that found its inbox full
	pending  int                      // total envelopes in outbox
	agents   *agent                   // the started agents, linked through agent.prev/next
	recycled []*agent                 // pooled agents finalized this turn
	toPool   []*agent                 // recycleAgents: readied records of one type
	ctx      Context                  // the one Context, reused for every handler
	batch    []Message                // the reused slice of ReceiveBatch
	handles  map[*agent][]ReplyHandle // ReplyLater handles not yet answered
	label    *agentType               // the type whose pprof labels are set, nil if none
	parkT    *time.Timer
	turns    uint64
	stalls   int   // turns in a row that found only an unpublished inbox slot
	handoff  *loop // a parked peer whose wake-up this loop holds (see borrowHandoff)
	quitting bool  // a borrower ran the turn that ended the loop: quit at once
	busy     int64 // nanoseconds spent running agents
	stopping bool  // the engine is stopping: timers were dropped
	shut     bool  // shutdown ran: agents that still arrive are not started

	// Timers (the loop goroutine only).
	timers     timerheap.Heap[*timer]
	wheel      wheel
	buckets    map[int64]*wheelBucket
	lastKey    int64        // the bucket schedTimer used last, to skip the map
	lastBucket *wheelBucket // for runs of timers in one tick
	freeTimers []*timer     // recycled timers (bounded by maxFreeTimers)

	// ---- published for Stats ----

	dirty    []*typeCounters // loop: type counters changed since the last publish
	lastFull uint64          // loop: turns at the last full publish
	stats    loopCounters    // written by the loop, read by Stats
}

type loopCounters struct {
	turns, parks, deadLetters atomic.Uint64
	borrowed                  atomic.Uint64 // borrows by peers (see borrowHandoff)
	runnable, timers, busy    atomic.Int64
	// The runnable queue's counters: Picks, AgedPicks, Epochs, Reweighs,
	// Messages, LongestWait.
	sched [6]atomic.Uint64
}

func newLoop(e *Engine, idx int) *loop {
	l := &loop{
		e:       e,
		idx:     idx,
		inbox:   mpsc.New[parcel](e.cfg.inboxSize),
		wakeCh:  make(chan struct{}, 1),
		roomCh:  make(chan struct{}, roomTokens),
		outbox:  make([]ring.Deque[envelope], e.cfg.loops),
		buckets: make(map[int64]*wheelBucket),
	}
	l.runq, _ = scheduler.New[*agent](e.cfg.sched) // validated by New
	l.spilling.Store(true)
	l.wakeFn = l.wake
	l.ctx.l = l
	return l
}

func (l *loop) run() {
	l.gid.Store(goroutineID())
	defer l.e.loopsWG.Done()
	defer l.stopWheel()
	l.parkT = time.NewTimer(time.Hour)
	l.parkT.Stop()
	for {
		if l.quitting || l.turn() {
			l.handOver()
			l.quit()
			// Posters parked on the inbox find it empty: what they push
			// now is swept once Stop seals the loop.
			l.signalRoom()
			return
		}
		if l.handoff != nil && !l.hasWork() && l.borrowHandoff() {
			continue // a peer's turns ran here; look at our own work again
		}
		l.handOver()
		switch {
		case l.hasWork():
			l.stalls = 0
		case l.inbox.Pending() && l.stalls < stallTurns:
			// The inbox holds only a slot still being written. Its
			// producer publishes it in a moment, unless its thread has
			// lost its core: turn a few times, then park, which is safe
			// since every producer wakes the loop after publishing.
			l.stalls++
		default:
			l.stalls = 0
			l.park()
		}
	}
}

// stallTurns is how many turns in a row a loop spends on an inbox slot a
// producer has reserved but not yet published before it parks.
const stallTurns = 64

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
		// At most a turn's budget of timers: the handlers of the first
		// ones of a burst run before the last ones are taken off the heap,
		// and a due timer left over keeps the loop from parking.
		l.fireTimers(l.e.now(), l.e.cfg.budget)
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

// hasWork reports whether a turn has something to do now: runnable agents,
// ready tasks, a published inbox envelope or a spill.
func (l *loop) hasWork() bool {
	return l.runq.Len() > 0 || l.ready.Len() > 0 || l.inbox.Peek() != nil || l.spilling.Load()
}

// park sleeps until a producer wakes the loop or the next timer is due.
func (l *loop) park() {
	l.publish(l.turns-l.lastFull >= publishEvery || l.fullWanted.Load() ||
		l.e.stopping.Load() || l.e.idleWaiters.Load() > 0)
	// Everything the wait depends on is read before announcing sleep:
	// from the store of sleeping on, a peer loop may borrow this one (see
	// borrow) and run its turns, so this goroutine touches nothing of the
	// loop's own until it is handed a token.
	var timeout time.Duration = -1
	if l.timers.Len() > 0 {
		if e, ok := l.timers.Peek(); ok {
			timeout = time.Duration(e.When - l.e.now())
			if timeout <= 0 {
				return
			}
		}
	}
	pending := l.pending > 0
	head := l.inbox.Head()
	l.sleeping.Store(sleepParked)
	// Last check after announcing sleep: a push published before the
	// store is seen here; one published after it sees sleeping and wakes
	// us (producers call wake after publishing, so a slot still being
	// written need not keep the loop up).
	if l.inbox.PublishedAt(head) || l.spilling.Load() {
		if !l.sleeping.CompareAndSwap(sleepParked, sleepAwake) {
			// A producer already claimed the wake-up (or a peer borrowed
			// the loop); wait for its token so that the loop is ours.
			<-l.wakeCh
		}
		l.idle.Store(false)
		return
	}
	// Under a clock other than the system one, the clock calls wake when
	// the deadline passes on it. The alarm is registered before the loop
	// declares itself idle: whoever moves the clock once the engine looks
	// idle (the enginetest harness) must find it, or it would step past
	// the deadline and the timer would fire late, out of turn or never.
	var stopAlarm func() bool
	if l.e.virtual && !pending && timeout >= 0 {
		stopAlarm = l.e.clock.AfterFunc(timeout, l.wakeFn)
	}
	if pending {
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
			if !l.sleeping.CompareAndSwap(sleepParked, sleepAwake) {
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
			if !dst.tryPush(ob.Front()) {
				break
			}
			ob.PopFront()
			l.pending--
		}
		dst.wakeFrom(l)
	}
}

// drainInbox moves up to max envelopes from the inbox into mailboxes (or
// runs them, for control work), commits the batch, and wakes the posters
// parked on the full inbox if it freed room.
func (l *loop) drainInbox(max int) (quit bool) {
	i := 0
	for ; i < max; i++ {
		p := l.inbox.Peek()
		if p == nil {
			break
		}
		if p.op == opMsg {
			// dispatch's opMsg, straight from the slot.
			l.enqueue(p.agent(), p.n, &p.msg, true)
		} else {
			env := p.unpack()
			quit = l.dispatch(&env)
		}
		l.inbox.Advance()
		if quit {
			break // run wakes the posters once the loop has quit
		}
	}
	l.inbox.Commit()
	if i > 0 && l.roomWaiters.Load() > 0 {
		l.signalRoom()
	}
	return quit
}

// ---- lifecycle work on the loop ----

const (
	hookPause hookKind = iota
	hookResume
	hookTerminate
)
