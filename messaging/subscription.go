package messaging

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"weak"
)

// A Subscription is one pattern and handler registered on a [Bus]. Its
// methods are safe for concurrent use.
type Subscription struct {
	// What delivery reads comes first, in one cache line.
	state   atomic.Uint32
	h       Handler     // strong subscription; nil for a weak one
	weak    weakHandler // weak subscription; nil for a strong one
	bus     *Bus
	pattern string

	dropped atomic.Uint64 // SubscribeChan: messages its channel had no room for
}

// Subscription states. A subscription is in the bus's Sublist exactly while
// it is subActive or subDead; whoever moves it out of those (by CAS) removes
// it, so that happens once.
const (
	subActive  uint32 = iota // delivering
	subDead                  // weak, owner collected: skipped, waiting in Bus.zombies
	subRemoved               // unsubscribed or pruned
)

// Pattern returns the pattern the subscription was made with.
func (s *Subscription) Pattern() string { return s.pattern }

// Dropped returns how many messages a [SubscribeChan] subscription left out
// because its channel had no room. It is 0 for every other subscription.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Unsubscribe removes the subscription from its bus: no Publish that starts
// afterwards calls its handler. It is idempotent: calling it again, or on a
// weak subscription the bus already dropped, does nothing and returns nil.
func (s *Subscription) Unsubscribe() error {
	if s == nil || s.bus == nil {
		return nil
	}
	for {
		st := s.state.Load()
		if st == subRemoved {
			return nil
		}
		if !s.state.CompareAndSwap(st, subRemoved) {
			continue
		}
		if st == subDead {
			s.bus.dead.Add(-1)
		} else {
			s.bus.live.Add(-1)
		}
		if s.weak != nil {
			s.weak.stop()
		}
		if err := s.bus.subs.Remove(s.pattern, s); err != nil {
			// Unreachable: the state said s was in the list.
			return fmt.Errorf("messaging: unsubscribe %q: %w", s.pattern, err)
		}
		s.bus.reapIfAny()
		return nil
	}
}

// deliver calls the handler and reports whether it did. It skips a
// subscription that is no longer active, and buries a weak one whose owner
// is gone.
func (s *Subscription) deliver(topic string, payload []byte) bool {
	if s.state.Load() != subActive {
		return false
	}
	if s.h != nil {
		s.h(topic, payload)
		return true
	}
	if s.weak.call(topic, payload) {
		return true
	}
	s.bus.bury(s)
	return false
}

// A weakHandler is the typed part of a weak subscription.
type weakHandler interface {
	// call runs the handler with its owner, or reports false if the owner
	// has been collected.
	call(topic string, payload []byte) bool
	// stop cancels the owner's cleanup, so that an unsubscribed
	// subscription is not kept alive until its owner dies.
	stop()
}

type weakSub[O any] struct {
	owner   weak.Pointer[O]
	h       func(owner *O, topic string, payload []byte)
	cleanup runtime.Cleanup // set once, before the subscription is returned
}

func (w *weakSub[O]) call(topic string, payload []byte) bool {
	o := w.owner.Value()
	if o == nil {
		return false
	}
	w.h(o, topic, payload)
	return true
}

func (w *weakSub[O]) stop() {
	// Stop is only sure to work while the owner is reachable; if it is
	// already gone, the cleanup is queued or done and will find the
	// subscription removed.
	if o := w.owner.Value(); o != nil {
		w.cleanup.Stop()
		runtime.KeepAlive(o)
	}
}

// SubscribeWeak is [Bus.Subscribe] for a subscriber that should not outlive
// owner: the bus holds only a weak pointer to owner, and when owner is
// garbage-collected the subscription ends by itself. Until then h is called
// with owner, for every message published to a topic pattern matches. The
// payload contract is that of [Handler].
//
// h receives owner so that it need not capture it. If h (or anything it
// references) refers to owner, owner stays reachable from the bus and is
// never collected: pass a method expression such as (*T).OnMessage, or a
// function literal that uses only its owner argument.
//
// Once owner is unreachable, delivery skips the subscription and [Bus.Count]
// no longer counts it. A cleanup attached with [runtime.AddCleanup] marks it
// dead even if nothing is published, and dead subscriptions are removed from
// the bus in batches, like zombie timers. [Subscription.Unsubscribe] ends it
// earlier.
//
// owner must be a heap object of non-zero size. The runtime does not
// promise to collect (and so to clean up after) a zero-size object, a
// package-level variable, or a pointer-free object of 16 bytes or less that
// shares its allocation with a live one.
//
// It returns an error wrapping [ErrInvalidPattern], [ErrNilHandler] or
// [ErrNilOwner]. It is generic, and not a method, because [weak.Make] is.
func SubscribeWeak[O any](b *Bus, pattern string, owner *O, h func(owner *O, topic string, payload []byte)) (*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: pattern %q", ErrNilHandler, pattern)
	}
	return subscribeWeak(b, new(Subscription), pattern, owner, h)
}

// A Delivery is one message as [SubscribeChan] sends it on a channel.
type Delivery struct {
	Topic   string // the publisher's topic
	Payload []byte // a copy of the payload, the receiver's to keep and modify
}

