package messaging

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
)

// A Handler receives one message published to a topic its subscription
// matches. It runs on the publisher's goroutine, synchronously, before
// Publish returns.
//
// payload is the publisher's slice itself, shared by every subscriber of the
// same Publish: it is read-only. A handler must not modify it, and one that
// keeps it after returning (or hands it to another goroutine) must not
// modify it then either; copy it first if it needs a private, writable copy.
// The publisher keeps its side of the contract by never modifying the slice
// after Publish.
type Handler func(topic string, payload []byte)

// A Bus is an in-process publish/subscribe bus: [Bus.Publish] calls, on the
// publisher's goroutine, the handler of every subscription whose pattern
// matches the topic, and hands each the same payload slice. Nothing is
// copied, queued or allocated per message once a topic is in the match
// cache (see [Sublist], which the bus is built on).
//
// Subscriptions are strong ([Bus.Subscribe]: they last until
// [Subscription.Unsubscribe]) or weak ([SubscribeWeak] and [SubscribeChan]:
// they also end when their owner is garbage-collected). The bus starts no
// goroutine.
//
// The zero value is a Bus with no subscriptions and no panic observer, ready
// to use; [NewBus] sets options. A Bus must not be copied after first use.
// All methods are safe for concurrent use, and handlers may call them,
// including Publish, Subscribe and Unsubscribe.
type Bus struct {
	subs    Sublist[*Subscription]
	onPanic func(topic string, v any, stack []byte)
	panics  atomic.Uint64

	// Dead weak subscriptions (their owner was collected) wait here to be
	// removed in batches; delivery skips them meanwhile. zmu protects
	// zombies and is never held while calling anything else.
	zmu     sync.Mutex
	zombies []*Subscription
	// dead counts the subscriptions in state subDead, to decide when to
	// reap. It is changed with the state, not with zombies.
	dead atomic.Int64
	// live counts the subscriptions in state subActive, for Count. It
	// changes with the state too, so it never counts a subscription that
	// has stopped receiving, nor goes back up when one is reaped.
	live atomic.Int64
}

// An Option configures a [Bus] in [NewBus].
type Option interface{ apply(*Bus) }

type optionFunc func(*Bus)

func (f optionFunc) apply(b *Bus) { f(b) }

// WithOnPanic sets the function told about a handler that panicked: the
// topic, the value passed to panic, and the goroutine's stack at the panic.
// Delivery goes on to the remaining subscribers either way, and the panic is
// counted (see [Bus.Panics]). f runs on the publisher's goroutine and must
// not panic itself. A nil f, the default, only counts.
func WithOnPanic(f func(topic string, v any, stack []byte)) Option {
	return optionFunc(func(b *Bus) { b.onPanic = f })
}

// NewBus returns a Bus configured by opts.
func NewBus(opts ...Option) *Bus {
	b := new(Bus)
	for _, o := range opts {
		o.apply(b)
	}
	return b
}

// Subscribe calls h for every message published to a topic that pattern
// matches (see [ValidatePattern]), until the returned subscription is
// unsubscribed. It returns an error wrapping [ErrInvalidPattern] or
// [ErrNilHandler].
//
// Subscribe is safe for concurrent use. A Publish running at the same time
// may or may not deliver to the new subscription.
func (b *Bus) Subscribe(pattern string, h Handler) (*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: pattern %q", ErrNilHandler, pattern)
	}
	s := &Subscription{bus: b, pattern: strings.Clone(pattern), h: h}
	if err := b.add(s); err != nil {
		return nil, err
	}
	return s, nil
}

// add inserts s, whose pattern it owns.
func (b *Bus) add(s *Subscription) error {
	if err := b.subs.insert(s.pattern, s); err != nil {
		return err
	}
	b.live.Add(1)
	b.reapIfAny()
	return nil
}

// Publish calls the handler of every subscription whose pattern matches
// topic, in turn, on the calling goroutine, and returns how many handlers
// returned normally. All of them receive the same payload slice, not a copy:
// the publisher must not modify payload after the call (see [Handler] for the
// subscribers' side of the contract). A handler that panics is reported to
// the OnPanic function (see [WithOnPanic]) and counted, not counted in
// delivered, and does not stop delivery to the others.
//
// It returns an error wrapping [ErrInvalidTopic] if topic is invalid (see
// [ValidateTopic]); nothing is delivered then.
//
// Publish takes no lock and is safe for concurrent use. It allocates nothing
// once topic is in the match cache, and usually not before either: only when
// it caches the topic, or when the topic matches more than four patterns. It
// delivers to the subscriptions present when it starts, except those
// unsubscribed before their turn; a handler may therefore still run once on
// another goroutine's Publish after its Unsubscribe returns, if that Publish
// had already reached it.
func (b *Bus) Publish(topic string, payload []byte) (delivered int, err error) {
	var buf [4][]*Subscription
	subs, parts, err := b.subs.lookup(topic, buf[:0])
	if err != nil {
		return 0, err
	}
	delivered = b.deliverAll(subs, topic, payload)
	for _, p := range parts { // a topic not cached (yet)
		delivered += b.deliverAll(p, topic, payload)
	}
	return delivered, nil
}

// deliverAll calls the handlers of subs and returns how many returned
// normally.
func (b *Bus) deliverAll(subs []*Subscription, topic string, payload []byte) (delivered int) {
	for i := 0; i < len(subs); {
		var n int
		i, n = b.deliver(subs, i, topic, payload)
		delivered += n
	}
	return delivered
}

// deliver calls the handlers of subs[i:] in order. It returns the index to
// go on from (len(subs), or the one after a handler that panicked) and how
// many handlers returned normally. Recovering here, once per run of handlers
// rather than once per handler, keeps a defer out of the per-delivery cost.
func (b *Bus) deliver(subs []*Subscription, i int, topic string, payload []byte) (next, delivered int) {
	next = i
	defer func() {
		if next < len(subs) { // cheaper than recover on the normal path
			if v := recover(); v != nil {
				b.recovered(topic, v)
				next++
			}
		}
	}()
	for ; next < len(subs); next++ {
		// The strong case inline; Subscription.deliver is too big to be.
		if s := subs[next]; s.h != nil && s.state.Load() == subActive {
			s.h(topic, payload)
			delivered++
		} else if s.deliver(topic, payload) {
			delivered++
		}
	}
	return next, delivered
}

// recovered reports a handler's panic. It runs in deliver's deferred call,
// before the stack unwinds, so the stack shows the handler.
func (b *Bus) recovered(topic string, v any) {
	b.panics.Add(1)
	if b.onPanic != nil {
		b.onPanic(topic, v, debug.Stack())
	}
}

// Panics returns how many handler calls have panicked.
func (b *Bus) Panics() uint64 { return b.panics.Load() }

// Count returns the number of live subscriptions: subscribed and neither
// unsubscribed nor, for a weak one, dead with its owner. A dead weak
// subscription stops being counted as soon as it is found dead, before it is
// pruned.
func (b *Bus) Count() int { return int(b.live.Load()) }