// SubscribeChan is [SubscribeWeak] for a subscriber that reads messages from
// a channel instead of being called: every message published to a topic
// pattern matches is copied into a [Delivery] and sent on ch without
// blocking. When ch has no room (or, unbuffered, no receiver waiting), the
// message is left out for this subscriber and counted in
// [Subscription.Dropped]; the publisher never waits. Give ch a buffer as
// large as the bursts its reader must absorb. A left-out message still
// counts as delivered in [Bus.Publish]'s result, which counts handlers that
// returned.
//
// The bus holds ch, but owner only weakly, exactly as SubscribeWeak does:
// the subscription ends when owner is garbage-collected, or earlier with
// [Subscription.Unsubscribe]. The bus never reads owner: it is whatever the
// subscriber's lifetime hangs on (a dashboard's client, a test's fixture),
// and the subscription lasts while anything else keeps it reachable. The
// bus never closes ch, which other subscriptions may share.
//
// The copy costs one allocation per message sent, on the publisher's
// goroutine: SubscribeChan is for dashboards, bridges and tests. A
// subscriber on a hot path uses SubscribeWeak and reads the payload in
// place.
//
// It returns an error wrapping [ErrInvalidPattern], [ErrNilChan] or
// [ErrNilOwner].
func SubscribeChan[O any](b *Bus, pattern string, owner *O, ch chan<- Delivery) (*Subscription, error) {
	if ch == nil {
		return nil, fmt.Errorf("%w: pattern %q", ErrNilChan, pattern)
	}
	s := new(Subscription)
	return subscribeWeak(b, s, pattern, owner, func(_ *O, topic string, payload []byte) {
		if c := cap(ch); c > 0 && len(ch) == c {
			s.dropped.Add(1) // full: do not copy for nothing
			return
		}
		select {
		case ch <- Delivery{Topic: topic, Payload: bytes.Clone(payload)}:
		default:
			s.dropped.Add(1)
		}
	})
}

// subscribeWeak registers s, a new subscription, as a weak subscription of
// owner with handler h.
func subscribeWeak[O any](b *Bus, s *Subscription, pattern string, owner *O, h func(owner *O, topic string, payload []byte)) (*Subscription, error) {
	if owner == nil {
		return nil, fmt.Errorf("%w: pattern %q", ErrNilOwner, pattern)
	}
	w := &weakSub[O]{owner: weak.Make(owner), h: h}
	s.bus, s.pattern, s.weak = b, strings.Clone(pattern), w
	if err := b.add(s); err != nil {
		return nil, err
	}
	// Attached after the insert so that a refused pattern leaves nothing
	// behind; owner is live until here, so the cleanup cannot be missed. The
	// cleanup holds the subscription weakly: a bus dropped by its user must
	// not be kept alive by owners that outlive it.
	w.cleanup = runtime.AddCleanup(owner, ownerCollected, weak.Make(s))
	return s, nil
}

// ownerCollected is the cleanup of a weak subscription's owner. It runs on a
// runtime goroutine some time after the owner became unreachable. If the
// subscription is gone too, its bus was dropped and there is nothing to do.
func ownerCollected(ws weak.Pointer[Subscription]) {
	if s := ws.Value(); s != nil {
		s.bus.bury(s)
		s.bus.reapIfDue()
	}
}

// Pruning: dead weak subscriptions are removed like the runtime removes
// zombie timers. Each is marked dead at once (delivery skips it), and they
// are removed from the Sublist in batches, each batch one new generation, so
// that a thousand owners collected together invalidate the match cache a few
// times instead of a thousand.
const (
	// reapBatch is the number of dead subscriptions that triggers a batch.
	reapBatch = 64
	// reapRatio: a batch is also due once dead subscriptions are 1/reapRatio
	// of all, so a small bus does not keep its dead for long.
	reapRatio = 4
)

// bury marks s dead and queues it for removal, unless it is no longer
// active.
func (b *Bus) bury(s *Subscription) {
	if !s.state.CompareAndSwap(subActive, subDead) {
		return
	}
	b.live.Add(-1)
	b.dead.Add(1)
	b.zmu.Lock()
	b.zombies = append(b.zombies, s)
	b.zmu.Unlock()
}

// reapIfDue removes the queued dead subscriptions if there are enough of them.
func (b *Bus) reapIfDue() {
	if d := b.dead.Load(); d > 0 && (d >= reapBatch || d*reapRatio >= int64(b.subs.Count())) {
		b.reap()
	}
}

// reapIfAny removes any queued dead subscriptions. Subscribe and Unsubscribe
// call it: they change the list anyway.
func (b *Bus) reapIfAny() {
	if b.dead.Load() > 0 {
		b.reap()
	}
}

// reap removes the queued dead subscriptions in one generation.
func (b *Bus) reap() {
	b.zmu.Lock()
	zs := b.zombies
	b.zombies = nil
	b.zmu.Unlock()
	rs := make([]removal[*Subscription], 0, len(zs))
	for _, s := range zs {
		// Unsubscribe may have removed it since it was queued.
		if s.state.CompareAndSwap(subDead, subRemoved) {
			rs = append(rs, removal[*Subscription]{pattern: s.pattern, v: s})
		}
	}
	b.dead.Add(-int64(len(rs)))
	b.subs.removeAll(rs)
}
